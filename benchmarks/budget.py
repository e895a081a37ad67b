"""A backfill and daily runs under the company's rate limit, shared with its other integrations, per limiter shape.

    .venv/bin/python benchmarks/budget.py                        # every shape, about 5 minutes each
    .venv/bin/python benchmarks/budget.py --shape bucket          # one shape
    .venv/bin/python benchmarks/budget.py --weeks 3 --daily 2     # a shorter backfill, two daily runs
    .venv/bin/python benchmarks/budget.py --shape fixed --rate-days 0 --seed 2   # requests per export only
    .venv/bin/python benchmarks/budget.py --weeks 0                # the rate table only
    .venv/bin/python benchmarks/budget.py --hostile               # the test suite's hostile API, under a bucket

A backfill of all twelve reports (six weeks to yesterday, default settings: each report's
own windows, 12 exports in flight) against the simulator as a company's account looks to
it: a rate limit of 120 requests a minute, other integrations spending 12 a minute of it in
bursts of 3, exports that take 5 s plus 1 s per day of their range, +-50% (seeded). Then
daily runs, each a day later, from the state the run before left. Per limiter shape:

- fixed: fixed 60-s windows, Reset a UNIX time
- sliding: a sliding 60-s log
- bucket: a token bucket of 20, refilled at 120 a minute (smaller than the reserve of 24)
- seconds: fixed 60-s windows, Reset sent as the seconds left

It prints, per shape, a row of the table from a run the budget holds back (eight days of
one-day windows of quick exports, 1 s + 0.2 s/day: far more requests than the limit
allows): the tap's request rate over the middle 80% of its requests, that rate against its
fair share (the limit less a fifth less the others' 12), the 429s (the tap's and the
others'), and the limiter as the tap's run summary names it. Then, per shape, the API
requests per export of the backfill and of each daily run (a request and one poll is 2).

The tap is a new process whose stdout this script reads through a pipe to the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tap_aircall_analytics import clock
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

TAP = [sys.executable, "-m", "tap_aircall_analytics"]
KEEP_LOGS: Path | None = None  # --logs: where each run's log is copied
LIMIT = 120
BACKGROUND = 12
FAIR_SHARE = LIMIT - LIMIT // 5 - BACKGROUND
SIMULATED = {
    "rate_limit": LIMIT,
    "background_per_minute": BACKGROUND,
    "background_burst": 3,
    "export_seconds": 5.0,
    "export_seconds_per_day": 1.0,
    "export_jitter": 0.5,
    "calls_per_day": 40,
}
SHAPES = {
    "fixed": {"rate_limit_style": "fixed"},
    "sliding": {"rate_limit_style": "sliding"},
    "bucket": {"rate_limit_style": "bucket", "rate_bucket_size": 20},
    "seconds": {"rate_limit_style": "fixed", "rate_reset_style": "seconds"},
}


def run_tap(workdir: Path, config: dict, state: dict | None) -> tuple[float, str, dict | None]:
    """Run the tap on every stream; return its wall seconds, its stderr and its last STATE."""
    (workdir / "config.json").write_text(json.dumps(config))
    command = [*TAP, "--config", str(workdir / "config.json")]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(workdir / "state.json")]
    started = time.perf_counter()
    last_state = None
    with open(workdir / "stderr.log", "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=os.environ)
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(b'{"type":"STATE"') or line.startswith(b'{"type": "STATE"'):
                last_state = json.loads(line)["value"]
        status = process.wait()
    wall = time.perf_counter() - started
    log = (workdir / "stderr.log").read_text()
    if KEEP_LOGS is not None:
        KEEP_LOGS.mkdir(parents=True, exist_ok=True)
        (KEEP_LOGS / f"run{len(list(KEEP_LOGS.glob('run*.log'))) + 1:02d}.log").write_text(log)
    if status != 0:
        raise SystemExit(f"the tap failed:\n{log[-3000:]}")
    return wall, log, last_state


def tap_config(sim: Simulator, first: dt.date) -> dict:
    """The tap's settings for `sim`, from `first`: the defaults otherwise."""
    return {"api_id": "demo-api-id", "api_token": "demo-api-token", "api_url": sim.api_url, "start_date": str(first)}


