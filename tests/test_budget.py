"""The company's API budget: a reserve left to the others, the tap's own cap, the first request alone.

The pacing is driven by a fake clock and a fake company rate limit in virtual time: these
tests count requests and read headers, they never wait for real seconds.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
import threading

import pytest
import requests

from conftest import CREDENTIALS, TODAY, tap_config
from tap_aircall_analytics.api.budget import RequestBudget, rate_limit_of
from tap_aircall_analytics.clock import RunClock, Stopped, VirtualClock
from tap_aircall_analytics.config.catalogue import (
    EXPORTS_PATH,
    LIMIT_HEADER,
    PROBE_EXPORT_ID,
    REMAINING_HEADER,
    REPORTS,
    RESET_HEADER,
)
from tap_aircall_analytics.config.settings import ConfigError, Settings
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

STREAMS = [report.stream_name for report in REPORTS]
AUTH = (CREDENTIALS["api_id"], CREDENTIALS["api_token"])


class FakeCompany:
    """A company's per-minute rate limit, shared by the tap and other integrations, in virtual time.

    `style` is the limiter's shape: fixed 60-s windows, a sliding 60-s log, or a token bucket of
    `capacity` refilled at `limit` a minute; `reset` says how X-AircallApi-Reset is sent: a UNIX
    time ("epoch") or the seconds left. The others send `burst` requests every `every` seconds;
    refused requests are counted, and do not count against the limit (but in fixed windows).
    """

    def __init__(
        self,
        clock: VirtualClock,
        limit: int = 60,
        burst: int = 0,
        every: float = 15.0,
        phase: float = 0.0,
        *,
        style: str = "fixed",
        reset: str = "epoch",
        capacity: int | None = None,
        window: float = 60.0,
    ):
        self.clock, self.limit, self.burst, self.every = clock, limit, burst, every
        self.window = window  # seconds: a minute, or a short window (`limit` a window, not a minute)
        self.style, self.reset_style = style, reset
        self.capacity = capacity or limit
        self.window_start = clock.now()
        self.used = 0
        self.log: collections.deque[float] = collections.deque()  # sliding: the requests of the last minute
        self.tokens = float(self.capacity)  # bucket
        self.filled_at = clock.now()
        self.next_burst = clock.now() + phase
        self.tap_remaining: list[int] = []  # Remaining answered to each tap request
        self.tap_sent: list[float] = []  # when each accepted tap request arrived
        self.tap_refused = 0
        self.others_refused = 0
        self.others_sent = 0

    def _take(self, moment: float, requests: int) -> tuple[int, float]:
        """Count `requests` at `moment`; return how many were refused, and the Reset as a UNIX time."""
        if self.style == "fixed":
            if moment >= self.window_start + self.window:
                self.window_start, self.used = moment, 0
            refused = max(0, min(requests, self.used + requests - self.limit))
            self.used += requests
            return refused, self.window_start + self.window
        if self.style == "sliding":
            while self.log and self.log[0] <= moment - self.window:
                self.log.popleft()
            accepted = min(requests, self.limit - len(self.log))
            self.log.extend([moment] * accepted)
            return requests - accepted, (self.log[0] + self.window) if self.log else moment
        self.tokens = min(self.capacity, self.tokens + (moment - self.filled_at) * self.limit / self.window)
        self.filled_at = moment
        accepted = min(requests, int(self.tokens))
        self.tokens -= accepted
        return requests - accepted, moment + (self.capacity - self.tokens) * self.window / self.limit

    def remaining(self) -> int:
        if self.style == "fixed":
            return max(0, self.limit - self.used)
        if self.style == "sliding":
            return self.limit - len(self.log)
        return int(self.tokens)

    def _catch_up(self) -> None:
        """Send the others' bursts due by now, each at its own moment."""
        while self.burst and self.next_burst <= self.clock.now():
            self.others_refused += self._take(self.next_burst, self.burst)[0]
            self.others_sent += self.burst
            self.next_burst += self.every

    def tap_request(self) -> tuple[int, dict[str, str]]:
        self._catch_up()
        now = self.clock.now()
        refused, reset = self._take(now, 1)
        remaining = self.remaining()
        shown = f"{reset:.0f}" if self.reset_style == "epoch" else f"{max(0.0, reset - now):.0f}"
        headers = {LIMIT_HEADER: str(self.limit), REMAINING_HEADER: str(remaining), RESET_HEADER: shown}
        if refused:
            self.tap_refused += 1
            return 429, headers
        self.tap_remaining.append(remaining)
        self.tap_sent.append(now)
        return 200, headers


