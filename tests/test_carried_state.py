"""What one run leaves the next in the state's own key: export times, recent requests, exports in flight.

A state of the previous release (bookmarks only) still loads; a run stopped while its exports
are PENDING leaves their IDs, and the next run polls them instead of paying for them again;
a run that starts from learned export times polls each export once, when it is ready.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from collections import Counter

import pytest
from helpers import rest_of_output, start_tap

from conftest import TODAY, TapRun, parse_messages, tap_config
from tap_aircall_analytics.config.catalogue import EXPORTS_PATH, REPORTS_BY_STREAM
from tap_aircall_analytics.planning.bookmarks import (
    IN_FLIGHT,
    TAP_STATE_KEY,
    CarriedState,
    ExportsInFlight,
    PendingExport,
    carried_state,
)

STREAMS = ["calls_history", "user_activity_calls_handled"]
FIRST, LAST = TODAY - dt.timedelta(days=6), TODAY - dt.timedelta(days=1)


def posts(sim) -> list[dict]:
    return [body for method, path, body in sim.api_requests if method == "POST" and path == EXPORTS_PATH]


def polls(sim) -> list[str]:
    return [path for method, path, _ in sim.api_requests if method == "GET"]


def test_a_state_of_the_previous_release_loads_and_the_run_adds_its_own_key(simulator, run_tap):
    sim = simulator(rate_limit=1000)
    old = {  # as 0.2.0 wrote it: bookmarks, nothing else
        "bookmarks": {
            "calls_history": {"replication_key": "started_at", "replication_key_value": FIRST.isoformat()},
            "user_activity_calls_handled": {"replication_key": "date", "replication_key_value": FIRST.isoformat()},
        }
    }
    start = (TODAY - dt.timedelta(days=30)).isoformat()
    config = tap_config(sim, start_date=start, end_date=LAST.isoformat(), lookback_days=0)
    run = run_tap(config, streams=STREAMS, state=old)
    assert run.bookmark("calls_history") == TODAY.isoformat()
    own = run.state[TAP_STATE_KEY]
    assert set(own["export_ms_per_day"]) == {"CALLS_HISTORY", "USER_ACTIVITY_CALLS_HANDLED"}
    assert own[IN_FLIGHT] == {}  # every window emitted: nothing left in flight
    first_days = {body["input"]["filter"]["dateFilter"]["absoluteRange"]["fromDate"] for body in posts(sim)}
    assert min(first_days) >= FIRST.isoformat()  # the old bookmarks were read
    assert len(str(run.state)) < 2000  # small
    # and whole numbers only: a target that reads numbers as decimals writes the state back
    json.loads(json.dumps(run.state), parse_float=lambda text: pytest.fail(f"a float in the state: {text}"))


def test_a_state_key_the_tap_cannot_read_is_set_aside_with_a_warning(simulator, run_tap):
    sim = simulator(rate_limit=1000)
    state = {"bookmarks": {}, TAP_STATE_KEY: {"export_ms_per_day": {"CALLS_HISTORY": "soon"}}}
    config = tap_config(sim, start_date=LAST.isoformat(), end_date=LAST.isoformat())
    run = run_tap(config, streams=["calls_history"], state=state)
    assert f"the state's {TAP_STATE_KEY} cannot be read: set aside" in run.stderr
    assert run.bookmark("calls_history") == TODAY.isoformat()


def test_a_run_stopped_with_exports_pending_resumes_them_without_requesting_them_again(simulator, catalog, tmp_path):
    sim = simulator(hold_exports=True, rate_limit=1000)
    config = tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=3)
    process = start_tap(tmp_path, catalog, config, None, STREAMS)
    log = tmp_path / "stderr.log"
    # two windows of each stream, all PENDING, their IDs known to the tap (its polls keep the simulator answering)
    assert sim.wait_until(lambda: log.exists() and log.read_text().count(" requested\n") == 4)
    process.send_signal(signal.SIGTERM)
    stopped = parse_messages(rest_of_output(process), TapRun(process.returncode, "", ""))
    assert process.returncode == 128 + signal.SIGTERM
    in_flight = stopped.state[TAP_STATE_KEY][IN_FLIGHT]
    assert sorted(in_flight) == STREAMS and all(len(entries) == 2 for entries in in_flight.values())
    requested = {entry[2] for entries in in_flight.values() for entry in entries}
    assert len(requested) == 4

    sim.release_exports()
    resumed = start_tap(tmp_path, catalog, config, stopped.state, STREAMS)
    out = rest_of_output(resumed)
    assert resumed.returncode == 0, (tmp_path / "stderr.log").read_text()[-3000:]
    run = parse_messages(out, TapRun(0, out, ""))
    assert len(posts(sim)) == 4  # not one export requested again
    polled = {path.rsplit("/", 1)[-1] for path in polls(sim)}
    assert requested <= polled
    for stream in STREAMS:
        report = REPORTS_BY_STREAM[stream]
        _, rows = sim.expected_rows(report.api_name, FIRST, LAST)
        assert len(run.records[stream]) == len(rows), stream
        assert run.bookmark(stream) == TODAY.isoformat()
    assert run.state[TAP_STATE_KEY][IN_FLIGHT] == {}
    assert "requested by an earlier run; polling it" in (tmp_path / "stderr.log").read_text()


def test_an_export_the_api_forgot_is_requested_again(simulator, catalog, tmp_path):
    sim = simulator(rate_limit=1000)
    config = tap_config(sim, start_date=LAST.isoformat(), end_date=LAST.isoformat())
    gone = [LAST.isoformat(), LAST.isoformat(), "gone", round(time.time())]  # an export the API does not know: 404
    state = {"bookmarks": {}, TAP_STATE_KEY: {IN_FLIGHT: {"calls_history": [gone]}}}
    process = start_tap(tmp_path, catalog, config, state, ["calls_history"])
    out = rest_of_output(process)
    assert process.returncode == 0, (tmp_path / "stderr.log").read_text()[-3000:]
    run = parse_messages(out, TapRun(0, out, ""))
    assert len(posts(sim)) == 1 and run.bookmark("calls_history") == TODAY.isoformat()
    assert "export is gone (404); requesting it again" in (tmp_path / "stderr.log").read_text()


def test_learned_export_times_travel_in_the_state_and_the_next_run_polls_each_export_once(simulator, run_tap):
    # exports take 0.05 s per (day + 7): the polls' model of export times fits them
    sim = simulator(export_seconds=0.35, export_seconds_per_day=0.05, rate_limit=1000)
    config = {
        **tap_config(sim, start_date=(TODAY - dt.timedelta(days=28)).isoformat(), end_date=LAST.isoformat()),
        "poll_interval_seconds": 0.3,
        "max_poll_interval_seconds": 30,  # no poll for want of a prediction
        "lookback_days": 0,
    }
    first = run_tap(config, streams=STREAMS)
    learned = first.state[TAP_STATE_KEY]["export_ms_per_day"]
    assert set(learned) == {"CALLS_HISTORY", "USER_ACTIVITY_CALLS_HANDLED"}
    before_posts, before_polls = len(posts(sim)), len(polls(sim))
    # a day later, the next run: one export per stream
    daily = {**config, "end_date": TODAY.isoformat()}
    second = run_tap(daily, streams=STREAMS, state=first.state)
    exports, polled = len(posts(sim)) - before_posts, len(polls(sim)) - before_polls
    assert exports == 2
    assert polled <= 3  # once each when ready (a little margin: one may be polled early)
    assert second.state[TAP_STATE_KEY]["export_ms_per_day"].keys() == learned.keys()


def test_exports_in_flight_are_handed_out_once_and_dropped_when_emitted_or_not_planned():
    day = dt.date(2026, 11, 1)
    carried = {
        "calls_history": [
            PendingExport(day, day + dt.timedelta(days=6), "a", 1.0),
            PendingExport(day + dt.timedelta(days=7), day + dt.timedelta(days=13), "b", 2.0),
        ],
        "user_status_history": [PendingExport(day, day, "c", 3.0)],
    }
    in_flight = ExportsInFlight(carried)
    in_flight.keep_planned({"calls_history": {(day, day + dt.timedelta(days=6))}})  # "b" no longer planned
    assert in_flight.resume("calls_history", day + dt.timedelta(days=7), day + dt.timedelta(days=13)) is None
    assert in_flight.resume("calls_history", day, day + dt.timedelta(days=6)).export_id == "a"
    assert in_flight.resume("calls_history", day, day + dt.timedelta(days=6)) is None  # once
    assert [e.export_id for e in in_flight.snapshot()["user_status_history"]] == ["c"]  # another stream: kept
    in_flight.requested("calls_history", PendingExport(day + dt.timedelta(days=7), day + dt.timedelta(days=7), "d", 4))
    in_flight.emitted("calls_history", day + dt.timedelta(days=6))
    assert [e.export_id for e in in_flight.snapshot()["calls_history"]] == ["d"]  # the next window: still in flight
    in_flight.emitted("calls_history", day + dt.timedelta(days=7))  # a window of one day (today's, say)
    assert in_flight.snapshot()["calls_history"] == []


def test_the_carried_state_reads_what_it_writes():
    day = dt.date(2026, 11, 1)
    written = carried_state(
        {"CALLS_HISTORY": 1.23456},
        [1_800_000_000.05, 1_800_000_030.5],
        {"calls_history": [PendingExport(day, day, "x", 5.0)]},
    )
    read = CarriedState.read({TAP_STATE_KEY: written}, warn=lambda message: None)
    assert read.export_times == {"CALLS_HISTORY": 1.235}
    assert json.loads(json.dumps(written), parse_float=lambda text: pytest.fail(f"a float in the state: {text}"))
    assert [round(moment, 1) for moment in read.recent_requests] == [1_800_000_000.0, 1_800_000_030.5]
    assert read.in_flight == {"calls_history": [PendingExport(day, day, "x", 5.0)]}
    assert Counter(CarriedState.read({}, warn=lambda message: None).export_times) == Counter()
