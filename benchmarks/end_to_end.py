"""Whole tap runs as a user meets them: the tap's stdout read through a pipe, every wait included.

    .venv/bin/python benchmarks/end_to_end.py               # 400,000 Call History rows, 3 runs each
    .venv/bin/python benchmarks/end_to_end.py --rows 100000 --runs 5
    .venv/bin/python benchmarks/end_to_end.py --dialect snake,iso-ms-z,seconds,true-false  # another spelling
    .venv/bin/python benchmarks/end_to_end.py --tree before=/tmp/tap-before  # also another source tree's tap

Each run is a new `tap-aircall-analytics` process exporting one window from the simulator
(the file is made once and served again to every run, so its making is not timed) and
writing RECORD or BATCH messages into a pipe that this script reads to the end. In the
same run, DuckDB alone converts the same CSV file to JSON lines into the same kind of
pipe (the baseline of every ratio), and to Parquet (for reference). Runs alternate
round by round; each figure is the median, each ratio the median of the rounds' ratios.
Peak RSS is the process's own maximum resident size.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tap_aircall_analytics import clock
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig
from tap_aircall_analytics.simulator.data import FileOptions, ReportData, write_csv
from tap_aircall_analytics.simulator.dialects import Dialect

CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]
CALLS_PER_DAY = 50_000
FIRST_DAY = clock.today(dt.timezone.utc) - dt.timedelta(days=60)  # inside Call History's 6 months, days to spare
TIMEZONE = "Europe/Paris"
TAP = [sys.executable, "-m", "tap_aircall_analytics"]


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run `command`, read its stdout to the end; return wall seconds, peak RSS (MiB), bytes read.

    A last item `PYTHONPATH=FOLDER` is not an argument: the command runs with that PYTHONPATH.
    """
    if command[-1].startswith("PYTHONPATH="):
        env = {**(env or os.environ), "PYTHONPATH": command[-1].split("=", 1)[1]}
        command = command[:-1]
    started = time.perf_counter()
    # Run outside any checkout: `python -m` puts the working folder first on sys.path, before PYTHONPATH.
    folder = (env or os.environ).get("TMPDIR")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=folder)
    size = 0
    while chunk := process.stdout.read(1 << 16):
        size += len(chunk)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... exited {process.returncode}")
    return wall, usage.ru_maxrss / 1024, size


def duckdb_command(csv_path: Path, destination: str, options: str) -> list[str]:
    script = (
        "import duckdb; duckdb.connect(config={'threads': 2}).execute("
        f"\"COPY (SELECT * FROM read_csv('{csv_path}', header = true)) TO '{destination}' ({options})\")"
    )
    return [sys.executable, "-c", script]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dialect", default="", help="serve the file in another spelling (simulator dialects)")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        help="NAME=FOLDER: also time the tap of another source tree (a folder holding tap_aircall_analytics/)",
    )
    args = parser.parse_args()
    days = max(1, args.rows // CALLS_PER_DAY)
    last = FIRST_DAY + dt.timedelta(days=days - 1)
    with (
        tempfile.TemporaryDirectory(prefix="tap-aircall-e2e-") as temp,
        Simulator(
            SimulatorConfig(
                calls_per_day=min(args.rows, CALLS_PER_DAY),
                export_seconds=0,
                rate_limit=1_000_000,
                reuse_files=True,
                dialect=args.dialect,
            )
        ) as sim,
    ):
        workdir = Path(temp)
        csv_path = workdir / "calls.csv"
        with open(csv_path, "w", encoding="utf-8", newline="") as handle:
            rows = write_csv(
                ReportData(CALLS, FIRST_DAY, last, TIMEZONE, seed=1, calls_per_day=min(args.rows, CALLS_PER_DAY)),
                handle,
                FileOptions(dialect=Dialect.parse(args.dialect)),
            )
        config = {
            "api_id": "demo-api-id",
            "api_token": "demo-api-token",
            "api_url": sim.api_url,
            "start_date": FIRST_DAY.isoformat(),
            "end_date": last.isoformat(),
            "timezone": TIMEZONE,
            "window_days": days,
            "poll_interval_seconds": 0.05,
            "max_poll_interval_seconds": 0.1,
        }
        catalog = json.loads(subprocess.run([*TAP, "--discover"], capture_output=True, text=True, check=True).stdout)
        for stream in catalog["streams"]:
            top = next(entry for entry in stream["metadata"] if entry["breadcrumb"] == [])
            top["metadata"]["selected"] = stream["tap_stream_id"] == "calls_history"
        (workdir / "catalog.json").write_text(json.dumps(catalog))
        env = {**os.environ, "TMPDIR": str(workdir)}

        def tap(name: str, **settings: object) -> list[str]:
            (workdir / f"{name}.json").write_text(json.dumps({**config, **settings}))
            return [*TAP, "--config", str(workdir / f"{name}.json"), "--catalog", str(workdir / "catalog.json")]

        parquet_dir = workdir / "parquet"
        parquet_dir.mkdir()
        record = tap("record")
        parquet = tap(
            "parquet",
            batch_config={
                "encoding": {"format": "parquet", "compression": "none"},
                "storage": {"root": parquet_dir.as_uri()},
            },
        )
        commands = {
            "tap RECORD": record,
            "tap BATCH parquet": parquet,
            **{
                f"tap {mode} {name}": [*command, f"PYTHONPATH={Path(folder).resolve()}"]
                for name, folder in (item.split("=", 1) for item in args.tree)
                for mode, command in (("RECORD", record), ("BATCH parquet", parquet))
            },
            "DuckDB alone, JSON lines": duckdb_command(csv_path, "/dev/stdout", "FORMAT json"),
            "DuckDB alone, Parquet": duckdb_command(csv_path, str(workdir / "duckdb.parquet"), "FORMAT parquet"),
        }
        spelling = f" ({args.dialect})" if args.dialect else ""
        print(
            f"Call History{spelling}: {rows:,} rows x 24 columns, {csv_path.stat().st_size / 1e6:.0f} MB, "
            f"{args.runs} rounds after a warm-up\n"
        )
        # Bytecode as an installed tap has it (pip writes it at install), whatever PYTHONDONTWRITEBYTECODE says.
        for folder in [Path(clock.__file__).parent.parent, *(Path(item.split("=", 1)[1]) for item in args.tree)]:
            compileall.compile_dir(folder / "tap_aircall_analytics", quiet=1)
        for command in commands.values():
            measured(command, env)  # warm-up: the simulator makes the file once
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                results[name].append(measured(command, env))
                for leftover in parquet_dir.iterdir():
                    leftover.unlink()
        baseline = results["DuckDB alone, JSON lines"]
        print(f"{'':<28}{'wall s':>8}{'rows/s':>11}{'x DuckDB JSON':>15}{'peak RSS MiB':>14}")
        for name, runs in results.items():
            wall = statistics.median(run[0] for run in runs)
            ratio = statistics.median(run[0] / base[0] for run, base in zip(runs, baseline))
            print(
                f"{name:<28}{wall:>8.2f}{rows / wall:>11,.0f}{ratio:>14.2f}x{max(run[1] for run in runs):>14.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
