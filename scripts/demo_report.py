"""Print what the demo pipeline loaded: rows per table, then calls per day."""

from __future__ import annotations

import sys

import duckdb

DAILY_CALLS = """
select cast(started_at as date) as day,
       count(*) as calls,
       round(100.0 * count(*) filter (where answered) / count(*), 1) as answered_pct,
       round(avg(waiting_time) filter (where answered), 1) as avg_wait_s
from aircall.calls_history
group by 1 order by 1 desc limit 10
"""


def main(path: str) -> None:
    """Print the row count of every table, and the last ten days of calls."""
    with duckdb.connect(path, read_only=True) as db:
        tables = db.execute(
            "select table_name from information_schema.tables where table_schema = 'aircall' order by 1"
        ).fetchall()
        print(f"\nLoaded into {path}:")
        for (table,) in tables:
            (rows,) = db.execute(f'select count(*) from aircall."{table}"').fetchone()
            print(f"  aircall.{table:<55} {rows:>8,} rows")
        print("\nCalls per day (UTC), last ten days:")
        print(f"  {'day':<12}{'calls':>7}{'answered %':>12}{'avg wait s':>12}")
        for day, calls, answered, wait in db.execute(DAILY_CALLS).fetchall():
            print(f"  {day!s:<12}{calls:>7}{answered:>12}{wait:>12}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "output/warehouse.duckdb")