def spend(budget: RequestBudget, company: FakeCompany, clock: VirtualClock, requests: int) -> list[float]:
    """Send `requests` requests through the budget, one after another; return when each went."""
    sent = []
    for _ in range(requests):
        budget.acquire(clock)
        sent.append(clock.now())
        status, headers = company.tap_request()
        budget.settle(status, headers)
        clock.time += 0.05  # each answer takes a moment
    return sent


def test_the_tap_stops_at_the_reserve_and_goes_on_after_the_reset():
    clock = VirtualClock()
    company = FakeCompany(clock, limit=60)
    budget = RequestBudget()
    sent = spend(budget, company, clock, 60)
    reset = company.window_start
    first_window = [moment for moment in sent if moment < sent[0] + 60]
    assert len(first_window) == 48  # 60 less the default reserve of a fifth
    assert min(company.tap_remaining) == 12 and company.tap_refused == 0
    assert budget.kept == 12 and budget.lowest_remaining == 12
    assert sent[48] >= sent[0] + 60 and reset > sent[0]  # the 49th waited for the reset, then the budget was whole


@pytest.mark.parametrize("reserve", [0, 30])
def test_the_reserve_is_a_setting(reserve):
    clock = VirtualClock()
    company = FakeCompany(clock, limit=60)
    sent = spend(RequestBudget(reserve=reserve), company, clock, 61)
    assert len([moment for moment in sent if moment < sent[0] + 60]) == 60 - reserve
    assert min(company.tap_remaining) == reserve and company.tap_refused == 0


@pytest.mark.parametrize("phase", [0.0, 4.0, 9.0, 14.0])
def test_other_integrations_bursts_are_never_refused_and_the_tap_leaves_the_reserve(phase):
    """Others send 20 a minute in bursts of 5: whenever their bursts fall, none is refused."""
    clock = VirtualClock()
    company = FakeCompany(clock, limit=60, burst=5, every=15, phase=phase)
    budget = RequestBudget()
    sent = spend(budget, company, clock, 150)
    assert company.others_refused == 0 and company.tap_refused == 0
    assert min(company.tap_remaining) >= 12
    minutes = (sent[-1] - sent[0]) / 60
    # and the tap gets its fair share of what they leave
    assert 0.8 <= 150 / minutes / (60 - 12 - 20) <= 1.1


LIMITERS = [
    pytest.param({"style": "fixed"}, id="fixed windows"),
    pytest.param({"style": "sliding"}, id="sliding log"),
    pytest.param({"style": "bucket", "capacity": 20}, id="bucket of 20"),
    pytest.param({"style": "fixed", "reset": "seconds"}, id="fixed, Reset in seconds"),
    pytest.param({"style": "sliding", "reset": "seconds"}, id="sliding, Reset in seconds"),
]


