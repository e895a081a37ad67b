"""The report catalogue: everything the tap knows of Aircall's Analytics API.

Aircall publishes the export flow, the request body and the report names, but not
the CSV columns, the file formats or a few request details. Every such choice lives
in this module and nowhere else, so that a user whose account shows something else
corrects it here, in one edit. The simulator serves the same catalogue.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, replace
from enum import Enum

# --- The request flow ---------------------------------------------------------------

DEFAULT_API_URL = "https://api.aircall.io"
EXPORTS_PATH = "/v1/analytics/report/export"  # POST here; GET {EXPORTS_PATH}/{exportID}

#: An export ID no export has: polling it (404) costs one request and tells the rate limit.
PROBE_EXPORT_ID = "00000000-0000-0000-0000-000000000000"

STATUS_PENDING = "PENDING"
STATUS_COMPLETED = "COMPLETED"
STATUS_FAILED = "FAILED"
#: Statuses that can only mean an export will never complete. Aircall publishes PENDING,
#: COMPLETED and FAILED; should it answer one of the spellings other export APIs use for an
#: end without a file, the export fails like FAILED instead of being polled until
#: `export_timeout_minutes`. Any other status is waited on, and named in the messages.
FAILED_STATUSES = frozenset(
    {STATUS_FAILED, "CANCELLED", "CANCELED", "EXPIRED", "ERROR", "ERRORED", "ABORTED", "REJECTED", "TIMED_OUT"}
)

#: Rate-limit headers sent on every API response.
LIMIT_HEADER = "X-AircallApi-Limit"
REMAINING_HEADER = "X-AircallApi-Remaining"
RESET_HEADER = "X-AircallApi-Reset"

#: Days per export by default. An event report's file grows with the company's calls, so its
#: windows stay a week; a per-user-per-day report has one row per user and day (a few kB a
#: week), so a month per export costs a fourth of the exports, and of the API budget.
EVENT_WINDOW_DAYS = 7
PER_USER_DAY_WINDOW_DAYS = 31

#: Tap setting -> request filter key, for the shortcut settings of the commonest filters.
FILTER_SETTINGS = {
    "user_ids": "userIDs",
    "team_ids": "teamIDs",
    "line_ids": "lineIDs",
    "tag_ids": "tagIDs",
}


@dataclass(frozen=True)
class ValueShape:
    """The JSON shape a request filter or option takes: what the tap checks a setting's value against."""

    description: str  # as messages say it: "an array of integers"
    array: bool = False  # a list, even of one value
    items: tuple[type, ...] = ()  # the JSON types of its value (or of each item of an array)

    def fits(self, value: object) -> bool:
        """True when `value` has this shape (booleans are not integers)."""
        values = value if self.array and isinstance(value, list) else [value]
        if self.array and not isinstance(value, list):
            return False
        return all(
            isinstance(item, self.items) and not (isinstance(item, bool) and bool not in self.items) for item in values
        )


_INTEGERS = ValueShape("an array of integers", array=True, items=(int,))
_TEXTS = ValueShape("an array of texts", array=True, items=(str,))
_IDS = ValueShape("an array of IDs (integers or texts)", array=True, items=(int, str))
_BOOLEAN = ValueShape("true or false", items=(bool,))
_TEXT = ValueShape("a text", items=(str,))
_SECONDS = ValueShape("a number of seconds", items=(int, float))
_RANGE = ValueShape("a number of seconds or an object (a range)", items=(int, float, dict))

