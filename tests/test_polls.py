"""Polls timed from what the run has seen: near the expected completion, bounded, backing off on a miss.

Exports run against a fake API in virtual time (a fake clock that a sleep moves on), so
these tests count polls and never wait for real seconds.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from pathlib import Path

import pytest

from tap_aircall_analytics.api.client import ExportJob
from tap_aircall_analytics.api.polls import (
    BORROWED_MISS_BACKOFF,
    FACTOR_STEP,
    FIRST_ESTIMATE_MARGIN,
    FIXED_COST_DAYS,
    MISS_BACKOFF,
    SETTLED_OUTCOMES,
    ExportTimings,
    PollPolicy,
    PollSchedule,
)
from tap_aircall_analytics.clock import VirtualClock
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME, STATUS_COMPLETED, STATUS_PENDING
from tap_aircall_analytics.exports.pipeline import ReportExporter, WindowFailed
from tap_aircall_analytics.planning.windows import Window

POLICY = PollPolicy(first_wait=2, max_wait=60, timeout=30 * 60)
DAY = dt.date(2030, 1, 1)


class FakeApi:
    """Exports that take `seconds(report, days)` of virtual time; every request is counted."""

    def __init__(self, clock: VirtualClock, seconds) -> None:
        self.clock = clock
        self.stop = threading.Event()
        self.seconds = seconds
        self.ready: dict[str, float] = {}
        self.requests: list[tuple[str, str, float]] = []  # (method, export id, virtual time)
        self.took: list[float] = []

    def create_export(self, body: dict) -> ExportJob:
        request = body["input"]
        dates = request["filter"]["dateFilter"]["absoluteRange"]
        days = (dt.date.fromisoformat(dates["toDate"]) - dt.date.fromisoformat(dates["fromDate"])).days + 1
        export_id = f"e{len(self.ready)}"
        seconds = self.seconds(request["reportName"], days)
        self.ready[export_id] = self.clock.now() + seconds
        self.took.append(seconds)
        self.requests.append(("POST", export_id, self.clock.now()))
        return ExportJob(export_id, STATUS_PENDING)

    def get_export(self, export_id: str) -> ExportJob:
        self.requests.append(("GET", export_id, self.clock.now()))
        if self.clock.now() < self.ready[export_id]:
            return ExportJob(export_id, STATUS_PENDING)
        return ExportJob(export_id, STATUS_COMPLETED, download_url="https://files.example/x.csv")

    def download(self, url: str, destination: Path, claim=None) -> int:
        destination.write_text("Call ID\n")
        return 8

    def polls(self, export_id: str) -> list[float]:
        return [moment for method, exported, moment in self.requests if method == "GET" and exported == export_id]


def exporter(api: FakeApi, report: str = "CALLS_HISTORY", timings: ExportTimings | None = None, poll=POLICY):
    def body(window: Window) -> dict:
        dates = {"fromDate": window.first.isoformat(), "toDate": window.last.isoformat()}
        return {"input": {"reportName": report, "filter": {"dateFilter": {"absoluteRange": dates}}}}

    return ReportExporter(api, REPORTS_BY_API_NAME[report], body, poll=poll, timings=timings, progress=lambda _: None)  # type: ignore[arg-type]


def windows(count: int, days: int) -> list[Window]:
    return [Window(DAY + dt.timedelta(days * n), DAY + dt.timedelta(days * n + days - 1)) for n in range(count)]


def varying(seed: int, base: float = 5, per_day: float = 1, spread: float = 0.5):
    """Export times as the issue measured them: 5 s plus 1 s a day, +-50%."""
    draw = random.Random(seed)
    return lambda report, days: (base + per_day * days) * draw.uniform(1 - spread, 1 + spread)


def test_the_first_export_polls_on_the_backoff_schedule_and_the_next_near_its_completion(tmp_path):
    clock = VirtualClock()
    api = FakeApi(clock, lambda report, days: 12.0)
    flow = exporter(api)
    first, second = windows(2, 7)
    flow.export_window(first, tmp_path)
    start = api.requests[0][2]
    assert [moment - start for moment in api.polls("e0")] == [2, 6, 14]  # 2, 4, 8 s apart: nothing known yet
    flow.export_window(second, tmp_path)
    polls = api.polls("e1")
    assert len(polls) == 1  # the second is polled once, when the first says it will be done
    assert 12 <= polls[0] - api.ready["e1"] + 12 <= 12 * 1.6


def test_a_run_of_varying_exports_costs_about_two_requests_each(tmp_path):
    clock = VirtualClock()
    api = FakeApi(clock, varying(seed=7))
    flow = exporter(api)
    for window in windows(60, 7):
        flow.export_window(window, tmp_path)
    assert len(api.requests) / 60 <= 2.3
    late = [api.polls(f"e{n}")[-1] - api.ready[f"e{n}"] for n in range(60)]
    # each seen done soon after it was (mean export: 12 s; +-50%: polled when nine in ten are done)
    assert sum(late) / 60 <= 0.5 * 12


def test_a_report_learns_its_own_time_and_a_new_report_starts_from_the_run(tmp_path):
    clock = VirtualClock()
    slow_and_fast = {"CALLS_HISTORY": 10.0, "USER_ACTIVITY_CALLS_HANDLED": 1.0}
    api = FakeApi(clock, lambda report, days: slow_and_fast[report] * (days + FIXED_COST_DAYS) / 14)
    timings = ExportTimings()
    calls, handled = exporter(api, "CALLS_HISTORY", timings), exporter(api, "USER_ACTIVITY_CALLS_HANDLED", timings)
    for window in windows(10, 7):
        calls.export_window(window, tmp_path)
    assert timings.first_poll("USER_ACTIVITY_CALLS_HANDLED", 7) == timings.first_poll("CALLS_HISTORY", 7)
    for window in windows(60, 7):  # down in small steps: a first poll that finds its export done says little
        handled.export_window(window, tmp_path)
    assert timings.first_poll("USER_ACTIVITY_CALLS_HANDLED", 7) < 2.5  # about 1 s: learned, not the run's 10
    assert 9 <= timings.first_poll("CALLS_HISTORY", 7) <= 16  # the other report's own stays


def test_longer_ranges_are_expected_to_take_longer():
    timings = ExportTimings()
    timings.learn("CALLS_HISTORY", 7, pending_at=10, done_at=14, first_poll_hit=None)
    week, month, day = (timings.first_poll("CALLS_HISTORY", days) for days in (7, 31, 1))
    assert week == pytest.approx(FIRST_ESTIMATE_MARGIN * 12)
    assert month == pytest.approx(week * (31 + FIXED_COST_DAYS) / (7 + FIXED_COST_DAYS))
    assert day is not None and day < week < month


def test_a_missed_prediction_backs_off_and_the_max_poll_interval_bounds_every_wait(tmp_path):
    clock = VirtualClock()
    times = iter([10.0, 10.0, 10.0, 400.0])  # the fourth takes 40 times as long as the others
    api = FakeApi(clock, lambda report, days: next(times))
    flow = exporter(api, poll=PollPolicy(first_wait=2, max_wait=30, timeout=3600))
    for window in windows(4, 7):
        flow.export_window(window, tmp_path)
    polls = api.polls("e3")
    start = next(moment for _, exported, moment in api.requests if exported == "e3")
    gaps = [later - earlier for earlier, later in zip([start, *polls], polls)]
    assert max(gaps) <= 30  # never more than max_poll_interval_seconds apart
    assert gaps[1] < gaps[2] < gaps[3]  # backing off after the miss
    assert polls[-1] - api.ready["e3"] <= 30  # seen within one interval of its completion


def test_an_export_pending_past_the_timeout_fails_its_window_with_polls_bounded(tmp_path):
    clock = VirtualClock()
    api = FakeApi(clock, lambda report, days: 10**9)
    flow = exporter(api, poll=PollPolicy(first_wait=2, max_wait=60, timeout=600))
    with pytest.raises(WindowFailed, match=r"still PENDING after 10\.0 minutes"):
        flow.export_window(windows(1, 7)[0], tmp_path)
    assert 10 <= len(api.polls("e0")) <= 16  # 2, 4, ... then every 60 s for 10 minutes


def test_while_nothing_is_known_one_export_scouts_and_the_others_wait_for_it():
    timings = ExportTimings()
    scout, other = (PollSchedule(timings, "CALLS_HISTORY", 7, POLICY) for _ in range(2))
    assert scout.next_poll() == (2, False)  # the scout polls on the backoff schedule
    assert other.next_poll() == (60, True)  # the other waits, looking again for what the scout learns
    scout.polled(2, False)
    assert scout.next_poll() == (6, False)
    scout.polled(6, False)
    scout.polled(14, True)  # done between 6 and 14 s
    due, may_come_sooner = other.next_poll()
    assert (
        due == pytest.approx(FIRST_ESTIMATE_MARGIN * 10) and may_come_sooner
    )  # the prediction follows what the run learns meanwhile
    third = PollSchedule(timings, "USER_STATUS_HISTORY", 7, POLICY)
    assert third.next_poll() == (
        pytest.approx(FIRST_ESTIMATE_MARGIN * 10),
        True,
    )  # another report starts from the run's


def test_an_abandoned_scout_hands_over():
    timings = ExportTimings()
    first, second = (PollSchedule(timings, "CALLS_HISTORY", 7, POLICY) for _ in range(2))
    assert not first.next_poll()[1] and second.next_poll()[1]
    first.abandon()
    assert second.next_poll() == (2, False)


def test_exports_that_miss_together_raise_the_factor_no_further_than_what_they_took():
    timings = ExportTimings({"CALLS_HISTORY": 1.0})
    for _ in range(9):  # nine exports predicted at 14 s, each found PENDING then done at 15 s
        timings.learn("CALLS_HISTORY", 7, pending_at=14, done_at=15, first_poll_hit=False)
    week = timings.first_poll("CALLS_HISTORY", 7)
    assert week == pytest.approx(FIRST_ESTIMATE_MARGIN * 15)  # not 14 * 1.24 ** 9: none took longer than 15 s
    timings.learn("CALLS_HISTORY", 7, pending_at=20, done_at=60, first_poll_hit=False)
    assert timings.first_poll("CALLS_HISTORY", 7) == pytest.approx(week * (1 + FACTOR_STEP))  # one step at a time


def test_an_export_not_polled_yet_follows_what_the_run_learns_meanwhile():
    timings = ExportTimings({"CALLS_HISTORY": 1.0})
    waiting = PollSchedule(timings, "CALLS_HISTORY", 7, POLICY)
    assert waiting.next_poll() == (pytest.approx(14), True)
    timings.learn("CALLS_HISTORY", 7, pending_at=14, done_at=18, first_poll_hit=False)  # another one missed
    assert waiting.next_poll() == (pytest.approx(14 * (1 + FACTOR_STEP)), True)
    due = 14 * (1 + FACTOR_STEP)
    waiting.polled(due, False)  # its own first poll missed: its re-polls keep to that prediction
    timings.learn("CALLS_HISTORY", 7, pending_at=due, done_at=due + 3, first_poll_hit=False)
    assert waiting.next_poll() == (pytest.approx(due + due * MISS_BACKOFF), False)


def test_a_prediction_borrowed_from_another_report_backs_off_further_on_a_miss():
    timings = ExportTimings({"CALLS_HISTORY": 1.0})  # carried by the state: settled
    own, borrowed = (PollSchedule(timings, report, 31, POLICY) for report in ("CALLS_HISTORY", "USER_STATUS_HISTORY"))
    assert own.next_poll() == (pytest.approx(38), True)  # its own time, scaled by the range
    assert borrowed.next_poll() == (pytest.approx(38), True)  # the other report's time, scaled by the range
    own.polled(38, False)
    borrowed.polled(38, False)
    assert own.next_poll() == (pytest.approx(38 + 38 * MISS_BACKOFF), False)
    assert borrowed.next_poll() == (pytest.approx(38 + 38 * BORROWED_MISS_BACKOFF), False)
    assert MISS_BACKOFF < BORROWED_MISS_BACKOFF
    borrowed.polled(57, True)
    assert borrowed.phases() == (0, 1, 1)  # none before the run knew, the first on a prediction, one after a miss


def test_a_report_is_settled_after_a_few_of_its_own_exports():
    timings = ExportTimings({"CALLS_HISTORY": 1.0})
    assert timings.settled("CALLS_HISTORY") and not timings.settled("USER_STATUS_HISTORY")
    for outcome in range(SETTLED_OUTCOMES):
        assert not timings.settled("USER_STATUS_HISTORY")
        timings.learn("USER_STATUS_HISTORY", 7, pending_at=10, done_at=12, first_poll_hit=outcome > 0)
    assert timings.settled("USER_STATUS_HISTORY")


def test_the_ready_line_says_what_the_polls_were_for(tmp_path):
    clock = VirtualClock()
    said: list[str] = []
    api = FakeApi(clock, lambda report, days: 12.0)
    flow = ReportExporter(
        api,  # type: ignore[arg-type]
        REPORTS_BY_API_NAME["CALLS_HISTORY"],
        exporter(api).request_body,
        poll=POLICY,
        progress=said.append,
    )
    flow.export_window(windows(1, 7)[0], tmp_path)
    assert any("ready after 14.0 s (3 poll(s): 3 before any export was done)" in line for line in said)