@pytest.mark.parametrize("limiter", LIMITERS)
@pytest.mark.parametrize("phase", [0.0, 7.0])
def test_under_every_limiter_shape_the_tap_takes_its_fair_share_and_nobody_gets_a_429(limiter, phase):
    """120 a minute, others 12 a minute in bursts of 3: the tap's fair share is 120 - 24 - 12 = 84 a minute."""
    clock = VirtualClock()
    company = FakeCompany(clock, limit=120, burst=3, every=15, phase=phase, **limiter)
    budget = RequestBudget()
    spend(budget, company, clock, 700)
    assert company.others_refused == 0 and company.tap_refused == 0
    start = company.tap_sent[0] + 60  # after the first minute (the start's burst, the first evidence)
    steady = [moment for moment in company.tap_sent if moment >= start]
    rate = (len(steady) - 1) / ((steady[-1] - steady[0]) / 60)
    assert 0.8 <= rate / 84 <= 1.1, rate
    assert budget.shape == limiter["style"]
    held = 4 if limiter["style"] == "bucket" else 24  # the reserve, scaled to what the bucket holds
    learned = company.tap_sent[0] + 90  # by then the answers have shown the shape
    kept = [left for moment, left in zip(company.tap_sent, company.tap_remaining) if moment >= learned]
    assert min(kept) >= held - 1


def test_max_requests_per_minute_caps_the_tap_in_any_60_seconds():
    clock = VirtualClock()
    company = FakeCompany(clock, limit=1000)
    sent = spend(RequestBudget(max_per_minute=10), company, clock, 35)
    for index in range(len(sent) - 10):
        assert sent[index + 10] - sent[index] >= 60  # never 11 in a minute
    assert sent[-1] - sent[0] < 3 * 60 + 5  # and no slower than that


def test_a_429_holds_every_request_until_retry_after():
    clock = VirtualClock()
    budget = RequestBudget()
    budget.acquire(clock)
    budget.settle(429, {LIMIT_HEADER: "60", REMAINING_HEADER: "0", RESET_HEADER: str(clock.now() + 30)})
    budget.hold_until(clock.now() + 7)
    before = clock.now()
    budget.acquire(clock)
    assert clock.now() - before >= 7


def test_the_first_request_goes_alone_and_the_rest_follow_once_it_is_accepted():
    budget = RequestBudget()
    clock = VirtualClock()
    budget.acquire(clock)  # the first request, unanswered
    waited = threading.Event()
    went = threading.Event()

    class Watching(VirtualClock):
        def sleep(self, seconds: float) -> None:
            waited.set()
            threading.Event().wait(0.001)

    def second() -> None:
        budget.acquire(Watching())
        went.set()

    thread = threading.Thread(target=second, daemon=True)
    thread.start()
    assert waited.wait(10) and not went.is_set()  # it waits while the first is unanswered
    budget.settle(201, {LIMIT_HEADER: "60", REMAINING_HEADER: "59", RESET_HEADER: str(clock.now() + 60)})
    assert went.wait(10)
    thread.join(10)


def test_after_a_refused_first_request_nothing_more_goes_until_the_run_stops():
    budget = RequestBudget()
    stop = threading.Event()
    budget.acquire(RunClock(stop))
    budget.settle(401)
    stopped = []

    def second() -> None:
        try:
            budget.acquire(RunClock(stop))
        except Stopped:
            stopped.append(True)

    thread = threading.Thread(target=second, daemon=True)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()  # held: the run is ending
    stop.set()
    thread.join(10)
    assert stopped == [True] and budget.sent == 1


@pytest.mark.parametrize(
    ("sim_settings", "credentials", "message"),
    [
        ({}, {**CREDENTIALS, "api_token": "wrong"}, "Aircall refused the credentials (401"),
        ({"analytics_plus": False}, CREDENTIALS, "the Analytics+ add-on must be enabled"),
    ],
)
def test_a_refused_credential_costs_one_request_and_one_line(simulator, run_tap, sim_settings, credentials, message):
    sim = simulator(**sim_settings)
    first = (TODAY - dt.timedelta(days=10)).isoformat()
    run = run_tap({**tap_config(sim, start_date=first), **credentials}, check=False)  # all twelve reports
    assert run.returncode != 0
    assert len(sim.api_requests) == 1 and sim.budget.requests == 1
    errors = [line for line in run.stderr.splitlines() if message in line]
    assert errors and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("tap-aircall-analytics: ")
    assert len(REPORTS) == 12


def plan_lines(run_tap, config: dict) -> list[str]:
    run = run_tap({**config, "plan_only": True})
    assert run.stdout == ""
    return run.stderr.splitlines()


