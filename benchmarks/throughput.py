"""Throughput, memory and concurrency of the tap, measured against the simulator.

    .venv/bin/python benchmarks/throughput.py            # 200,000 rows; memory at 100k, 1M, 3M
    .venv/bin/python benchmarks/throughput.py --quick    # 50,000 rows; memory at 50k, 200k

Prints a table and saves it with a chart to benchmarks/results/ (and docs/benchmark.png).
Every path reads the same Call History CSV file (24 columns) in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import duckdb

from tap_aircall_analytics import clock
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME
from tap_aircall_analytics.exports.pipeline import ExportedFile
from tap_aircall_analytics.files.records import RecordReader, json_schema
from tap_aircall_analytics.planning.windows import Window
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig
from tap_aircall_analytics.simulator.data import ReportData, write_csv
from tap_aircall_analytics.tap import TapAircallAnalytics

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]
TIMEZONE = "Europe/Paris"
CALLS_PER_DAY = 50_000
FIRST_DAY = clock.today(dt.timezone.utc) - dt.timedelta(days=60)  # inside Call History's 6 months, days to spare
CREDENTIALS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
SERVED = contextlib.ExitStack()  # the local files each benchmark tap reads, served until the script exits


def make_csv(rows: int, path: Path) -> int:
    """Write a Call History export of about `rows` rows, as the simulator serves it."""
    days = max(1, rows // CALLS_PER_DAY)
    data = ReportData(
        CALLS,
        FIRST_DAY,
        FIRST_DAY + dt.timedelta(days=days - 1),
        TIMEZONE,
        seed=1,
        calls_per_day=min(rows, CALLS_PER_DAY),
    )
    with open(path, "w", encoding="utf-8", newline="") as handle:
        return write_csv(data, handle)


@contextlib.contextmanager
def stdout_to_devnull():
    """Send what the tap writes to stdout nowhere, as a pipe to a fast target would."""
    real = sys.stdout
    with open(os.devnull, "w") as sink:
        sys.stdout = sink
        try:
            yield
        finally:
            sys.stdout = real


class LocalExport:
    """Stands in for the run's export pipeline: one window, read from a local file (kept)."""

    def __init__(self, csv_path: Path) -> None:
        self.window = Window(FIRST_DAY, FIRST_DAY)
        self.csv_path = csv_path

    def windows(self, stream: str) -> list[Window]:
        return [self.window]

    def files(self, stream: str):
        yield ExportedFile(self.window, self.csv_path, False, 0, "benchmark")


def tap_for(csv_path: Path, **settings) -> TapAircallAnalytics:
    """A tap whose calls_history stream reads `csv_path` instead of exporting it."""
    config = {
        **CREDENTIALS,
        "start_date": FIRST_DAY.isoformat(),
        "end_date": FIRST_DAY.isoformat(),
        "timezone": TIMEZONE,
        **settings,
    }
    tap = TapAircallAnalytics(config=config, validate_config=False, setup_mapper=True)
    planned = tap.streams["calls_history"].plan()
    SERVED.enter_context(tap.run.exporting(LocalExport(csv_path), [planned]))
    return tap


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def record_mode(csv_path: Path) -> float:
    """The tap's RECORD path: parse, type, encode, write to stdout."""
    stream = tap_for(csv_path).streams["calls_history"]
    with stdout_to_devnull():
        return timed(stream.sync)


def sdk_defaults(csv_path: Path) -> float:
    """The same records through a plain SDK stream with the SDK's default settings."""
    from singer_sdk import Stream, Tap

    class PlainStream(Stream):
        name = "calls_history"
        schema = json_schema(CALLS)

        def get_records(self, context):
            yield from RecordReader(CALLS, TIMEZONE, lambda message: None).read(csv_path)

    class PlainTap(Tap):
        name = "plain-tap"
        config_jsonschema: t.ClassVar[dict] = {"type": "object", "properties": {}}

        def discover_streams(self):
            return [PlainStream(self)]

    stream = PlainTap(config={}, validate_config=False).streams["calls_history"]
    with stdout_to_devnull():
        return timed(stream.sync)


