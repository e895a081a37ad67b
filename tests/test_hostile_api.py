"""A hostile API: every run at DEBUG, every output scanned for secrets, every failure one line.

Each test runs the tap's command line against the simulator with one fault switched on,
and checks what a user would see: the exit status, the last line of stderr, no traceback,
and none of the credentials (the token, the Basic value, the bearer token) nor any
download link's signature anywhere in stdout or stderr.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import TAP, selected_catalog, tap_config
from tap_aircall_analytics.simulator import Simulator

YESTERDAY = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).date().isoformat()
STOPPED_BY_SIGTERM = 128 + signal.SIGTERM


@dataclass
class Run:
    """What one run of the tap wrote."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        return self.stderr.strip().splitlines()[-1]


def start_tap(tmp_path: Path, catalog: dict, config: dict, *, streams=("calls_history",), state_text=None):
    """Start the tap at DEBUG on `config`; stdout and stderr go to files (a chatty run never blocks)."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(selected_catalog(catalog, list(streams))))
    command = [*TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
    if state_text is not None:
        (tmp_path / "state.json").write_text(state_text)
        command += ["--state", str(tmp_path / "state.json")]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAP_AIRCALL_ANALYTICS_")}
    env.update({"PYTHONUNBUFFERED": "1", "LOGLEVEL": "DEBUG", "TMPDIR": str(tmp_path)})
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        return subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)


def finish(process: subprocess.Popen, tmp_path: Path, timeout: float = 120) -> Run:
    process.wait(timeout=timeout)
    return Run(process.returncode, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text())


def run_tap(tmp_path: Path, catalog: dict, config: dict, **options) -> Run:
    return finish(start_tap(tmp_path, catalog, config, **options), tmp_path)


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Wait for `condition` (a simulator event), failing after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def secrets(sim: Simulator) -> list[str]:
    """Every credential the run holds, and every signature of a link the simulator minted."""
    config = sim.config
    basic = base64.b64encode(f"{config.api_id}:{config.api_token}".encode()).decode()
    signatures = [parse_qs(urlsplit(link).query)["X-Signature"][0] for link in sim.links]
    return [config.api_token, basic, basic[:8], str(config.access_token), *signatures]


def assert_clean(run: Run, sim: Simulator) -> None:
    """No secret anywhere in the output, and no traceback."""
    output = run.stdout + run.stderr
    for secret in secrets(sim):
        assert secret not in output, f"{secret!r} reached the output"
    assert "Traceback" not in run.stderr


# --- a stop is a stop ---------------------------------------------------------------

HOLDS = {
    # The export request's answer says no request is left in the rate window, which resets in
    # an hour: the first poll, a millisecond later, waits for the reset.
    "remaining_zero": (
        {"rate_limit": 1, "rate_window_seconds": 3600},
        {"poll_interval_seconds": 0.001, "max_poll_interval_seconds": 0.001},
    ),
    # The first request is refused with 429 and Retry-After: an hour.
    "retry_after": ({"rate_limit": 0, "rate_window_seconds": 3600}, {}),
    # The export takes an hour; the first poll is ten minutes away.
    "poll_wait": ({"export_seconds": 3600}, {"poll_interval_seconds": 600, "max_poll_interval_seconds": 600}),
}


@pytest.mark.parametrize("hold", sorted(HOLDS))
def test_after_a_signal_no_request_is_sent_and_every_wait_ends(simulator, catalog, tmp_path, hold):
    faults, polling = HOLDS[hold]
    sim = simulator(**faults)
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY, max_concurrent_exports=1, **polling)
    process = start_tap(tmp_path, catalog, config)
    # After its first request the tap has nothing to send for an hour, unless a stop wakes it.
    wait_until(lambda: len(sim.api_requests) == 1)
    if hold == "remaining_zero":  # the answer is in: the tap is on its way into the rate-limit wait
        wait_until(lambda: "requested" in (tmp_path / "stderr").read_text())
    process.send_signal(signal.SIGTERM)
    run = finish(process, tmp_path, timeout=60)
    assert run.returncode == STOPPED_BY_SIGTERM
    assert len(sim.api_requests) == 1, sim.api_requests
    assert sim.downloads == []
    assert "Stopped by signal 15: the state covers the windows finished so far" in run.stderr
    assert_clean(run, sim)