def test_a_two_year_backfill_plans_a_third_of_the_exports_and_tells_the_budget(simulator, run_tap):
    sim = simulator(rate_limit=60)
    lines = plan_lines(run_tap, tap_config(sim, start_date=(TODAY - dt.timedelta(days=731)).isoformat()))
    total = next(line for line in lines if line.startswith("Total: "))
    exports, requests = int(total.split()[1]), int(total.split()[4])
    assert exports <= 1559 // 3  # seven-day windows for all twelve reports planned 1,559 from 2024-01-01
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in STREAMS}
    assert set(rows) == set(STREAMS)
    for report in REPORTS:
        days = rows[report.stream_name][3]
        assert days == ("31" if report.daily_breakdown else "7"), report.stream_name
    assert sum(int(row[4]) for row in rows.values()) == exports
    budget = next(line for line in lines if line.startswith("Budget: "))
    assert "rate limit is 60 requests a minute (X-AircallApi-Limit)" in budget
    assert "leaves 12 of them to the others" in budget and "takes at most 48 a minute" in budget
    assert f"take about {requests / 48:.0f} min" in budget
    assert sum(float(row[6]) for row in rows.values()) == pytest.approx(requests / 48, abs=0.1 * len(rows))
    assert sim.exports_created == {} and len(sim.api_requests) == 1


def test_a_plan_without_an_answer_assumes_60_a_minute_and_the_settings_shape_it(run_tap):
    config = {
        **CREDENTIALS,
        "api_url": "http://127.0.0.1:9",  # nothing listens there
        "start_date": (TODAY - dt.timedelta(days=60)).isoformat(),
        "stream_window_days": {"calls_history": 3},
        "window_days": 10,
        "rate_limit_reserve": 30,
        "max_requests_per_minute": 20,
    }
    lines = plan_lines(run_tap, config)
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in STREAMS}
    assert rows["calls_history"][3] == "3" and rows["user_activity_calls_handled"][3] == "10"
    budget = next(line for line in lines if line.startswith("Budget: "))
    assert "rate limit is 60 requests a minute (assumed: the API did not answer" in budget
    assert "leaves 30 of them" in budget and "takes at most 20 a minute (max_requests_per_minute)" in budget


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stream_window_days": {"calls": 3}}, "stream_window_days names the stream 'calls', which is not a stream"),
        ({"stream_window_days": {"calls_history": 0}}, "stream_window_days.calls_history must be a whole number"),
        ({"stream_window_days": {"calls_history": "a week"}}, "stream_window_days.calls_history must be a whole"),
        ({"stream_window_days": [3]}, 'stream_window_days must be an object: {"<stream>": <days>}'),
        ({"window_days": 2.5}, "window_days must be a whole number, not 2.5"),
        ({"rate_limit_reserve": -1}, "rate_limit_reserve must be zero or more, not -1"),
        ({"max_requests_per_minute": 0}, "max_requests_per_minute must be more than zero, not 0"),
    ],
)
def test_a_wrong_window_or_budget_setting_is_one_line_naming_it(settings, message):
    config = {**CREDENTIALS, "start_date": TODAY.isoformat(), **settings}
    with pytest.raises(ConfigError) as raised:
        Settings.from_config(config)
    assert message in str(raised.value)


def test_window_lengths_come_from_the_stream_then_the_tap_then_the_report():
    reports = {report.stream_name: report for report in REPORTS}
    calls, handled = reports["calls_history"], reports["user_activity_calls_handled"]
    default = Settings.from_config({**CREDENTIALS, "start_date": TODAY.isoformat()})
    assert (default.window_days_for(calls), default.window_days_for(handled)) == (7, 31)
    chosen = Settings.from_config(
        {**CREDENTIALS, "start_date": TODAY.isoformat(), "window_days": 10, "stream_window_days": {"calls_history": 2}}
    )
    assert (chosen.window_days_for(calls), chosen.window_days_for(handled)) == (2, 10)


