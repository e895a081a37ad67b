"""What a run waits for: whole tap runs against the simulator with slow exports.

    .venv/bin/python benchmarks/waiting.py            # about 3 minutes
    .venv/bin/python benchmarks/waiting.py --runs 1   # about 1 minute

1. A daily run of the twelve reports (one window each), every export PENDING 3 s, against
   the same run of one report: the twelve should cost about one export's wait, not twelve.
2. A backfill of the twelve reports x 8 one-day windows with max_concurrent_exports 8:
   against the floor of (exports / 8) x 3 s.
3. Peak RSS of a run whose 50 files wait on disk at once (its stdout read only after 8 s),
   against the same run read at once, and a run with one export in flight holding one file
   at a time: memory must not grow with the files waiting (downloads in flight cost a little).

Each run is a new tap process whose stdout this script reads through a pipe to the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tap_aircall_analytics import clock
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

TAP = [sys.executable, "-m", "tap_aircall_analytics"]
EXPORT_SECONDS = 3.0
YESTERDAY = clock.today(dt.timezone.utc) - dt.timedelta(days=1)


def run_tap(
    workdir: Path, config: dict, streams: list[str] | None, *, read_after: float = 0
) -> tuple[float, float, str]:
    """Run the tap; return wall seconds, peak RSS (MiB) and its stderr. `read_after`: wait before reading stdout."""
    catalog = json.loads(subprocess.run([*TAP, "--discover"], capture_output=True, text=True, check=True).stdout)
    for stream in catalog["streams"]:
        top = next(entry for entry in stream["metadata"] if entry["breadcrumb"] == [])
        top["metadata"]["selected"] = streams is None or stream["tap_stream_id"] in streams
    (workdir / "catalog.json").write_text(json.dumps(catalog))
    (workdir / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    with open(workdir / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            [*TAP, "--config", str(workdir / "config.json"), "--catalog", str(workdir / "catalog.json")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "TMPDIR": str(workdir)},
        )
        time.sleep(read_after)
        while process.stdout.read(1 << 16):
            pass
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the tap failed:\n{(workdir / 'stderr.log').read_text()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, (workdir / "stderr.log").read_text()


def settings(sim: Simulator, first: dt.date, **more: object) -> dict:
    return {
        "api_id": "demo-api-id",
        "api_token": "demo-api-token",
        "api_url": sim.api_url,
        "start_date": first.isoformat(),
        "end_date": YESTERDAY.isoformat(),
        "window_days": 1,
        "poll_interval_seconds": 0.25,
        "max_poll_interval_seconds": 0.5,
        **more,
    }


def daily(workdir: Path, runs: int) -> None:
    with Simulator(SimulatorConfig(export_seconds=EXPORT_SECONDS, rate_limit=1_000_000)) as sim:
        one, twelve = [], []
        for _ in range(runs):
            one.append(run_tap(workdir, settings(sim, YESTERDAY), ["calls_history"])[0])
            twelve.append(run_tap(workdir, settings(sim, YESTERDAY), None)[0])
    ratio = statistics.median(t / o for t, o in zip(twelve, one))
    print(
        f"1. daily run, exports PENDING {EXPORT_SECONDS:g} s: one report {statistics.median(one):.1f} s, "
        f"twelve reports {statistics.median(twelve):.1f} s = {ratio:.2f}x one report's run, "
        f"{statistics.median(twelve) / EXPORT_SECONDS:.2f}x one export's wait",
        flush=True,
    )


def backfill(workdir: Path) -> None:
    with Simulator(SimulatorConfig(export_seconds=EXPORT_SECONDS, rate_limit=1_000_000)) as sim:
        wall, _, _ = run_tap(workdir, settings(sim, YESTERDAY - dt.timedelta(days=7), max_concurrent_exports=8), None)
        exports = sum(sim.exports_created.values())
    floor = math.ceil(exports / 8) * EXPORT_SECONDS
    print(
        f"2. backfill, twelve reports x 8 days, max_concurrent_exports 8: {exports} exports in {wall:.1f} s; "
        f"floor ({exports} / 8) x {EXPORT_SECONDS:g} s = {floor:.0f} s; {wall / floor:.2f}x the floor",
        flush=True,
    )


def memory(workdir: Path) -> None:
    held = {}
    fast = {"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.1}
    cases = (
        ("1 in flight, read at once", {"max_concurrent_exports": 1, **fast}, 0),
        ("1 in flight, read after 8 s", {"max_concurrent_exports": 1, **fast}, 8),
        ("12 in flight, read after 8 s", fast, 8),
    )
    with Simulator(SimulatorConfig(export_seconds=0.05, calls_per_day=5_000, rate_limit=1_000_000)) as sim:
        first = YESTERDAY - dt.timedelta(days=49)
        for name, more, delay in cases:
            _, rss, stderr = run_tap(workdir, settings(sim, first, **more), ["calls_history"], read_after=delay)
            files, megabytes = re.search(r"waiting on disk: (\d+) at most, ([\d.]+) MB", stderr).groups()
            held[name] = (int(files), rss)
            print(
                f"3. calls_history, 50 one-day windows, {name}: at most {files} files ({float(megabytes):.0f} MB) "
                f"waiting on disk, peak RSS {rss:.0f} MiB",
                flush=True,
            )
    (few, few_rss), (many, many_rss) = held[cases[0][0]], held[cases[1][0]]
    print(f"   one export in flight, {many} files waiting against {few}: peak RSS {many_rss / few_rss:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the daily measurement")
    parser.add_argument("--only", choices=("daily", "backfill", "memory"), help="one measurement alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tap-aircall-waiting-") as temp:
        workdir = Path(temp)
        if args.only in (None, "daily"):
            daily(workdir, args.runs)
        if args.only in (None, "backfill"):
            backfill(workdir)
        if args.only in (None, "memory"):
            memory(workdir)


if __name__ == "__main__":
    main()
