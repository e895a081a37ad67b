"""What leaves the tap: Singer messages on stdout, and BATCH files written with DuckDB."""