def test_the_simulator_counts_the_other_integrations_requests_on_the_same_budget(simulator):
    sim = simulator(rate_limit=12, background_burst=5)
    for _ in range(2):
        sim.other_integrations_burst()
    response = requests.get(f"{sim.api_url}{EXPORTS_PATH}/{PROBE_EXPORT_ID}", auth=AUTH, timeout=10)
    assert response.headers[REMAINING_HEADER] == "1"  # 12 less 10 of theirs, less this one
    assert sim.other_integrations_burst()[REMAINING_HEADER] == "0"
    budget = sim.budget
    assert (budget.background_requests, budget.background_refused) == (15, 4)
    assert (budget.requests, budget.refused, budget.lowest_remaining, budget.lowest_remaining_overall) == (1, 0, 1, 0)


def test_simulated_exports_take_longer_for_longer_ranges_and_vary_the_same_way_each_time(simulator):
    def times(seed: int) -> list[float]:
        sim = simulator(seed=seed, export_seconds=5, export_seconds_per_day=1, export_jitter=0.5, rate_limit=1000)
        for days in (1, 10, 30, 1):
            first = TODAY - dt.timedelta(days=40)
            dates = {"fromDate": first.isoformat(), "toDate": (first + dt.timedelta(days=days - 1)).isoformat()}
            body = {
                "input": {
                    "reportName": "USER_ACTIVITY_CALLS_HANDLED",
                    "filter": {"dateFilter": {"absoluteRange": dates}, "timezone": "UTC"},
                }
            }
            assert requests.post(sim.api_url + EXPORTS_PATH, json=body, auth=AUTH, timeout=10).status_code == 201
        return [seconds for _, _, seconds in sim.export_seconds]

    day, ten, thirty, day_again = times(seed=1)
    assert 3 <= day <= 9 and 7.5 <= ten <= 22.5 and 17.5 <= thirty <= 52.5  # 5 s + 1 s a day, +-50%
    assert day_again == day and times(seed=1) == [day, ten, thirty, day]  # the same request, the same time
    assert times(seed=2) != [day, ten, thirty, day]


def test_without_rate_limit_headers_the_tap_paces_at_a_safe_default_and_halves_it_on_a_429():
    clock = VirtualClock()
    budget = RequestBudget()
    sent = []
    for _ in range(100):
        budget.acquire(clock)
        sent.append(clock.now())
        budget.settle(200, {})
    steady = [moment for moment in sent if moment >= sent[0] + 60]
    assert 40 <= (len(steady) - 1) / ((steady[-1] - steady[0]) / 60) <= 50  # 48 a minute
    budget.acquire(clock)
    budget.settle(429, {"Retry-After": "5"})
    assert budget.back_off({"Retry-After": "5"}, clock.now()) == 5
    start = clock.now()
    after = []
    for _ in range(60):
        budget.acquire(clock)
        after.append(clock.now())
        budget.settle(200, {})
    assert after[0] >= start + 5  # held for the Retry-After
    late = [moment for moment in after if moment >= after[0] + 30]
    assert (len(late) - 1) / ((late[-1] - late[0]) / 60) <= 26  # then at half the pace
    assert "no rate-limit headers: paced at 24 a minute" in budget.describe()


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({LIMIT_HEADER: "0", REMAINING_HEADER: "0", RESET_HEADER: "30"}, "X-AircallApi-Limit 0"),
        ({LIMIT_HEADER: "60", REMAINING_HEADER: "90", RESET_HEADER: "30"}, "X-AircallApi-Remaining 90 of"),
        ({LIMIT_HEADER: "60", REMAINING_HEADER: "0", RESET_HEADER: "inf"}, "X-AircallApi-Reset inf"),
        ({LIMIT_HEADER: "60", REMAINING_HEADER: "0", RESET_HEADER: "-5"}, "X-AircallApi-Reset -5"),
        ({LIMIT_HEADER: "60", REMAINING_HEADER: "0", RESET_HEADER: "500000000"}, "X-AircallApi-Reset 500000000"),
        ({LIMIT_HEADER: "sixty", REMAINING_HEADER: "0", RESET_HEADER: "30"}, "X-AircallApi-Limit sixty"),
    ],
)
def test_a_limiter_that_makes_no_sense_is_named_once_and_never_waited_on_for_ever(headers, named, caplog):
    clock = VirtualClock()
    budget = RequestBudget()
    with caplog.at_level("WARNING", logger="tap_aircall_analytics"):
        for _ in range(30):
            budget.acquire(clock)
            budget.settle(200, headers)
    warnings = [
        record.getMessage() for record in caplog.records if "rate limit is not understood" in record.getMessage()
    ]
    assert len(warnings) == 1 and named in warnings[0]
    assert clock.now() - 1_800_000_000.0 < 60  # 30 requests at the safe pace, never held for ever
    assert named in budget.describe()


