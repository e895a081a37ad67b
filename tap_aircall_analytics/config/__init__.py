"""What the tap is told and knows: the settings, and the catalogue (every unpublished fact of Aircall's API)."""
