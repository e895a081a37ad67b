"""How long a run takes to give up on a hostile API, and to stop on a signal, as a user meets it.

    .venv/bin/python benchmarks/hostile_waits.py                       # default settings: minutes
    .venv/bin/python benchmarks/hostile_waits.py --request-timeout 2   # a quick look

Each case is one `tap-aircall-analytics` process exporting yesterday's Call History from the
simulator with one fault on, timed from its start to its exit:
- a silent API (it takes the connection and never answers);
- a silent download host;
- an API that answers 429 with `Retry-After: 3600`, stopped with SIGTERM once the first
  request is in: the seconds from the signal to the exit, and the requests sent after it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tap_aircall_analytics import clock
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

TAP = [sys.executable, "-m", "tap_aircall_analytics"]
YESTERDAY = (clock.today(dt.timezone.utc) - dt.timedelta(days=1)).isoformat()


def start(sim: Simulator, folder: Path, **settings: object) -> subprocess.Popen:
    config = {"api_id": sim.config.api_id, "api_token": sim.config.api_token, "api_url": sim.api_url}
    config |= {"start_date": YESTERDAY, "end_date": YESTERDAY, **settings}
    (folder / "config.json").write_text(json.dumps(config))
    catalog = json.loads(subprocess.run([*TAP, "--discover"], capture_output=True, text=True, check=True).stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "calls_history"
    (folder / "catalog.json").write_text(json.dumps(catalog))
    command = [*TAP, "--config", str(folder / "config.json"), "--catalog", str(folder / "catalog.json")]
    with open(folder / "stderr", "w") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ})


def last_line(folder: Path) -> str:
    return (folder / "stderr").read_text().strip().splitlines()[-1]


def silent(host: str, settings: dict) -> None:
    with tempfile.TemporaryDirectory() as folder, Simulator(SimulatorConfig(silent_host=host)) as sim:
        started = time.monotonic()
        process = start(sim, Path(folder), **settings)
        process.wait()
        print(f"silent {host:<9}: gave up after {time.monotonic() - started:6.1f} s, exit {process.returncode}")
        print(f"    {last_line(Path(folder))}")


def stopped_in_a_long_wait(settings: dict) -> None:
    faults = SimulatorConfig(rate_limit=0, rate_window_seconds=3600)
    with tempfile.TemporaryDirectory() as folder, Simulator(faults) as sim:
        process = start(sim, Path(folder), **settings)
        while not sim.api_requests:
            time.sleep(0.01)
        sent = len(sim.api_requests)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait()
        print(
            f"SIGTERM in a Retry-After of 3600 s: exit {process.returncode} after "
            f"{time.monotonic() - signalled:.1f} s, {len(sim.api_requests) - sent} request(s) sent after the signal"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--request-timeout", type=float, help="request_timeout_seconds (default: the tap's)")
    args = parser.parse_args()
    settings = {} if args.request_timeout is None else {"request_timeout_seconds": args.request_timeout}
    silent("api", settings)
    silent("downloads", settings)
    stopped_in_a_long_wait(settings)


if __name__ == "__main__":
    main()
