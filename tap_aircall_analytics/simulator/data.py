"""Seeded data for the simulator: the same day always holds the same rows.

Calls, status periods and ringing attempts are generated per UTC day as instants, then
written as wall-clock times in the timezone of the request, so any range in any
timezone cuts the same underlying events. Per-user-per-day reports are generated per
calendar day of the request, each row consistent in itself (totals add up, averages and
rates are those of its counts, durations fit in the day). Generation is table-driven so
that a million-row export is written faster than a tap can read it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import zlib
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache

from tap_aircall_analytics.config.catalogue import (
    FALSE_TEXT,
    LIST_SEPARATOR,
    PERCENT_SUFFIX,
    TRUE_TEXT,
    Column,
    Kind,
    Report,
)
from tap_aircall_analytics.simulator.dialects import Dialect

EPOCH_DAY = dt.date(2020, 1, 1)

TEAMS = ("Sales, EMEA", "Support", "Customer Success")
USERS = (  # id, name, team index: names that need quoting, and non-ASCII ones
    (101, "Marie Dupont", 0),
    (102, "Dupont, Jean", 0),
    (103, 'Zoë "Zed" Müller', 1),
    (104, "José Ñúñez", 1),
    (105, "Aiko Tanaka", 2),
    (106, "Liam O'Brien", 0),
    (107, "Chloé Martin", 1),
    (108, "Noah Schmidt", 2),
)
LINES = (  # id, name (one with a line break), number
    (9001, "Paris office\n(main)", "+33 1 84 88 00 01"),
    (9002, "Support, FR", "+33 1 84 88 00 02"),
    (9003, "US sales", "+1 415 555 0199"),
)
TAGS = ((1, "vip"), (2, "sales"), (3, "follow-up"), (4, "billing"))
STATUSES = (  # status, category
    ("available", "available"),
    ("on_mobile", "available"),
    ("in_call", "busy"),
    ("after_call_work", "busy"),
    ("do_not_disturb", "unavailable"),
    ("away", "unavailable"),
    ("custom:lunch break", "unavailable"),
    ("offline", "offline"),
)
UNANSWERED_REASONS = (
    "out_of_opening_hours",
    "short_abandoned",
    "abandoned_in_ivr",
    "abandoned_in_classic",
    "no_available_agent",
    "agents_did_not_answer",
)
COUNTRIES = ("FR", "US", "DE", "ES", "GB")
IVR_BRANCHES = ("", "Sales", "Support > Billing", 'Option "2"')
LONG_CALL_SECONDS = 27 * 3600 + 3 * 60 + 10  # one stuck call per pool: 27:03:10

SHAPES = 997  # a prime: call shapes cycle through the pool without an obvious pattern
MAX_CALL_SECONDS = LONG_CALL_SECONDS + 600


def duration_text(seconds: int) -> str:
    """Format seconds as H:MM:SS (hours may exceed 24)."""
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour}:{minute:02d}:{second:02d}"


_TIMES_OF_DAY = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]


class WallClock:
    """Turns UTC instants (seconds since 1970) into wall-clock text in one timezone."""

    def __init__(self, timezone: str) -> None:
        self._zone = zoneinfo.ZoneInfo(timezone)
        self._offsets: dict[int, int] = {}
        self._days: dict[int, str] = {}

    def text(self, instant: int) -> str:
        """Return `YYYY-MM-DD HH:MM:SS` for `instant` in this timezone."""
        bucket = instant // 900  # offsets change on quarter hours at the finest
        offset = self._offsets.get(bucket)
        if offset is None:
            moment = dt.datetime.fromtimestamp(bucket * 900, dt.timezone.utc)
            offset = int((moment.astimezone(self._zone).utcoffset() or dt.timedelta()).total_seconds())
            self._offsets[bucket] = offset
        local = instant + offset
        day, second = divmod(local, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat() + " "
            self._days[day] = prefix
        return prefix + _TIMES_OF_DAY[second]


@dataclass(frozen=True)
class CallShape:
    """Everything about a call but its identity and time."""

    offset: int  # seconds after the call's slot
    fields: tuple  # Direction .. Answered, reason (text)
    waiting: int
    in_call: int
    user: tuple[int, str, int]
    line: tuple[int, str, str]
    customer: str
    country: str
    tag_ids: tuple[int, ...]
    voicemail: bool
    transferred: bool
    ivr: str
    attempts: int

    @property
    def texts(self) -> tuple[str, ...]:
        """The CSV fields from Direction to IVR branch (the same for every call of the shape)."""
        return _shape_texts(self)


@lru_cache(maxsize=16)
def call_shapes(seed: int) -> tuple[CallShape, ...]:
    """Return the pool of call shapes for a seed."""
    rng = random.Random(f"shapes:{seed}")
    shapes = []
    for index in range(SHAPES):
        direction = rng.choice(("inbound", "inbound", "outbound"))
        answered = rng.random() < 0.75
        voicemail = direction == "inbound" and not answered and rng.random() < 0.5
        waiting = rng.randint(0, 90)
        in_call = rng.randint(15, 1800) if answered else 0
        if index == SHAPES // 2:
            in_call = LONG_CALL_SECONDS - waiting
        shapes.append(
            CallShape(
                offset=rng.randint(0, 59),
                fields=(
                    direction,
                    rng.choice(("standard", "standard", "transfer", "conference")),
                    answered,
                    "" if answered else rng.choice(UNANSWERED_REASONS),
                ),
                waiting=waiting,
                in_call=in_call,
                user=rng.choice(USERS),
                line=rng.choice(LINES),
                customer="+33 6 " + " ".join(str(rng.randint(10, 99)) for _ in range(4)),
                country=rng.choice(COUNTRIES),
                tag_ids=tuple(sorted(rng.sample([tag for tag, _ in TAGS], rng.choice((0, 0, 1, 2))))),
                voicemail=voicemail,
                transferred=answered and rng.random() < 0.1,
                ivr=rng.choice(IVR_BRANCHES),
                attempts=rng.randint(1, 3) if direction == "inbound" else 0,
            )
        )
    return tuple(shapes)


@dataclass(frozen=True)
class Filters:
    """The request filters the simulator applies to its data; it accepts the others and ignores them."""

    user_ids: frozenset[int] | None = None
    team_names: frozenset[str] | None = None
    line_ids: frozenset[int] | None = None
    tag_ids: frozenset[int] | None = None
    call_ids: frozenset[int] | None = None
    call_types: frozenset[str] | None = None  # a call's direction or its call type
    customer_numbers: frozenset[str] | None = None
    ivr_branches: frozenset[str] | None = None
    voicemail: bool | None = None
    min_connected_seconds: float | None = None
    statuses: frozenset[str] | None = None
    next_statuses: frozenset[str] | None = None

    @classmethod
    def from_request(cls, request_filter: dict) -> Filters:
        """Read the filters of an export request (team IDs are team indexes + 1)."""

        def values(key: str) -> frozenset | None:
            given = request_filter.get(key)
            return frozenset(given) if given else None

        teams = values("teamIDs")
        voicemail = request_filter.get("withVoicemail")
        connected = request_filter.get("minConnectedDuration")
        return cls(
            user_ids=values("userIDs"),
            team_names=frozenset(TEAMS[i - 1] for i in teams if 0 < i <= len(TEAMS)) if teams is not None else None,
            line_ids=values("lineIDs"),
            tag_ids=values("tagIDs"),
            call_ids=values("callIDs"),
            call_types=values("callTypes"),
            customer_numbers=values("customerNumbers"),
            ivr_branches=values("ivrBranches"),
            voicemail=voicemail if isinstance(voicemail, bool) else None,
            min_connected_seconds=connected if isinstance(connected, (int, float)) else None,
            statuses=values("userStatuses"),
            next_statuses=values("nextUserStatuses"),
        )

    def keeps_user(self, user: tuple[int, str, int]) -> bool:
        """True when a row of this user passes the user and team filters."""
        if self.user_ids is not None and user[0] not in self.user_ids:
            return False
        return self.team_names is None or TEAMS[user[2]] in self.team_names

    def keeps_call(self, shape: CallShape) -> bool:
        """True when a call passes every filter (an unanswered call has no user or team)."""
        if (self.user_ids is not None or self.team_names is not None) and not shape.fields[2]:
            return False
        if not self.keeps_user(shape.user):
            return False
        if self.line_ids is not None and shape.line[0] not in self.line_ids:
            return False
        if self.call_types is not None and not self.call_types.intersection(shape.fields[:2]):
            return False
        if self.customer_numbers is not None and shape.customer not in self.customer_numbers:
            return False
        if self.ivr_branches is not None and shape.ivr not in self.ivr_branches:
            return False
        if self.voicemail is not None and shape.voicemail != self.voicemail:
            return False
        if self.min_connected_seconds is not None and shape.in_call < self.min_connected_seconds:
            return False
        return self.tag_ids is None or bool(self.tag_ids.intersection(shape.tag_ids))

    def keeps_status(self, status: str, following: str) -> bool:
        """True when a status period passes the status filters."""
        if self.statuses is not None and status not in self.statuses:
            return False
        return self.next_statuses is None or following in self.next_statuses


@cache
def _shape_texts(shape: CallShape) -> tuple[str, ...]:
    direction, call_type, answered, reason = shape.fields
    user_id, user_name, team = shape.user
    line_id, line_name, line_number = shape.line
    return (
        direction,
        call_type,
        _yes_no(answered),
        reason,
        duration_text(shape.waiting + shape.in_call),
        duration_text(shape.waiting),
        duration_text(shape.in_call),
        str(user_id) if answered else "",
        user_name if answered else "",
        TEAMS[team] if answered else "",
        str(line_id),
        line_name,
        line_number,
        shape.customer,
        shape.country,
        (LIST_SEPARATOR + " ").join(_TAG_NAMES[tag] for tag in shape.tag_ids),
        _yes_no(shape.voicemail),
        _yes_no(shape.transferred),
        shape.ivr,
    )


@cache
def _quoted(fields: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(fields)  # quotes fields holding \r or \n
    return buffer.getvalue()[:-2]


def _yes_no(value: bool) -> str:
    return TRUE_TEXT if value else FALSE_TEXT


_TAG_NAMES = dict(TAGS)


class ReportData:
    """The rows of one report over an inclusive range of days in one timezone."""

    def __init__(
        self,
        report: Report,
        first: dt.date,
        last: dt.date,
        timezone: str,
        *,
        seed: int,
        calls_per_day: int,
        filters: Filters = Filters(),
        empty_days: frozenset[dt.date] = frozenset(),
        daily: bool = True,
        until: int | None = None,
    ) -> None:
        self.report = report
        self.first, self.last = first, last
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.clock = WallClock(timezone)
        self.timezone = timezone
        self.seed = seed
        self.calls_per_day = calls_per_day
        self.filters = filters
        self.empty_days = frozenset(day.isoformat() for day in empty_days)
        self.first_text, self.last_text = first.isoformat(), last.isoformat()
        self.daily = daily or not report.daily_breakdown
        # The moment of the request (Unix seconds): no row ends after it, no day starts after it.
        self.until = until
        self.until_day = (
            dt.datetime.fromtimestamp(until, dt.timezone.utc).astimezone(self.zone).date().isoformat()
            if until is not None
            else "9999-12-31"
        )

    @property
    def labels(self) -> list[str]:
        """The contract's column labels, in the contract's order."""
        return [column.label for column in self.report.columns if self.daily or column.label != "Date"]

    def rows(self) -> Iterator[list[str]]:
        """Yield the rows as CSV text fields, in the order of `labels`."""
        generate = {
            "CALLS_HISTORY": self._calls,
            "USER_STATUS_HISTORY": self._status_periods,
            "USER_ACTIVITY_RINGING_ATTEMPTS": self._ringing_attempts,
        }.get(self.report.api_name, self._per_user_day)
        return generate()

    def _keeps_day(self, text: str) -> bool:
        day = text[:10]
        return self.first_text <= day <= self.last_text and day not in self.empty_days

    def _utc_days(self, margin: int = 1) -> Iterable[dt.date]:
        day = self.first - dt.timedelta(days=margin + 1)
        while day <= self.last + dt.timedelta(days=1):
            yield day
            day += dt.timedelta(days=1)

    def _placed_calls(self) -> Iterator[tuple[int, int, CallShape]]:
        """Yield (call ID, start instant, shape) of every call that passes the filters."""
        shapes = call_shapes(self.seed)
        per_day = self.calls_per_day
        keeps = self.filters.keeps_call
        call_ids = self.filters.call_ids
        until = self.until
        for day in self._utc_days():
            ordinal = (day - EPOCH_DAY).days
            day_start = (ordinal + (EPOCH_DAY - dt.date(1970, 1, 1)).days) * 86400
            slot = 86400 / per_day
            for index in range(per_day):
                shape = shapes[(index * 131 + ordinal * 17) % SHAPES]
                if not keeps(shape):
                    continue
                call_id, started = ordinal * 10_000_000 + index, day_start + int(index * slot) + shape.offset
                if until is not None and started + shape.waiting + shape.in_call > until:
                    continue  # not ended yet: calls count once ended
                if call_ids is None or call_id in call_ids:
                    yield call_id, started, shape

    def _call_heads(self) -> Iterator[tuple[str, CallShape]]:
        """Yield each call's first five CSV fields, joined, with its shape."""
        text = self.clock.text
        keeps_day = self._keeps_day
        uuid_prefix = f"{self.seed:08x}-5a1e-4c11-8a11-"
        for call_id, started, shape in self._placed_calls():
            started_text = text(started)
            if not keeps_day(started_text):
                continue
            answered_at = text(started + shape.waiting) if shape.fields[2] else ""
            ended_at = text(started + shape.waiting + shape.in_call)
            yield f"{call_id},{uuid_prefix}{call_id:012x},{started_text},{answered_at},{ended_at}", shape

    def _calls(self) -> Iterator[list[str]]:
        for head, shape in self._call_heads():
            yield [*head.split(","), *shape.texts]

    def call_lines(self, end: str) -> Iterator[str]:
        """Yield Call History rows as ready CSV lines: the fast path for large files."""
        for head, shape in self._call_heads():
            yield f"{head},{_quoted(shape.texts)}{end}"

    def _ringing_attempts(self) -> Iterator[list[str]]:
        text = self.clock.text
        for call_id, started, shape in self._placed_calls():
            for attempt in range(shape.attempts):
                user = USERS[(call_id + attempt) % len(USERS)]
                if not self.filters.keeps_user(user):
                    continue
                ringing_at = text(started + 2 + attempt * 20)
                if not self._keeps_day(ringing_at):
                    continue
                last = attempt == shape.attempts - 1
                yield [
                    f"{call_id}-{attempt + 1}",
                    str(call_id),
                    str(user[0]),
                    user[1],
                    TEAMS[user[2]],
                    ringing_at,
                    duration_text(min(shape.waiting, 20) if last else 20),
                    "answered" if last and shape.fields[2] else "missed",
                ]

    def _status_periods(self) -> Iterator[list[str]]:
        text = self.clock.text
        for day in self._utc_days():
            day_start = (day - dt.date(1970, 1, 1)).days * 86400
            for user in USERS:
                if not self.filters.keeps_user(user):
                    continue
                rng = random.Random(f"status:{self.seed}:{user[0]}:{day.isoformat()}")
                moment = day_start + 6 * 3600 + rng.randint(0, 3600)
                periods = []
                while moment < day_start + 20 * 3600:
                    length = rng.randint(60, 5400)
                    periods.append((rng.choice(STATUSES), moment, length))
                    moment += length
                for index, (status, started, length) in enumerate(periods):
                    started_text = text(started)
                    if not self._keeps_day(started_text):
                        continue
                    if self.until is not None and started + length > self.until:
                        continue  # not over yet
                    following = periods[index + 1][0][0] if index + 1 < len(periods) else "offline"
                    if not self.filters.keeps_status(status[0], following):
                        continue
                    yield [
                        str(user[0]),
                        user[1],
                        TEAMS[user[2]],
                        status[0],
                        status[1],
                        started_text,
                        text(started + length),
                        duration_text(length),
                        following,
                    ]

    def _per_user_day(self) -> Iterator[list[str]]:
        kinds = [column.kind for column in self.report.columns[4:]]
        metrics = USER_DAY_METRICS.get(self.report.api_name) or _independent(kinds)
        totals: dict[int, tuple[list[float], int]] = {}  # user -> amounts and seconds of the days with data
        day = self.first
        while day <= self.last:
            day_seconds = _seconds_in(day, self.zone)  # a day of a clock change is 23 or 25 hours long
            for user in USERS:
                if not self.filters.keeps_user(user) or day.isoformat() in self.empty_days:
                    continue
                if day.isoformat() > self.until_day:
                    continue
                rng = random.Random(f"{self.report.api_name}:{self.seed}:{user[0]}:{day.isoformat()}")
                amounts = metrics.amounts(rng, day_seconds)
                if self.daily:
                    values = metrics.columns(amounts, day_seconds)
                    yield [day.isoformat(), str(user[0]), user[1], TEAMS[user[2]], *map(_metric_text, kinds, values)]
                else:
                    summed, seconds = totals.get(user[0], ([0] * len(amounts), 0))
                    totals[user[0]] = [a + b for a, b in zip(summed, amounts)], seconds + day_seconds
            day += dt.timedelta(days=1)
        for user in USERS:
            if user[0] in totals:
                summed, seconds = totals[user[0]]
                values = metrics.columns(tuple(summed), seconds)
                yield [str(user[0]), user[1], TEAMS[user[2]], *map(_metric_text, kinds, values)]


