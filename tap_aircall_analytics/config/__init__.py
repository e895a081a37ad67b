"""What the tap is told and knows: the settings, the catalogue (every unpublished fact of Aircall's API), and
every spelling a value of each kind may be written in."""
