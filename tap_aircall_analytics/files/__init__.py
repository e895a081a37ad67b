"""Export files read: CSV and zip files to typed records."""