def batch_mode(csv_path: Path, encoding: dict, directory: Path) -> float:
    """The tap's BATCH path: CSV to batch files with DuckDB."""
    batch_config = {"encoding": encoding, "storage": {"root": directory.as_uri(), "prefix": "bench-"}}
    stream = tap_for(csv_path, batch_config=batch_config).streams["calls_history"]
    with stdout_to_devnull():
        return timed(stream.sync)


def duckdb_baseline(csv_path: Path, options: str, destination: Path) -> float:
    """DuckDB alone: read_csv straight to the output format, no conversions."""

    def run() -> None:
        with duckdb.connect(config={"threads": 2}) as db:
            db.execute(f"COPY (SELECT * FROM read_csv('{csv_path}', header = true)) TO '{destination}' ({options})")

    return timed(run)


def peak_rss_mb(command: list[str], env: dict[str, str]) -> float:
    """Peak resident memory of a command, in MB (measured by a fresh parent process)."""
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe, *command], env=env, capture_output=True, text=True, check=True
    )
    return int(output.stdout.strip()) / 1024


def memory(rows: int, workdir: Path, batch: bool) -> float:
    """Peak RSS of a whole tap run exporting one window of `rows` Call History rows."""
    days = max(1, rows // CALLS_PER_DAY)
    last = FIRST_DAY + dt.timedelta(days=days - 1)
    config = {
        **CREDENTIALS,
        "start_date": FIRST_DAY.isoformat(),
        "end_date": last.isoformat(),
        "timezone": TIMEZONE,
        "window_days": days,
        "poll_interval_seconds": 0.5,
        "max_poll_interval_seconds": 1,
    }
    with Simulator(
        SimulatorConfig(calls_per_day=min(rows, CALLS_PER_DAY), export_seconds=0, rate_limit=100_000)
    ) as sim:
        config["api_url"] = sim.api_url
        if batch:
            config["batch_config"] = {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": (workdir / "memory").as_uri()},
            }
            (workdir / "memory").mkdir(exist_ok=True)
        (workdir / "config.json").write_text(json.dumps(config))
        catalog = json.loads(
            subprocess.run(
                [sys.executable, "-m", "tap_aircall_analytics", "--discover"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for stream in catalog["streams"]:
            top = next(entry for entry in stream["metadata"] if entry["breadcrumb"] == [])
            top["metadata"]["selected"] = stream["tap_stream_id"] == "calls_history"
        (workdir / "catalog.json").write_text(json.dumps(catalog))
        return peak_rss_mb(
            [
                sys.executable,
                "-m",
                "tap_aircall_analytics",
                "--config",
                str(workdir / "config.json"),
                "--catalog",
                str(workdir / "catalog.json"),
            ],
            {**os.environ, "TMPDIR": str(workdir)},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--memory-rows", default="100000,1000000,3000000")
    parser.add_argument("--quick", action="store_true", help="50,000 rows; memory at 50k and 200k rows")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.memory_rows = 50_000, "50000,200000"
    RESULTS.mkdir(parents=True, exist_ok=True)
    table: list[tuple[str, str, str]] = []

    def report(name: str, value: str, note: str = "") -> None:
        table.append((name, value, note))
        print(f"{name:<58} {value:>14}  {note}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tap-aircall-bench-") as temp:
        workdir = Path(temp)
        csv_path = workdir / "calls.csv"
        rows = make_csv(args.rows, csv_path)
        print(f"Call History CSV: {rows:,} rows x 24 columns, {csv_path.stat().st_size / 1e6:.0f} MB\n")

        speeds = {}
        speeds["sdk"] = rows / sdk_defaults(csv_path)
        speeds["record"] = rows / record_mode(csv_path)
        speeds["duckdb_json"] = rows / duckdb_baseline(csv_path, "FORMAT json", workdir / "baseline.jsonl")
        batches = workdir / "batches"
        batches.mkdir()
        speeds["batch_jsonl"] = rows / batch_mode(csv_path, {"format": "jsonl", "compression": "gzip"}, batches)
        speeds["duckdb_jsonl_gz"] = rows / duckdb_baseline(
            csv_path, "FORMAT json, COMPRESSION gzip", workdir / "baseline.jsonl.gz"
        )
        speeds["batch_parquet"] = rows / batch_mode(csv_path, {"format": "parquet", "compression": "none"}, batches)
        speeds["duckdb_parquet"] = rows / duckdb_baseline(csv_path, "FORMAT parquet", workdir / "baseline.parquet")

        report("RECORD: SDK defaults (same records, default stream)", f"{speeds['sdk']:,.0f} rows/s")
        report(
            "RECORD: tap-aircall-analytics -> stdout",
            f"{speeds['record']:,.0f} rows/s",
            f"{speeds['record'] / speeds['sdk']:.1f}x SDK defaults",
        )
        report(
            "RECORD: DuckDB read_csv -> JSON lines (no conversions)",
            f"{speeds['duckdb_json']:,.0f} rows/s",
            f"tap takes {speeds['duckdb_json'] / speeds['record']:.2f}x DuckDB's time",
        )
        report("BATCH jsonl.gz: tap", f"{speeds['batch_jsonl']:,.0f} rows/s")
        report(
            "BATCH jsonl.gz: DuckDB alone",
            f"{speeds['duckdb_jsonl_gz']:,.0f} rows/s",
            f"tap takes {speeds['duckdb_jsonl_gz'] / speeds['batch_jsonl']:.2f}x DuckDB's time",
        )
        report("BATCH parquet: tap", f"{speeds['batch_parquet']:,.0f} rows/s")
        report(
            "BATCH parquet: DuckDB alone",
            f"{speeds['duckdb_parquet']:,.0f} rows/s",
            f"tap takes {speeds['duckdb_parquet'] / speeds['batch_parquet']:.2f}x DuckDB's time",
        )

        memory_rows = [int(value) for value in args.memory_rows.split(",")]
        for batch in (False, True):
            for count in memory_rows:
                mode = "BATCH jsonl.gz" if batch else "RECORD"
                report(f"Peak RSS, whole tap run, {mode}, {count:,} rows", f"{memory(count, workdir, batch):.0f} MB")

    (RESULTS / "throughput.json").write_text(json.dumps({"rows": rows, "speeds": speeds, "table": table}, indent=2))
    lines = ["| Measurement | Result | |", "|:--|--:|:--|"] + [f"| {a} | {b} | {c} |" for a, b, c in table]
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    chart(speeds, rows)


def chart(speeds: dict[str, float], rows: int) -> None:
    """Save the throughput bars as a PNG (needs matplotlib: pip install -e '.[bench]')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install -e '.[bench]')")
        return
    labels = {
        "sdk": "RECORD\nSDK defaults",
        "record": "RECORD\ntap",
        "duckdb_json": "RECORD\nDuckDB alone",
        "batch_jsonl": "jsonl.gz\ntap",
        "duckdb_jsonl_gz": "jsonl.gz\nDuckDB alone",
        "batch_parquet": "parquet\ntap",
        "duckdb_parquet": "parquet\nDuckDB alone",
    }
    colours = ["#999999", "#1f77b4", "#bbbbbb", "#1f77b4", "#bbbbbb", "#1f77b4", "#bbbbbb"]
    figure, axis = plt.subplots(figsize=(9, 4))
    bars = axis.bar([labels[key] for key in labels], [speeds[key] / 1000 for key in labels], color=colours)
    axis.bar_label(bars, fmt="%.0fk")
    axis.set_ylabel("thousand rows per second")
    axis.set_title(f"Call History CSV ({rows:,} rows x 24 columns) on 2 cores")
    figure.tight_layout()
    for path in (RESULTS / "throughput.png", ROOT / "docs" / "benchmark.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    print(f"chart saved to {RESULTS / 'throughput.png'} and docs/benchmark.png")


if __name__ == "__main__":
    main()