#: Every filter key the API takes under `input.filter`, with its value's shape: the 18 keys
#: the independent client documents, which says "array filters always take a list, even for a
#: single value" and sends `withVoicemail: false`. The item types are our reading of the names
#: (IDs are integers, as in the REST API; a voice agent's ID is a text, `agent-abc123`).
#: Which report takes which filter is not published: each takes those of its dashboard view.
FILTER_SHAPES: dict[str, ValueShape] = {
    "userIDs": _INTEGERS,
    "teamIDs": _INTEGERS,
    "teamFilterOption": _TEXT,
    "hours": _IDS,
    "callIDs": _INTEGERS,
    "lineIDs": _INTEGERS,
    "customerNumbers": _TEXTS,
    "tagIDs": _INTEGERS,
    "callTypes": _TEXTS,
    "duration": _RANGE,
    "minConnectedDuration": _SECONDS,
    "ivrBranches": _TEXTS,
    "virtualVoiceAgentIDs": _IDS,
    "withAiIntervention": _BOOLEAN,
    "withVoicemail": _BOOLEAN,
    "ringAttemptOrigin": _TEXT,
    "userStatuses": _TEXTS,
    "nextUserStatuses": _TEXTS,
}
KNOWN_FILTERS = frozenset(FILTER_SHAPES)
#: The report options under `input.options` [client], with their shapes.
OPTION_SHAPES: dict[str, ValueShape] = {
    "dateBreakdown": _TEXT,
    "slaTimeToAnswerInSeconds": _SECONDS,
    "slaIncludedCallUnansweredReasons": _TEXTS,
}
#: Filter keys that the tap writes itself, from its windows and the account timezone.
RESERVED_FILTERS = frozenset({"dateFilter", "timezone"})
#: The most characters of `exportOptions.exportName` the tap sends (the API publishes no limit).
EXPORT_NAME_MAX = 200


def shape_mistake(key: str, value: object, shapes: dict[str, ValueShape]) -> str | None:
    """Why `value` does not fit the documented shape of `key`; None when it does, or the key is unknown."""
    shape = shapes.get(key)
    if shape is None or value is None or shape.fits(value):
        return None
    hint = " (a list, even for one value)" if shape.array and not isinstance(value, list) else ""
    return f"{key} must be {shape.description}{hint}, not {json.dumps(value)}"


# --- The CSV files ------------------------------------------------------------------

#: How Aircall's files spell values, as far as we know: wall-clock times in the request
#: timezone (`2026-11-27 18:47:56`), durations as H:MM:SS, booleans as Yes/No. The tap reads
#: every other unambiguous spelling too (spellings.py); these are what the simulator writes.
TRUE_TEXT = "Yes"
FALSE_TEXT = "No"
PERCENT_SUFFIX = "%"
LIST_SEPARATOR = ","


class Kind(Enum):
    """How a CSV column is read, and the JSON type it is emitted as."""

    INTEGER = "integer"
    NUMBER = "number"  # 12.5 -> 12.5
    STRING = "string"
    TIMESTAMP = "timestamp"  # wall-clock time in the account timezone -> UTC date-time
    DATE = "date"
    DURATION = "duration"  # H:MM:SS -> whole seconds
    BOOLEAN = "boolean"  # Yes / No
    PERCENT = "percent"  # 12.5% -> 12.5
    LIST = "list"  # "vip, sales" -> ["vip", "sales"]


def property_name(label: str) -> str:
    """Return the stream property for a column label: `In-call duration` -> `in_call_duration`."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


#: The type names a user gives in the `column_types` setting.
KIND_NAMES: dict[str, Kind] = {
    **{kind.value: kind for kind in Kind},
    "date-time": Kind.TIMESTAMP,
}


@dataclass(frozen=True)
class Column:
    """One CSV column: its label in the file header and how its values are read."""

    label: str
    kind: Kind
    alias: str = ""  # the property name, when it is not derived from the label
    format: str = ""  # a declared strptime format (timestamps and dates a reader cannot decide alone)
    unit: str = ""  # the declared unit of a duration written as a number (default seconds)
    decimal: str = ""  # a declared decimal mark (default ".")

    @property
    def name(self) -> str:
        """The stream property this column fills."""
        return self.alias or property_name(self.label)


@dataclass(frozen=True)
class Report:
    """One Analytics+ report type, exported as one stream."""

    api_name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    replication_key: str
    retention_months: int | None = None
    retention_days: int | None = None
    daily_breakdown: bool = False
    window_days: int = EVENT_WINDOW_DAYS  # days per export unless a setting says otherwise
    filters: tuple[str, ...] = ("userIDs", "teamIDs")
    catalogued: bool = True  # False: named by the `extra_reports` setting, columns read from its files

    @property
    def stream_name(self) -> str:
        """The Singer stream name: the report name lower-cased."""
        return self.api_name.lower()

    def column(self, name: str) -> Column:
        """Return the column that fills property `name`."""
        return next(column for column in self.columns if column.name == name)

    def column_by_label(self, label: str) -> Column:
        """Return the column with this CSV label."""
        return next(column for column in self.columns if column.label == label)

    def earliest_day(self, today: dt.date) -> dt.date | None:
        """Return the first day the API still holds on `today`, or None if unlimited."""
        if self.retention_months is not None:
            return subtract_months(today, self.retention_months)
        if self.retention_days is not None:
            return today - dt.timedelta(days=self.retention_days)
        return None

    @property
    def retention_text(self) -> str:
        """The retention limit in words, for docs and messages."""
        if self.retention_months is not None:
            return f"{self.retention_months} months"
        if self.retention_days is not None:
            return f"{self.retention_days} days"
        return "unlimited"


def subtract_months(day: dt.date, months: int) -> dt.date:
    """Return the same day `months` earlier, clamped to the end of a shorter month."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.date(year, month, min(day.day, (next_month - dt.timedelta(days=1)).day))


