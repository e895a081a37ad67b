"""Retries of API requests: a 5xx backs off, a 429 waits on the budget, a 4xx is not retried, a stop ends any wait.

The client runs against the simulator on a virtual clock (its waits take no time), except
for the stop, which must end a real wait.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tap_aircall_analytics.api.client import AircallClient, AircallError, TransientError, stop_sending
from tap_aircall_analytics.clock import Stopped, VirtualClock
from tap_aircall_analytics.config.catalogue import EXPORTS_PATH

AUTHORIZATION = "Basic ZGVtbzpkZW1v"  # the simulator's demo:demo
POLL = f"GET {EXPORTS_PATH}/e1"


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("Retrying")]


def test_a_5xx_is_retried_with_backoff_then_given_up_in_one_line(simulator, caplog):
    sim = simulator(error_every=1)  # every API request answers 500
    clock = VirtualClock(start=time.time())
    start = clock.now()
    client = AircallClient(sim.api_url, AUTHORIZATION, clock=clock, max_tries=4, backoff_seconds=10)
    with caplog.at_level(logging.WARNING, logger="tap_aircall_analytics"), pytest.raises(TransientError) as error:
        client.get_export("e1")
    assert str(error.value) == f"{POLL}: 500 Internal Server Error (gave up after 4 tries)"
    assert len(sim.api_requests) == 4 and client.retries == 3
    assert retries_logged(caplog) == [f"Retrying {POLL}: 500 Internal Server Error (try {n} of 4)" for n in (2, 3, 4)]
    assert (10 + 20 + 40) / 2 <= clock.now() - start < 10 + 20 + 40 + 10  # half to all of each backoff, and the pace


def test_a_429_waits_for_its_retry_after_not_for_a_backoff(simulator, caplog):
    sim = simulator(rate_limit=0, rate_window_seconds=1, answer_headers="Retry-After=100")
    clock = VirtualClock(start=time.time())
    start = clock.now()
    client = AircallClient(sim.api_url, AUTHORIZATION, clock=clock, max_tries=3)
    with caplog.at_level(logging.WARNING, logger="tap_aircall_analytics"), pytest.raises(TransientError) as error:
        client.get_export("e1")
    assert str(error.value) == f"{POLL}: 429 Too Many Requests (gave up after 3 tries)"
    assert retries_logged(caplog) == [f"Retrying {POLL}: 429 Too Many Requests (try {n} of 3)" for n in (2, 3)]
    assert len(sim.api_requests) == 3
    assert 200 <= clock.now() - start < 230  # two Retry-Afters of 100 s; the backoff (0.5 s, 1 s) is not added


def test_a_4xx_other_than_429_is_not_retried(simulator, caplog):
    sim = simulator()
    client = AircallClient(sim.api_url, "Basic d3Jvbmc6d3Jvbmc=", clock=VirtualClock(start=time.time()))
    with caplog.at_level(logging.WARNING, logger="tap_aircall_analytics"), pytest.raises(AircallError) as error:
        client.get_export("e1")
    assert not isinstance(error.value, TransientError)
    assert str(error.value).startswith("Aircall refused the credentials (401")
    assert len(sim.api_requests) == 1 and retries_logged(caplog) == []


def test_a_retry_wait_ends_at_once_when_the_run_stops(simulator, caplog):
    sim = simulator(error_every=1)
    # The first backoff is at least half an hour, on the real clock of the run.
    client = AircallClient(sim.api_url, AUTHORIZATION, backoff_seconds=3600, max_backoff_seconds=3600)
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            client.get_export("e1")
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=poll, daemon=True)
    with caplog.at_level(logging.WARNING, logger="tap_aircall_analytics"):
        thread.start()
        deadline = time.monotonic() + 60
        while not retries_logged(caplog):  # the first try failed: the backoff is under way
            assert time.monotonic() < deadline, "the first try never failed"
            time.sleep(0.01)
        stop_sending(client.stop)  # what a signal does
        thread.join(10)
    assert not thread.is_alive(), "the backoff was waited out"
    assert len(outcome) == 1 and isinstance(outcome[0], Stopped)
    assert len(sim.api_requests) == 1  # no try after the stop