def middle_rate(times: list[float]) -> float:
    """Requests a minute over the middle 80% of `times`."""
    times = sorted(times)
    low, high = len(times) // 10, len(times) - 1 - len(times) // 10
    if high <= low or times[high] <= times[low]:
        return float("nan")
    return (high - low) / (times[high] - times[low]) * 60


def seen_limiter(log: str) -> str:
    line = next((line for line in log.splitlines() if "rate limit seen:" in line), "")
    return line.split("rate limit seen:", 1)[-1].strip()


def poll_phases(log: str) -> str:
    """The polls of the run's exports by what they were for, from the tap's `ready after` lines."""
    blind = on_prediction = after_miss = 0
    for line in log.splitlines():
        match = re.search(r"ready after [0-9.]+ s \((\d+) poll\(s\)(.*)\)$", line)
        if match is None:
            continue
        polls, said = int(match[1]), match[2]
        early = re.search(r"(\d+) before any export was done", said)
        late = re.search(r"(\d+) after a miss", said)
        blind += int(early[1]) if early else 0
        after_miss += int(late[1]) if late else 0
        on_prediction += polls - (int(early[1]) if early else 0) - (int(late[1]) if late else 0)
    return (
        f"polls: {blind} before any export was done, {on_prediction} first on a prediction, {after_miss} after a miss"
    )


def rate_row(shape: str, days: int, seed: int) -> None:
    """The tap's rate where the budget holds it: one-day windows of quick exports, more than the limit allows."""
    yesterday = clock.today(dt.timezone.utc) - dt.timedelta(days=1)
    quick = {**SIMULATED, "export_seconds": 1.0, "export_seconds_per_day": 0.2}
    with (
        tempfile.TemporaryDirectory(prefix="tap-aircall-budget-") as temp,
        Simulator(SimulatorConfig(seed=seed, **quick, **SHAPES[shape])) as sim,
    ):
        first = yesterday - dt.timedelta(days=days - 1)
        config = {**tap_config(sim, first), "end_date": yesterday.isoformat(), "window_days": 1}
        _, log, _ = run_tap(Path(temp), config, None)
        budget = sim.budget
        rate = middle_rate(budget.tap_times)
    print(
        f"| {shape:<8} | {rate:5.1f} a minute | {rate / FAIR_SHARE:4.2f} | tap {budget.refused}, "
        f"others {budget.background_refused} of {budget.background_requests} |"
        f"  ({len(budget.tap_times)} requests; limiter seen: {seen_limiter(log)})"
    )