def _columns(spec: str) -> tuple[Column, ...]:
    """Build columns from `Label:kind` lines (the readable form of the tables below)."""
    return tuple(
        Column(label.strip(), Kind(kind.strip()))
        for label, kind in (line.rsplit(":", 1) for line in spec.splitlines() if line.strip())
    )


_PER_USER_DAY = """
Date: date
User ID: integer
User name: string
Team: string
"""


def _per_user_day(api_name: str, metrics: str) -> Report:
    return Report(
        api_name=api_name,
        columns=_columns(_PER_USER_DAY + metrics),
        primary_key=("date", "user_id"),
        replication_key="date",
        daily_breakdown=True,
        window_days=PER_USER_DAY_WINDOW_DAYS,
    )


REPORTS: tuple[Report, ...] = (
    Report(
        api_name="CALLS_HISTORY",
        columns=_columns("""
            Call ID: integer
            Call UUID: string
            Started at: timestamp
            Answered at: timestamp
            Ended at: timestamp
            Direction: string
            Call type: string
            Answered: boolean
            Unanswered call reason: string
            Duration: duration
            Waiting time: duration
            In-call duration: duration
            User ID: integer
            User name: string
            Team: string
            Line ID: integer
            Line name: string
            Line number: string
            Customer number: string
            Country: string
            Tags: list
            Voicemail: boolean
            Transferred: boolean
            IVR branch: string
        """),
        primary_key=("call_id",),
        replication_key="started_at",
        retention_months=6,
        filters=("userIDs", "teamIDs", "lineIDs", "tagIDs"),
    ),
    Report(
        api_name="USER_STATUS_HISTORY",
        columns=_columns("""
            User ID: integer
            User name: string
            Team: string
            Status: string
            Status category: string
            Started at: timestamp
            Ended at: timestamp
            Duration: duration
            Next status: string
        """),
        primary_key=("user_id", "started_at"),
        replication_key="started_at",
        retention_days=7,
    ),
    Report(
        api_name="USER_ACTIVITY_RINGING_ATTEMPTS",
        columns=_columns("""
            Attempt ID: string
            Call ID: integer
            User ID: integer
            User name: string
            Team: string
            Ringing started at: timestamp
            Ringing duration: duration
            Outcome: string
        """),
        primary_key=("attempt_id",),
        replication_key="ringing_started_at",
    ),
    _per_user_day(
        "USER_ACTIVITY_AVAILABILITY_BREAKDOWN",
        """
        Available time: duration
        Busy time: duration
        Unavailable time: duration
        Offline time: duration
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_AVERAGE_AFTER_CALL_WORK_TIME_PER_USER",
        """
        Calls with after-call work: integer
        Total after-call work time: duration
        Average after-call work time: duration
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_AVERAGE_INBOUND_IN_CALL_TIME_PER_USER",
        """
        Inbound calls answered: integer
        Total inbound in-call time: duration
        Average inbound in-call time: duration
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_AVERAGE_OUTBOUND_IN_CALL_TIME_PER_USER",
        """
        Outbound calls: integer
        Total outbound in-call time: duration
        Average outbound in-call time: duration
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_CALL_VOLUME_AND_TIME",
        """
        Inbound calls: integer
        Outbound calls: integer
        Total calls: integer
        Inbound in-call time: duration
        Outbound in-call time: duration
        Total in-call time: duration
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_CALLS_HANDLED",
        """
        Inbound calls answered: integer
        Outbound calls answered: integer
        Missed calls: integer
        Calls handled: integer
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_PERCENTAGE_OF_TIME_IN_EACH_STATUS",
        """
        Available: percent
        In call: percent
        After-call work: percent
        Do not disturb: percent
        Offline: percent
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_RINGING_ATTEMPTS_PER_USER",
        """
        Ringing attempts: integer
        Answered attempts: integer
        Missed attempts: integer
        Answer rate: percent
    """,
    ),
    _per_user_day(
        "USER_ACTIVITY_WORK_TIME_AND_AVAILABILITY",
        """
        Working time: duration
        Available time: duration
        Availability rate: percent
    """,
    ),
)

REPORTS_BY_API_NAME = {report.api_name: report for report in REPORTS}
REPORTS_BY_STREAM = {report.stream_name: report for report in REPORTS}


def uncatalogued_report(api_name: str) -> Report:
    """A report this catalogue does not know, named by the user: no known column, no key.

    Its rows are asked per day (`dateBreakdown: DAILY`), as for the per-user reports,
    so that each window's rows belong to its days; the API's retention applies.
    """
    return Report(
        api_name=api_name, columns=(), primary_key=(), replication_key="", daily_breakdown=True, catalogued=False
    )


class CatalogueError(ValueError):
    """A declared column or report that does not fit the catalogue; the message says why."""


def with_declared_columns(report: Report, declared: tuple[Column, ...], keys: tuple[str, ...]) -> Report:
    """Return `report` with columns declared by the user (the `column_types` setting).

    A declared column whose label or property name is already in the report replaces
    that column (a new type, or a renamed label); any other one is added. `keys` names
    the primary key of a report the catalogue does not know.
    """
    columns = list(report.columns)
    for column in declared:
        same = [
            i
            for i, known in enumerate(columns)
            if label_key(known.label) == label_key(column.label) or known.name == column.name
        ]
        if len(same) > 1:
            raise CatalogueError(
                f"{report.stream_name}: '{column.label}' ({column.name}) would replace "
                f"two columns, {columns[same[0]].label!r} and {columns[same[1]].label!r}"
            )
        if same and columns[same[0]].name != column.name and columns[same[0]].name in report.primary_key:
            raise CatalogueError(
                f"{report.stream_name}: '{column.label}' is part of the primary key; "
                f"keep its property name {columns[same[0]].name!r}"
            )
        if same:
            columns[same[0]] = column
        else:
            columns.append(column)
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise CatalogueError(f"{report.stream_name}: two columns fill the property {twice[0]!r}")
    if keys and report.catalogued:
        raise CatalogueError(
            f"{report.stream_name}: the primary key of a catalogued report cannot change "
            f"(it is {', '.join(report.primary_key)})"
        )
    return replace(report, columns=tuple(columns), primary_key=keys or report.primary_key)


def label_key(label: str) -> str:
    """A label as it is matched: its letters and digits, whatever the case, spacing and separators.

    `Call ID`, `call_id`, `callId`, `CALL-ID` and `Call  id` are all `callid`.
    """
    return "".join(character for character in label.casefold() if character.isalnum())


def export_request_body(
    report: Report,
    first_day: dt.date,
    last_day: dt.date,
    timezone: str,
    filters: dict[str, list[int]] | None = None,
    *,
    request_filters: dict[str, object] | None = None,
    options: dict[str, object] | None = None,
    export_name: str = "",
) -> dict:
    """Return the body of an export request for `report` over [first_day, last_day].

    Both days are inclusive calendar days in `timezone`. `filters` are the shortcut
    settings' (user_ids, ...): those the report does not accept are left out.
    `request_filters` and `options` are merged as given over them and over the tap's own
    options (a None value leaves a key out); `export_name` labels the export.
    """
    request_filter: dict = {
        "dateFilter": {"absoluteRange": {"fromDate": first_day.isoformat(), "toDate": last_day.isoformat()}},
        "timezone": timezone,
    }
    for key, values in (filters or {}).items():
        if key in report.filters and values:
            request_filter[key] = list(values)
    _merge(request_filter, request_filters)
    body: dict = {"reportName": report.api_name, "filter": request_filter}
    report_options: dict = {"dateBreakdown": "DAILY"} if report.daily_breakdown else {}
    _merge(report_options, options)
    if report_options:
        body["options"] = report_options
    body["exportOptions"] = {"format": "CSV", **({"exportName": export_name} if export_name else {})}
    return {"input": body}


def _merge(into: dict, given: dict[str, object] | None) -> None:
    for key, value in (given or {}).items():
        if value is None:
            into.pop(key, None)
        else:
            into[key] = value