@pytest.mark.parametrize("retry_after", ["inf", "1e12", "NaN", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_retry_after_too_long_or_unreadable_is_waited_for_at_most_two_minutes(retry_after):
    clock = VirtualClock()
    budget = RequestBudget()
    budget.acquire(clock)
    budget.settle(429, {LIMIT_HEADER: "60", REMAINING_HEADER: "0", RESET_HEADER: str(clock.now() + 20)})
    waited = budget.back_off({"Retry-After": retry_after}, clock.now())
    assert 0 < waited <= 120
    before = clock.now()
    budget.acquire(clock)
    assert clock.now() - before <= 120 + 1  # the hold, and a request then


def test_the_previous_runs_requests_still_counted_are_not_read_as_the_others():
    """A run that starts right after another, in the same fixed window: with the last run's requests (the
    state carries them) it knows Remaining fell by its own spending, and takes what is left to the reserve."""
    clock = VirtualClock()
    company = FakeCompany(clock, limit=120)
    first = RequestBudget()
    spend(first, company, clock, 40)  # the last run: 40 requests, then it ended
    budget = RequestBudget()
    budget.remember(first.recent_requests(clock.now()))
    reset = company.window_start + 60
    remaining = company.remaining()
    sent = spend(budget, company, clock, 60)
    assert len([moment for moment in sent if moment < reset]) == remaining - 24  # no wait: down to the reserve
    assert min(company.tap_remaining[40:]) == 24
    assert budget.describe().startswith("fixed 60-s windows of 120")  # not a smaller limiter, nor busy others


@pytest.mark.parametrize(
    ("flags", "remaining", "reset_is_seconds"),
    [
        (["--rate-limit-style", "fixed"], [9, 8, 7, 6, 5], False),
        (["--rate-limit-style", "sliding", "--rate-reset-style", "seconds"], [9, 8, 7, 6, 5], True),
        (["--rate-limit-style", "bucket", "--rate-bucket-size", "3"], [2, 1, 0, 0, 0], False),
    ],
)
def test_the_simulator_serves_each_limiter_shape_from_its_command_line(flags, remaining, reset_is_seconds):
    from tap_aircall_analytics.simulator.__main__ import _parser

    args = vars(_parser().parse_args(["--rate-limit", "10", *flags]))
    for name in ("host", "port", "download_host", "download_port"):
        args.pop(name)
    with Simulator(SimulatorConfig(**args), port=0) as sim:
        answers = [
            requests.get(f"{sim.api_url}{EXPORTS_PATH}/{PROBE_EXPORT_ID}", auth=AUTH, timeout=10) for _ in range(5)
        ]
    assert [int(answer.headers[REMAINING_HEADER]) for answer in answers] == remaining
    assert all(answer.headers[LIMIT_HEADER] == "10" for answer in answers)
    resets = [int(answer.headers[RESET_HEADER]) for answer in answers]
    assert all((0 <= reset <= 60) if reset_is_seconds else (reset > 1e9) for reset in resets)
    assert [answer.status_code for answer in answers].count(429) == remaining.count(0) - (flags[1] == "bucket")


def test_the_simulator_refuses_a_limiter_shape_it_does_not_serve():
    with pytest.raises(ValueError, match="rate_limit_style must be one of fixed, sliding, bucket, not 'leaky'"):
        SimulatorConfig(rate_limit_style="leaky")


@pytest.mark.parametrize(
    ("style", "window", "limit", "others", "named"),
    [
        ("fixed", 60, 120, (3, 15), "fixed 60-s windows of 120"),
        ("sliding", 60, 120, (3, 15), "a sliding 60-s log of 120"),
        ("fixed", 1, 5, (1, 2), "fixed 1-s windows of 5"),
        ("sliding", 1, 5, (1, 2), "a sliding 1-s log of 5"),
        ("fixed", 5, 20, (1, 2.5), "fixed 5-s windows of 20"),
        ("sliding", 5, 20, (1, 2.5), r"a sliding [56]-s log of 20"),  # a log's window: to the second above at most
    ],
)
def test_the_limiter_is_named_by_its_shape_and_window_busy_or_not(style, window, limit, others, named):
    clock = VirtualClock()
    burst, every = others  # the others spend a tenth of the limit, or less
    company = FakeCompany(clock, limit=limit, burst=burst, every=every, style=style, window=window)
    budget = RequestBudget()
    spend(budget, company, clock, 4 * limit)  # busy: as fast as the budget lets it
    assert re.fullmatch(named, budget.describe().split(",")[0]), budget.describe()
    for _ in range(6):  # then a few requests far apart, as at the end of a run: the name holds
        clock.time += 1.5 * window
        spend(budget, company, clock, 2)
    assert re.fullmatch(named, budget.describe().split(",")[0]), budget.describe()
    assert company.tap_refused == company.others_refused == 0


def test_a_window_of_seconds_is_learned_in_seconds():
    clock = VirtualClock()
    company = FakeCompany(clock, limit=5, window=1)  # as tests/test_faults.py's simulator: 5 a second
    budget = RequestBudget()
    sent = spend(budget, company, clock, 40)
    assert sent[-1] - sent[0] < 15  # 4 a second (a fifth kept) once learned: not 4 a minute
    assert company.tap_refused == 0 and min(company.tap_remaining) >= 1  # the reserve of 1 kept


@pytest.mark.parametrize(
    ("value", "believed"),
    [
        ("120", 120),
        (" 60 ", 60),
        ("1", 1),
        ("1000000", 1_000_000),
        ("0", None),
        ("-5", None),
        ("2000000", None),
        ("1e3", None),
        ("sixty", None),
        ("١٢٠", None),
        ("", None),
    ],
)
def test_one_reader_of_the_limit_header_for_the_budget_and_the_plan(value, believed):
    from tap_aircall_analytics.api import client

    headers = {LIMIT_HEADER: value, REMAINING_HEADER: "0", RESET_HEADER: "30"}
    assert client.rate_limit_of is rate_limit_of  # the plan's probe reads the header with the budget's reader
    assert rate_limit_of(headers) == believed
    budget = RequestBudget()
    budget.acquire(VirtualClock())
    budget.settle(200, headers)
    assert budget.limit == believed
    assert ("not understood" in budget.describe()) == (believed is None)


@pytest.mark.parametrize(("reset", "style"), [(3600.7, "epoch"), (3601, "seconds")])
def test_a_reset_an_hour_away_in_whole_seconds_is_understood_and_waited_for(reset, style):
    clock = VirtualClock(1_800_000_000.3)  # a Reset rounded up to the next second: an hour and 0.7 s away
    budget = RequestBudget()
    budget.acquire(clock)
    shown = f"{clock.now() + reset:.0f}" if style == "epoch" else str(reset)
    budget.settle(201, {LIMIT_HEADER: "1", REMAINING_HEADER: "0", RESET_HEADER: shown})
    assert "not understood" not in budget.describe()
    before = clock.now()
    budget.acquire(clock)  # the limiter holds nothing more until its Reset: the next request waits for it
    assert clock.now() - before >= 60  # not the safe pace of 48 a minute: the Reset, far away
