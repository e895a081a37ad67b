"""Export files read: CSV and zip files to typed records, and every spelling of a value."""
