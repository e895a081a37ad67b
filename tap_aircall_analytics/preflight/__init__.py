"""Look before you sync: the plan of a run, and the CSV headers checked against the catalogue."""