def hostile(seed: int) -> None:
    """The test suite's hostile API (tests/test_faults.py: 500s, 429s, 1-s links, cut downloads, failed and
    forgotten exports) under a token bucket of 20 refilled at 120 a minute, others spending 12 a minute."""
    last = clock.today(dt.timezone.utc) - dt.timedelta(days=1)
    first = last - dt.timedelta(days=5)
    faults = {
        "error_every": 9,
        "fail_first_export": True,
        "fail_over_days": 2,
        "cut_download_once": True,
        "link_seconds": 1,
        "refuse_first_download": True,
        "forget_first_export": True,
        "zipped": True,
        "export_seconds": 0.4,
        "empty_days": frozenset({first + dt.timedelta(days=1)}),
    }
    bucket = {**SHAPES["bucket"], "rate_limit": LIMIT, "background_per_minute": BACKGROUND, "background_burst": 3}
    with (
        tempfile.TemporaryDirectory(prefix="tap-aircall-budget-") as temp,
        Simulator(SimulatorConfig(seed=seed, **faults, **bucket)) as sim,
    ):
        config = {**tap_config(sim, first), "end_date": str(last), "window_days": 3, "max_concurrent_exports": 3}
        config |= {"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2}  # as the test suite polls
        wall, log, _ = run_tap(Path(temp), config, None)
        budget = sim.budget
    print(
        f"hostile API under a bucket of 20: wall {wall:.0f} s, {budget.requests} requests, 429s tap {budget.refused}, "
        f"others {budget.background_refused}; limiter seen: {seen_limiter(log)}"
    )


def bench(shape: str, weeks: int, daily: int, seed: int) -> None:
    yesterday = clock.today(dt.timezone.utc) - dt.timedelta(days=1)
    first = yesterday - dt.timedelta(days=7 * weeks - 1)
    with (
        tempfile.TemporaryDirectory(prefix="tap-aircall-budget-") as temp,
        Simulator(SimulatorConfig(seed=seed, **SIMULATED, **SHAPES[shape])) as sim,
    ):
        config = tap_config(sim, first)
        os.environ.pop(clock.TODAY_VARIABLE, None)
        wall, log, state = run_tap(Path(temp), {**config, "end_date": yesterday.isoformat()}, None)
        budget = sim.budget
        exports = len(sim.export_seconds)
        print(
            f"    backfill {weeks} weeks: {exports} exports, {budget.requests} requests, "
            f"{budget.requests / exports:.2f} per export, wall {wall:.0f} s; lowest Remaining to the tap "
            f"{budget.lowest_remaining}, after anyone's {budget.lowest_remaining_overall}"
        )
        print(f"    {poll_phases(log)}")
        print(f"    limiter seen: {seen_limiter(log)}")
        for day in range(1, daily + 1):
            today = yesterday + dt.timedelta(days=day + 1)
            os.environ[clock.TODAY_VARIABLE] = today.isoformat()  # the simulator reads it too
            before_requests, before_exports = budget.requests, len(sim.export_seconds)
            wall, log, state = run_tap(
                Path(temp), {**config, "end_date": (today - dt.timedelta(days=1)).isoformat()}, state
            )
            requests, exports = budget.requests - before_requests, len(sim.export_seconds) - before_exports
            print(
                f"    daily run {day} (as of {today}): {exports} exports, {requests} requests, "
                f"{requests / max(1, exports):.2f} per export, wall {wall:.0f} s; {poll_phases(log)}"
            )
        os.environ.pop(clock.TODAY_VARIABLE, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append", help="a limiter shape (default: all)")
    parser.add_argument(
        "--weeks", type=int, default=6, help="weeks of backfill, to yesterday (default 6; 0: the rate rows only)"
    )
    parser.add_argument("--daily", type=int, default=3, help="daily runs after the backfill (default 3)")
    parser.add_argument(
        "--rate-days", type=int, default=8, help="days of one-day windows for the rate (default 8; 0: no rate rows)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the export times and the data")
    parser.add_argument("--hostile", action="store_true", help="only the hostile API under a bucket (about 3 min)")
    parser.add_argument("--logs", type=Path, help="a folder to keep each run's log in (run01.log, run02.log, ...)")
    args = parser.parse_args()
    global KEEP_LOGS
    KEEP_LOGS = args.logs
    if args.hostile:
        hostile(args.seed)
        return
    print(
        f"rate limit {LIMIT}/min, other integrations {BACKGROUND}/min in bursts of {SIMULATED['background_burst']}, "
        f"fair share {FAIR_SHARE}/min (limit - a fifth - the others); exports 5 s + 1 s/day +-50%"
    )
    if args.rate_days:
        print("| limiter | tap req rate | of fair share | 429s |")
    for shape in (args.shape or list(SHAPES)) if args.rate_days else []:
        rate_row(shape, args.rate_days, args.seed)
    for shape in (args.shape or list(SHAPES)) if args.weeks else []:
        print(f"{shape}:")
        bench(shape, args.weeks, args.daily, args.seed)


if __name__ == "__main__":
    main()
