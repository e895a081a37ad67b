"""One export file to one batch file with the tap's batch writer: the BATCH path without a run around it.

    .venv/bin/python benchmarks/batch_writer.py --rows 500000 --format parquet

Writes a Call History CSV of about `--rows` rows (as the simulator serves it) once into
`--csv` (kept for the next call), converts it, checks that every row was written and prints
the rows and seconds. Time it from outside, e.g. with `farm-bench`, to compare two trees.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget
from throughput import CALLS, FIRST_DAY, TIMEZONE, make_csv  # beside this script

from tap_aircall_analytics.emit.batches import BatchFileWriter
from tap_aircall_analytics.files.records import RecordReader, json_schema
from tap_aircall_analytics.planning.windows import Window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--format", choices=["jsonl", "parquet"], default="parquet")
    parser.add_argument("--csv", type=Path, default=Path(tempfile.gettempdir()) / "aircall-batch-writer-bench.csv")
    args = parser.parse_args()
    if not args.csv.exists():
        rows = make_csv(args.rows, args.csv)
    else:
        rows = sum(1 for _ in RecordReader(CALLS, TIMEZONE, lambda message: None).read(args.csv))
    work = Path(tempfile.mkdtemp())
    try:
        (work / "out").mkdir()
        writer = BatchFileWriter(
            RecordReader(CALLS, TIMEZONE, lambda message: None),
            list(json_schema(CALLS)["properties"]),
            BaseBatchFileEncoding(format=args.format, compression="gzip" if args.format == "jsonl" else "none"),
            StorageTarget(root=(work / "out").as_uri()),
            "bench",
        )
        started = time.perf_counter()
        window = Window(FIRST_DAY, FIRST_DAY + dt.timedelta(days=30))
        writer.write(args.csv, zipped=False, window=window, workdir=work)
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert writer.rows_written == rows, f"{writer.rows_written} rows written of {rows}"
    print(f"{args.format}: {rows:,} rows in {seconds:.2f} s ({rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
