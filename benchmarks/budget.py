"""A backfill under the company's rate limit, shared with its other integrations.

    .venv/bin/python benchmarks/budget.py              # about 2-3 minutes
    .venv/bin/python benchmarks/budget.py --weeks 3    # a shorter backfill

A backfill of all twelve reports (six weeks to yesterday, default settings: each report's
own windows, 12 exports in flight) against the simulator as a company's account looks to
it: a rate limit of 60 requests a minute, other integrations spending 20 a minute of it in
bursts of 5, exports that take 5 s plus 1 s per day of their range, +-50% (seeded). It prints:

- the API requests per export (a request and one poll is 2);
- the 429s, the tap's and the other integrations';
- the lowest `X-AircallApi-Remaining` answered to the tap, against the reserve it keeps
  (a fifth of the limit), and the lowest after anyone's request;
- the wall time against the floor: the larger of what the limit allows at two requests per
  export (at the 40 a minute the other integrations leave) and what the exports' own times
  allow at `max_concurrent_exports` (each export started as soon as a slot frees, in the
  order the tap requests them, and seen done the moment it is).

The tap is a new process whose stdout this script reads through a pipe to the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tap_aircall_analytics import clock
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

TAP = [sys.executable, "-m", "tap_aircall_analytics"]
LIMIT = 60
BACKGROUND = 20
CONCURRENT = 12
SIMULATED = {
    "rate_limit": LIMIT,
    "background_per_minute": BACKGROUND,
    "background_burst": 5,
    "export_seconds": 5.0,
    "export_seconds_per_day": 1.0,
    "export_jitter": 0.5,
    "calls_per_day": 40,
}


def run_tap(workdir: Path, config: dict) -> tuple[float, str]:
    """Run the tap on every stream; return its wall seconds and its stderr."""
    (workdir / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    with open(workdir / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            [*TAP, "--config", str(workdir / "config.json")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "TMPDIR": str(workdir)},
        )
        assert process.stdout is not None
        while process.stdout.read(1 << 16):
            pass
        status = process.wait()
    wall = time.perf_counter() - started
    log = (workdir / "stderr.log").read_text()
    if status != 0:
        raise SystemExit(f"the tap failed:\n{log[-3000:]}")
    return wall, log


def latency_floor(seconds: list[float], slots: int) -> float:
    """When the last export is done if each starts the moment one of `slots` frees, in this order."""
    free = [0.0] * slots
    end = 0.0
    for took in seconds:
        start = heapq.heappop(free)
        end = max(end, start + took)
        heapq.heappush(free, start + took)
    return end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=6, help="weeks of backfill, to yesterday (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the export times and the data")
    args = parser.parse_args()
    yesterday = clock.today(dt.timezone.utc) - dt.timedelta(days=1)
    first = yesterday - dt.timedelta(days=7 * args.weeks - 1)
    with (
        tempfile.TemporaryDirectory(prefix="tap-aircall-budget-") as temp,
        Simulator(SimulatorConfig(seed=args.seed, **SIMULATED)) as sim,
    ):
        config = {
            "api_id": "demo-api-id",
            "api_token": "demo-api-token",
            "api_url": sim.api_url,
            "start_date": first.isoformat(),
            "end_date": yesterday.isoformat(),
        }
        wall, _ = run_tap(Path(temp), config)
        budget = sim.budget
        exports = len(sim.export_seconds)
        limit_floor = 60 * 2 * exports / (LIMIT - BACKGROUND)
        slots_floor = latency_floor([took for _, _, took in sim.export_seconds], CONCURRENT)
        floor = max(limit_floor, slots_floor)
        reserve = LIMIT // 5
    print(
        f"backfill of the twelve reports, {args.weeks} weeks ({first}..{yesterday}), default settings; "
        f"rate limit {LIMIT}/min, other integrations {BACKGROUND}/min in bursts of {SIMULATED['background_burst']}, "
        "exports 5 s + 1 s/day +-50%"
    )
    print(f"  exports {exports}, API requests {budget.requests}: {budget.requests / exports:.2f} per export")
    others = f"{budget.background_refused} (of {budget.background_requests})"
    print(f"  429s: tap {budget.refused}, other integrations {others}")
    print(
        f"  lowest Remaining answered to the tap {budget.lowest_remaining} (reserve {reserve}); "
        f"after anyone's request {budget.lowest_remaining_overall}"
    )
    print(
        f"  wall {wall:.1f} s; floor {floor:.1f} s = max(limit at 2 requests/export: {limit_floor:.1f} s, "
        f"export times at {CONCURRENT} in flight: {slots_floor:.1f} s); {wall / floor:.2f}x the floor"
    )


if __name__ == "__main__":
    main()
