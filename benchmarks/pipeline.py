"""Whole `tap | target-postgres` pipelines, one tap source tree against another, runs paired.

    .venv/bin/python benchmarks/pipeline.py --target /path/to/venv/bin/target-postgres \\
        --tree with=. --tree without=/tmp/tap-without-it            # RECORD, 50,000 Call History rows
    .venv/bin/python benchmarks/pipeline.py --target ... --batch --tree with=. --tree without=/tmp/x

Each run is a new tap process (its package taken from the tree given, through PYTHONPATH)
exporting one window from the simulator, piped into a new meltanolabs target-postgres process
loading PostgreSQL (127.0.0.1:5432, user postgres with trust auth, database `test`, each tree
its own schema, `load_method: overwrite`). A tree is a folder holding `tap_aircall_analytics/`,
e.g. `git archive COMMIT tap_aircall_analytics | tar -x -C /tmp/tap-without-it`. Runs alternate
tree by tree, round by round; each figure is the median wall time, each ratio the median of the
rounds' ratios to the first tree. With --batch the tap writes jsonl.gz BATCH files that the
target loads.
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
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

FIRST_DAY = clock.today(dt.timezone.utc) - dt.timedelta(days=60)
TAP = [sys.executable, "-m", "tap_aircall_analytics"]


def run_pipeline(tap: list[str], target: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `tap | target`; return wall seconds and the tap's CPU seconds (user + system)."""
    started = time.perf_counter()
    # Run outside any checkout: `python -m` puts the working folder first on sys.path, before PYTHONPATH.
    producer = subprocess.Popen(tap, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=env["TMPDIR"])
    consumer = subprocess.Popen(target, stdin=producer.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert producer.stdout is not None
    producer.stdout.close()
    _, tap_status, usage = os.wait4(producer.pid, 0)
    _, errors = consumer.communicate()
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(tap_status) or consumer.returncode:
        raise SystemExit(f"pipeline failed: tap {tap_status}, target {consumer.returncode}: {errors[-400:]!r}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", default="target-postgres", help="the target-postgres executable")
    parser.add_argument("--tree", action="append", required=True, help="NAME=FOLDER holding tap_aircall_analytics/")
    parser.add_argument("--batch", action="store_true", help="BATCH jsonl.gz instead of RECORD messages")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree)
    with (
        tempfile.TemporaryDirectory(prefix="tap-aircall-pipeline-") as temp,
        Simulator(
            SimulatorConfig(calls_per_day=args.rows, export_seconds=0, rate_limit=1_000_000, reuse_files=True)
        ) as sim,
    ):
        workdir = Path(temp)
        config = {
            "api_id": "demo-api-id",
            "api_token": "demo-api-token",
            "api_url": sim.api_url,
            "start_date": FIRST_DAY.isoformat(),
            "end_date": FIRST_DAY.isoformat(),
            "timezone": "Europe/Paris",
            "poll_interval_seconds": 0.05,
            "max_poll_interval_seconds": 0.1,
        }
        if args.batch:
            batches = workdir / "batches"
            batches.mkdir()
            config["batch_config"] = {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": batches.as_uri()},
            }
        (workdir / "tap.json").write_text(json.dumps(config))
        catalog = json.loads(subprocess.run([*TAP, "--discover"], capture_output=True, text=True, check=True).stdout)
        for stream in catalog["streams"]:
            top = next(entry for entry in stream["metadata"] if entry["breadcrumb"] == [])
            top["metadata"]["selected"] = stream["tap_stream_id"] == "calls_history"
        (workdir / "catalog.json").write_text(json.dumps(catalog))
        commands = {}
        for name, folder in trees.items():
            target_config = workdir / f"target-{name}.json"
            target_config.write_text(
                json.dumps(
                    {
                        "host": "127.0.0.1",
                        "port": 5432,
                        "user": "postgres",
                        "password": "unused",
                        "database": "test",
                        "default_target_schema": f"pipeline_{name}".replace("-", "_"),
                        "load_method": "overwrite",
                    }
                )
            )
            env = {**os.environ, "TMPDIR": str(workdir), "PYTHONPATH": str(Path(folder).resolve())}
            tap = [*TAP, "--config", str(workdir / "tap.json"), "--catalog", str(workdir / "catalog.json")]
            commands[name] = (tap, [args.target, "--config", str(target_config)], env)
        for folder in trees.values():  # bytecode as an installed tap has it, whatever PYTHONDONTWRITEBYTECODE says
            compileall.compile_dir(Path(folder) / "tap_aircall_analytics", quiet=1)
        for command in commands.values():
            run_pipeline(*command)  # warm-up: the simulator makes the file once, the tables exist
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                results[name].append(run_pipeline(*command))
        first = results[next(iter(results))]
        mode = "BATCH jsonl.gz" if args.batch else "RECORD"
        print(f"tap | target-postgres, {mode}, {args.rows:,} Call History rows, {args.runs} rounds after a warm-up")
        print(f"{'':<16}{'wall s':>8}{'x first':>9}{'tap CPU s':>11}  load average {os.getloadavg()[0]:.1f}")
        for name, runs in results.items():
            wall = statistics.median(run[0] for run in runs)
            ratio = statistics.median(run[0] / base[0] for run, base in zip(runs, first))
            cpu = statistics.median(run[1] for run in runs)
            print(f"{name:<16}{wall:>8.2f}{ratio:>8.3f}x{cpu:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