def _seconds_in(day: dt.date, zone: dt.tzinfo) -> int:
    """The length of a calendar day in a timezone, in seconds."""
    start = dt.datetime.combine(day, dt.time(), zone).timestamp()
    return int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).timestamp() - start)


@dataclass(frozen=True)
class UserDayMetrics:
    """How a per-user-per-day report's numbers are made, as Aircall's reports relate them.

    `amounts(rng, seconds in the day)` draws the quantities that add up over days (calls,
    seconds); `columns(amounts, seconds in the range)` gives the report's metric columns
    from them: totals, averages and rates are computed from the counts they stand for, so
    a row over several days is that of its days' sums, never an average of averages.
    """

    amounts: Callable[[random.Random, int], tuple[float, ...]]
    columns: Callable[[tuple[float, ...], int], tuple[float, ...]]


def _split(rng: random.Random, total: int, parts: int) -> tuple[int, ...]:
    """`total` cut at random into `parts` amounts that add up to it."""
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    return tuple(b - a for a, b in zip([0, *cuts], [*cuts, total]))


def _working(rng: random.Random, day_seconds: int) -> int:
    return min(day_seconds, rng.randint(4 * 3600, 10 * 3600))


def _day_in_statuses(rng: random.Random, day_seconds: int, statuses: int) -> tuple[int, ...]:
    """Seconds in each of `statuses` working statuses, then offline: the whole day."""
    working = _working(rng, day_seconds)
    return (*_split(rng, working, statuses), day_seconds - working)


def _calls_and_time(rng: random.Random, shortest: int, longest: int) -> tuple[int, int]:
    """A number of calls and the seconds they took, each `shortest` to `longest` seconds long."""
    calls = rng.randint(0, 40)
    return calls, rng.randint(shortest * calls, longest * calls)


def _average(total: float, count: float) -> int:
    return round(total / count) if count else 0


def _rate(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _shares(amounts: tuple[float, ...], whole: int) -> tuple[float, ...]:
    """Percentages of `whole`, to one decimal, that add up to 100.0 (the last one takes the rounding)."""
    shares = [_rate(amount, whole) for amount in amounts[:-1]]
    return (*shares, round(100 - sum(shares), 1))


def _count_and_average(amounts: tuple[float, ...], seconds: int) -> tuple[float, ...]:
    calls, total = amounts
    return calls, total, _average(total, calls)


#: The arithmetic of each catalogued per-user-per-day report, its columns in catalogue order.
USER_DAY_METRICS: dict[str, UserDayMetrics] = {
    "USER_ACTIVITY_AVAILABILITY_BREAKDOWN": UserDayMetrics(  # available, busy, unavailable, offline: the day
        lambda rng, day: _day_in_statuses(rng, day, 3),
        lambda amounts, seconds: amounts,
    ),
    "USER_ACTIVITY_AVERAGE_AFTER_CALL_WORK_TIME_PER_USER": UserDayMetrics(
        lambda rng, day: _calls_and_time(rng, 10, 300), _count_and_average
    ),
    "USER_ACTIVITY_AVERAGE_INBOUND_IN_CALL_TIME_PER_USER": UserDayMetrics(
        lambda rng, day: _calls_and_time(rng, 15, 900), _count_and_average
    ),
    "USER_ACTIVITY_AVERAGE_OUTBOUND_IN_CALL_TIME_PER_USER": UserDayMetrics(
        lambda rng, day: _calls_and_time(rng, 15, 600), _count_and_average
    ),
    "USER_ACTIVITY_CALL_VOLUME_AND_TIME": UserDayMetrics(  # inbound calls and time, outbound calls and time
        lambda rng, day: (*_calls_and_time(rng, 15, 900), *_calls_and_time(rng, 15, 600)),
        lambda a, seconds: (a[0], a[2], a[0] + a[2], a[1], a[3], a[1] + a[3]),
    ),
    "USER_ACTIVITY_CALLS_HANDLED": UserDayMetrics(  # inbound answered, outbound answered, missed
        lambda rng, day: (rng.randint(0, 30), rng.randint(0, 30), rng.randint(0, 10)),
        lambda a, seconds: (a[0], a[1], a[2], a[0] + a[1]),
    ),
    "USER_ACTIVITY_PERCENTAGE_OF_TIME_IN_EACH_STATUS": UserDayMetrics(  # available, in call, ACW, DND; offline
        lambda rng, day: _day_in_statuses(rng, day, 4),
        _shares,
    ),
    "USER_ACTIVITY_RINGING_ATTEMPTS_PER_USER": UserDayMetrics(  # answered, missed
        lambda rng, day: (rng.randint(0, 30), rng.randint(0, 15)),
        lambda a, seconds: (a[0] + a[1], a[0], a[1], _rate(a[0], a[0] + a[1])),
    ),
    "USER_ACTIVITY_WORK_TIME_AND_AVAILABILITY": UserDayMetrics(  # working, available within it
        lambda rng, day: (working := _working(rng, day), rng.randint(0, working)),
        lambda a, seconds: (a[0], a[1], _rate(a[1], a[0])),
    ),
}


def _independent(kinds: list[Kind]) -> UserDayMetrics:
    """A report whose arithmetic the simulator does not know (the extra_report drift): each column on its own."""
    return UserDayMetrics(
        lambda rng, day: tuple(_metric(rng, kind) for kind in kinds),
        lambda amounts, seconds: tuple(
            value / max(1, round(seconds / 86400)) if kind is Kind.PERCENT else value
            for kind, value in zip(kinds, amounts)
        ),
    )


def _metric(rng: random.Random, kind: Kind) -> float:
    if kind is Kind.DURATION:
        return rng.randint(0, 8 * 3600)
    if kind is Kind.PERCENT:
        return round(rng.uniform(0, 100), 1)
    return rng.randint(0, 40)


def _metric_text(kind: Kind, value: float) -> str:
    if kind is Kind.DURATION:
        return duration_text(int(value))
    if kind is Kind.PERCENT:
        return f"{value:.1f}{PERCENT_SUFFIX}"
    return str(int(value))


#: Texts of the `extra_column` drift: quoting, line breaks, non-ASCII, an empty cell.
EXTRA_TEXTS = ("Queue A", 'Support, "VIP"', "line one\nline two", "", 'Zoë, "Ñ"\r\nend')
BAD_CELL = "n/a"  # what a bad cell of the `bad_cells_every` drift holds


def drift_code(row: list[str]) -> int:
    """A number fixed by a row's first two contract fields: which drift values the row gets."""
    return zlib.crc32(f"{row[0]}|{row[1]}".encode())


def extra_text(row: list[str]) -> str:
    """The `extra_column` cell of a contract row."""
    return EXTRA_TEXTS[drift_code(row) % len(EXTRA_TEXTS)]


def typed_text(kind: Kind, row: list[str]) -> str:
    """The `typed_column` cell of a contract row: a value of `kind` (integer, duration or percent)."""
    code = drift_code(row)
    return _metric_text(kind, code % 5000 / 10 if kind is Kind.PERCENT else code % 40_000)


def bad_cell_column(report: Report) -> Column:
    """The column that holds the bad cells of the `bad_cells_every` drift: the last typed, non-key one."""
    return [
        column
        for column in report.columns
        if column.name not in report.primary_key and column.kind not in (Kind.STRING, Kind.LIST)
    ][-1]


def has_bad_cell(row: list[str], every: int | None) -> bool:
    """True when a contract row gets a bad cell under `bad_cells_every`."""
    return every is not None and every > 0 and drift_code(row) % every == 0


def queue_report(api_name: str) -> Report:
    """A per-user-per-day report unknown to the catalogue, served under `api_name` by the `extra_report` drift."""
    columns = (
        ("Date", Kind.DATE),
        ("User ID", Kind.INTEGER),
        ("User name", Kind.STRING),
        ("Team", Kind.STRING),
        ("Queue calls", Kind.INTEGER),
        ("Queue wait time", Kind.DURATION),
        ("Queue answer rate", Kind.PERCENT),
    )
    return Report(
        api_name=api_name,
        columns=tuple(Column(label, kind) for label, kind in columns),
        primary_key=("date", "user_id"),
        replication_key="date",
        daily_breakdown=True,
    )


@dataclass(frozen=True)
class FileOptions:
    """How a CSV file is written: the format faults and drift of the simulator."""

    bom: bool = False
    crlf: bool = False
    shuffle_columns: bool = False
    drop_column: str | None = None
    extra_column: str | None = None
    typed_column: str | None = None  # "Label:kind"
    rename_column: str | None = None  # "Old label=New label"
    bad_cells_every: int | None = None
    dialect: Dialect = field(default_factory=Dialect)  # another spelling of the same file (headers, values)

    @property
    def drifts(self) -> bool:
        """True when rows change on their way out (columns added or cells spoiled)."""
        return bool(self.extra_column or self.typed_column or self.bad_cells_every)


def write_csv(data: ReportData, handle, options: FileOptions = FileOptions(), seed: int = 0) -> int:
    """Write the report as CSV text to `handle`; return the number of rows."""
    labels = data.labels
    order = list(range(len(labels)))
    if options.drop_column in labels:
        order.remove(labels.index(options.drop_column))
    if options.shuffle_columns:
        random.Random(f"columns:{seed}").shuffle(order)
    if options.bom:
        handle.write("\ufeff")
    writer = csv.writer(handle, lineterminator="\r\n" if options.crlf else "\n")
    dialect = replace(options.dialect, timezone=data.timezone)
    header = [dialect.label(labels[i]) for i in order]
    if options.rename_column:
        old, _, new = options.rename_column.partition("=")
        header = [new if label == old else label for label in header]
    typed_kind = None
    if options.typed_column:
        typed_label, _, kind = options.typed_column.rpartition(":")
        typed_kind = Kind(kind)
        header.append(typed_label)
    if options.extra_column:
        header.append(options.extra_column)
    writer.writerow(header)
    count = 0
    identity = order == list(range(len(labels)))
    if identity and not options.drifts and not dialect and data.report.api_name == "CALLS_HISTORY":
        lines: list[str] = []
        for line in data.call_lines(writer.dialect.lineterminator):
            lines.append(line)
            if len(lines) == 4096:
                handle.write("".join(lines))
                count += len(lines)
                lines.clear()
        handle.write("".join(lines))
        return count + len(lines)
    rows = data.rows()
    bad_index = labels.index(bad_cell_column(data.report).label) if options.bad_cells_every else None
    batch: list[list[str]] = []
    columns = {column.label: column for column in data.report.columns}
    respell = [dialect.cell(columns[labels[i]]) for i in order] if dialect else []
    for contract_row in rows:
        row = contract_row if identity else [contract_row[i] for i in order]
        if respell:
            row = [convert(cell) if cell else cell for convert, cell in zip(respell, row)]
        if options.drifts:
            row = list(row)
            if bad_index is not None and has_bad_cell(contract_row, options.bad_cells_every) and bad_index in order:
                row[order.index(bad_index)] = BAD_CELL
            if typed_kind is not None:
                row.append(typed_text(typed_kind, contract_row))
            if options.extra_column:
                row.append(extra_text(contract_row))
        batch.append(row)
        if len(batch) == 2048:
            writer.writerows(batch)
            count += len(batch)
            batch.clear()
    writer.writerows(batch)
    return count + len(batch)
