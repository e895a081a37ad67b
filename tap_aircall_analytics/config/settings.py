"""The tap's settings: their schema for `--about`, and their checked, typed form."""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from singer_sdk import typing as th
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import clock
from tap_aircall_analytics.clock import ClockError
from tap_aircall_analytics.config.catalogue import (
    DEFAULT_API_URL,
    EVENT_WINDOW_DAYS,
    EXPORT_NAME_MAX,
    FILTER_SETTINGS,
    FILTER_SHAPES,
    KIND_NAMES,
    OPTION_SHAPES,
    PER_USER_DAY_WINDOW_DAYS,
    REPORTS,
    RESERVED_FILTERS,
    CatalogueError,
    Column,
    Kind,
    Report,
    ValueShape,
    property_name,
    shape_mistake,
    uncatalogued_report,
    with_declared_columns,
)
from tap_aircall_analytics.config.spellings import DECIMAL_MARKS, DURATION_UNITS, TIMESTAMP_UNITS, format_mistake


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _ids(name: str, what: str, title: str) -> th.Property:
    return th.Property(
        name,
        th.ArrayType(th.IntegerType),
        title=title,
        description=f"Only export data of these {what} (sent as the `{FILTER_SETTINGS[name]}` "
        "filter to the reports that accept it).",
    )


SETTINGS_SCHEMA = th.PropertiesList(
    th.Property(
        "api_id",
        th.StringType,
        title="API ID",
        description="API key ID (Dashboard > Integrations & API > API Keys). "
        "Used with `api_token` for Basic authentication.",
    ),
    th.Property(
        "api_token",
        th.StringType,
        title="API token",
        secret=True,
        description="API key secret token, shown once when the key is created. Used with `api_id`.",
    ),
    th.Property(
        "access_token",
        th.StringType,
        title="OAuth access token",
        secret=True,
        description="OAuth access token (Bearer), instead of `api_id` and `api_token`.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        title="API URL",
        default=DEFAULT_API_URL,
        description="Base URL of the Aircall API. Point it at the simulator for offline runs.",
    ),
    th.Property(
        "start_date",
        th.DateType,
        title="Start date",
        required=True,
        description="First day to export (YYYY-MM-DD, in `timezone`). A start before a report's "
        "retention limit is moved to the limit with a warning.",
    ),
    th.Property(
        "end_date",
        th.DateType,
        title="End date",
        description="Last day to export, inclusive (YYYY-MM-DD). Default: today in `timezone`.",
    ),
    th.Property(
        "timezone",
        th.StringType,
        title="Timezone",
        default="UTC",
        description="IANA timezone of the account (e.g. Europe/Paris): days, windows and the "
        "CSV's wall-clock times are read in it. Timestamps are emitted in UTC.",
    ),
    th.Property(
        "window_days",
        th.IntegerType,
        title="Window days",
        description="Days per export, for every report (default: each report's own, "
        f"{EVENT_WINDOW_DAYS} for the event reports, {PER_USER_DAY_WINDOW_DAYS} for the per-user-per-day "
        "ones). Smaller windows mean smaller files and earlier checkpoints; larger ones, fewer exports.",
    ),
    th.Property(
        "stream_window_days",
        th.ObjectType(additional_properties=th.IntegerType),
        title="Window days per stream",
        description='Days per export for some streams, over `window_days`: `{"calls_history": 3}`.',
    ),
    th.Property(
        "lookback_days",
        th.IntegerType,
        title="Lookback days",
        default=1,
        description="Days before the bookmark that each run exports again, to pick up late data.",
    ),
    th.Property(
        "max_concurrent_exports",
        th.IntegerType,
        title="Max concurrent exports",
        default=12,
        description="Exports in flight at once, all streams together: a run requests the exports of "
        "every selected stream ahead, in the order they are emitted. 12 lets a daily run of the twelve "
        "reports wait for about one export, within the API's rate limit.",
    ),
    th.Property(
        "max_disk_mb",
        th.NumberType,
        title="Max disk (MB)",
        default=1000,
        description="Most megabytes of downloaded export files on disk (in TMPDIR) at once, waiting to be "
        "emitted or being downloaded, counted as their bytes arrive: a download that would cross it waits, "
        "and no export is requested, until emitted files are deleted. Only the file the run waits for next "
        "may go past the room left, never past the bound itself: a file larger than it fails its window.",
    ),
    th.Property(
        "max_unzipped_mb",
        th.NumberType,
        title="Max unzipped size (MB)",
        default=5000,
        description="Most megabytes one zipped export file may expand to; past it the window fails "
        "(a zip bomb, or a window far larger than it should be: lower window_days). The bytes are "
        "counted as they are unzipped, whatever the archive claims. In BATCH mode a file is unzipped "
        "to TMPDIR, so `max_disk_mb` bounds it too.",
    ),
    th.Property(
        "poll_interval_seconds",
        th.NumberType,
        title="Poll interval (seconds)",
        default=2,
        description="Until an export of the run has completed, the first wait before polling one; it "
        "doubles up to `max_poll_interval_seconds`. Later polls go near each export's expected completion, "
        "learned from the run's earlier exports (per report, by range length).",
    ),
    th.Property(
        "max_poll_interval_seconds",
        th.NumberType,
        title="Max poll interval (seconds)",
        default=60,
        description="Longest wait between two polls of one export.",
    ),
    th.Property(
        "export_timeout_minutes",
        th.NumberType,
        title="Export timeout (minutes)",
        default=30,
        description="An export still PENDING after this long fails its window (never read as empty).",
    ),
    th.Property(
        "request_timeout_seconds",
        th.NumberType,
        title="Request timeout (seconds)",
        default=30,
        description="How long the API or the download host may stay silent (while connecting, or between "
        "two bytes of an answer) before the request is given up and retried. A host that stays silent is "
        "given up after a few minutes; raise this for a slow link.",
    ),
    th.Property(
        "download_timeout_minutes",
        th.NumberType,
        title="Download timeout (minutes)",
        default=30,
        description="The longest one download of an export file may take, whole: a host that sends its "
        "file slower than that (a byte now and then, or without end) fails the window. "
        "`request_timeout_seconds` bounds each silence, this the whole download.",
    ),
    th.Property(
        "rate_limit_reserve",
        th.IntegerType,
        title="Rate limit reserve",
        description="Requests of the company's rate limit (shared by all its integrations) the tap leaves "
        "to the others: it waits rather than take `X-AircallApi-Remaining` below this, or below what the "
        "others are seen to spend before the reset. Default: a fifth of `X-AircallApi-Limit`. 0 spends it all.",
    ),
    th.Property(
        "max_requests_per_minute",
        th.IntegerType,
        title="Max requests per minute",
        description="Most API requests the tap sends in any 60 seconds, whatever the headers allow. "
        "Default: no cap but the reserve.",
    ),
    th.Property(
        "plan_only",
        th.BooleanType,
        title="Plan only",
        default=False,
        description="Print which windows each selected stream would export, and the API calls that "
        "takes, then stop: nothing is exported and the state does not move.",
    ),
    th.Property(
        "check_schema",
        th.BooleanType,
        title="Check schema",
        default=False,
        description="Export one day of each selected report and report how its CSV header differs "
        "from the catalogue (new, missing, renamed columns), then stop. Exits 1 on differences.",
    ),
    th.Property(
        "column_types",
        title="Column types",
        wrapped=th.ObjectType(
            additional_properties=th.ArrayType(
                th.ObjectType(
                    th.Property(
                        "label", th.StringType, required=True, description="The column's label in the CSV header."
                    ),
                    th.Property(
                        "name", th.StringType, description="The property it fills (default: the label in snake_case)."
                    ),
                    th.Property("type", th.StringType, required=True, allowed_values=sorted(KIND_NAMES)),
                    th.Property("key", th.BooleanType, description="Part of the primary key (extra reports only)."),
                    th.Property(
                        "format",
                        th.StringType,
                        description="How a timestamp or date column is written, strptime-style, when no reader "
                        "can tell alone (e.g. %d/%m/%Y %H:%M); wall-clock times are in the account timezone.",
                    ),
                    th.Property(
                        "unit",
                        th.StringType,
                        allowed_values=sorted({*DURATION_UNITS, *TIMESTAMP_UNITS}),
                        description="The unit of a duration column written as a number (default seconds), or of "
                        "a timestamp column of Unix times whose number of digits does not tell (seconds, "
                        "milliseconds, microseconds).",
                    ),
                    th.Property(
                        "decimal",
                        th.StringType,
                        allowed_values=list(DECIMAL_MARKS),
                        description="The decimal mark of a number, percent or duration column (default '.').",
                    ),
                )
            )
        ),
        description='Columns to type without a new release, per stream: `{"calls_history": [{"label": '
        '"Queue", "type": "string"}]}`. A declared column becomes a typed property; one whose label '
        "or name is in the catalogue replaces that column. Types: " + ", ".join(sorted(KIND_NAMES)) + ". "
        "`check_schema` prints this setting for the columns it finds.",
    ),
    th.Property(
        "extra_reports",
        th.ArrayType(th.StringType),
        title="Extra reports",
        description="Report names the catalogue does not know (the API's `reportName`), each synced "
        "as one more stream: its columns arrive as text in `_extra_columns`, or typed through "
        "`column_types`. No primary key unless declared there.",
    ),
    th.Property(
        "strict_values",
        th.BooleanType,
        title="Strict values",
        default=False,
        description="Fail the run on a cell that does not parse as its column's type (naming the row, "
        "column and value). By default the property is null and the raw text goes to "
        "`_unparsed_values`.",
    ),
    _ids("user_ids", "users", "User IDs"),
    _ids("team_ids", "teams", "Team IDs"),
    _ids("line_ids", "lines (Aircall numbers)", "Line IDs"),
    _ids("tag_ids", "tags", "Tag IDs"),
    # --- Request filters and options, as the API names them ---------------------------
    th.Property(
        "filters",
        th.ObjectType(additional_properties=True),
        title="Filters",
        description="Filters sent in every export request's `input.filter`, as the API names them: "
        + ", ".join(FILTER_SHAPES)
        + '. Arrays take a list even for one value (`{"teamIDs": [4242], "withVoicemail": false}`). '
        "Over the user_ids, team_ids, line_ids and tag_ids shortcuts; an unknown key is sent as given, "
        "with one warning.",
    ),
    th.Property(
        "stream_filters",
        th.ObjectType(additional_properties=th.ObjectType(additional_properties=True)),
        title="Filters per stream",
        description="Filters per stream name, over `filters` key by key (null leaves a key of `filters` out "
        'for that stream): `{"calls_history": {"callTypes": ["inbound"]}}`.',
    ),
    th.Property(
        "report_options",
        th.ObjectType(additional_properties=True),
        title="Report options",
        description="Options sent in every export request's `input.options`: "
        + ", ".join(OPTION_SHAPES)
        + ". Over the tap's own `dateBreakdown: DAILY` of the per-user-per-day reports (whose `Date` "
        "column needs it).",
    ),
    th.Property(
        "stream_report_options",
        th.ObjectType(additional_properties=th.ObjectType(additional_properties=True)),
        title="Report options per stream",
        description="Report options per stream name, over `report_options` key by key.",
    ),
    # --- Discovery from the account ------------------------------------------------------
    th.Property(
        "discover_columns",
        th.BooleanType,
        title="Discover columns",
        default=False,
        description="Build each stream's schema from the account: --discover exports one recent day of "
        "each report and types the columns its file holds (known ones matched whatever their spelling, "
        "new ones typed by the tap's readers), so new columns load typed instead of in `_extra_columns`. "
        "Cached in `discovery_cache_file`; on failure the built-in catalogue is used, with one warning.",
    ),
    th.Property(
        "discovery_cache_hours",
        th.NumberType,
        title="Discovery cache hours",
        default=24,
        description="How long --discover reuses the columns it discovered (no request) before exporting "
        "again. A sync always reads the cached columns, the ones its catalog was made from.",
    ),
    th.Property(
        "discovery_cache_file",
        th.StringType,
        title="Discovery cache file",
        description="The file discovered columns are kept in, with the requests that found them "
        "(default: tap-aircall-analytics/discovered-columns.json in XDG_CACHE_HOME or ~/.cache).",
    ),
    th.Property(
        "export_name",
        th.StringType,
        title="Export name",
        description="A label sent as `exportOptions.exportName` with every export, as the Aircall dashboard shows it.",
    ),
).to_dict()


#: A report name as the API spells them; it becomes a stream name, and part of file names.
REPORT_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,99}")
MAX_WINDOW_DAYS = 366  # the longest window a setting may ask for
MAX_LOOKBACK_DAYS = 3660  # the longest lookback (ten years)
MAX_DAYS_AHEAD = 366  # start_date and end_date at most this many days after today
DAY_SECONDS = 86_400.0  # the longest wait or timeout a setting may ask for
MAX_CONCURRENT_EXPORTS = 100  # each export in flight is a thread of the run


def catalogue(config: dict) -> tuple[Report, ...]:
    """The reports this run knows: the catalogue, the `extra_reports`, the `column_types`.

    Read at discovery too, so it needs no credentials; raises ConfigError on a mistake.
    """
    reports = list(REPORTS)
    known = {report.api_name for report in reports}
    for name in config.get("extra_reports") or ():
        if not isinstance(name, str) or not REPORT_NAME.fullmatch(name.strip().upper()):
            raise ConfigError(
                f"extra_reports holds {str(name)[:80]!r}: give report names such as USER_ACTIVITY_CALLS_HANDLED "
                "(letters, digits and underscores)"
            )
        name = name.strip().upper()
        if name not in known:
            known.add(name)
            reports.append(uncatalogued_report(name))
    declared = config.get("column_types") or {}
    if not isinstance(declared, dict):
        raise ConfigError('column_types must be an object: {"<stream>": [{"label": "...", "type": "..."}]}')
    by_stream = {report.stream_name: report for report in reports}
    unknown = sorted(set(declared) - set(by_stream))
    if unknown:
        raise ConfigError(
            f"column_types names the stream '{unknown[0]}', which is neither a catalogued report nor in extra_reports"
        )
    for stream, entries in declared.items():
        columns, keys = _declared_columns(stream, entries)
        try:
            by_stream[stream] = with_declared_columns(by_stream[stream], columns, keys)
        except CatalogueError as error:
            raise ConfigError(f"column_types: {error}") from None
    return tuple(by_stream.values())


def _declared_columns(stream: str, entries: object) -> tuple[tuple[Column, ...], tuple[str, ...]]:
    if not isinstance(entries, list):
        raise ConfigError(f'column_types.{stream} must be a list of {{"label": ..., "type": ...}} objects')
    columns, keys = [], []
    for entry in entries:
        if not isinstance(entry, dict) or not str(entry.get("label") or "").strip():
            raise ConfigError(f"column_types.{stream}: every entry needs a label, not {entry!r}")
        label = str(entry["label"])
        kind = KIND_NAMES.get(str(entry.get("type", "")).strip().lower())
        if kind is None:
            raise ConfigError(
                f"column_types.{stream}: '{label}' has type {entry.get('type')!r}; use one of "
                f"{', '.join(sorted(KIND_NAMES))}"
            )
        name = str(entry.get("name") or property_name(label))
        if property_name(name) != name:
            raise ConfigError(
                f"column_types.{stream}: name {name!r} of '{label}' is not a property name; use {property_name(name)!r}"
            )
        columns.append(Column(label, kind, name, *_spelling(stream, label, kind, entry)))
        if entry.get("key"):
            keys.append(name)
    return tuple(columns), tuple(keys)


def credential_texts(config: dict) -> tuple[str, ...]:
    """Every text that gives the API credential away: the tokens, and the Basic value made of them."""
    texts = [str(config.get(name) or "") for name in ("api_token", "access_token")]
    if config.get("api_id") and config.get("api_token"):
        texts.append(_basic(config))
    return tuple(texts)


def _basic(config: dict) -> str:
    return base64.b64encode(f"{config['api_id']}:{config['api_token']}".encode()).decode()


def _spelling(stream: str, label: str, kind: Kind, entry: dict) -> tuple[str, str, str]:
    """The declared format, unit and decimal mark of a column_types entry, checked against its type."""
    where = f"column_types.{stream}: '{label}'"
    format_text = str(entry.get("format") or "")
    if format_text and (mistake := format_mistake(kind, format_text)):
        raise ConfigError(f"{where}: {mistake}")
    unit = str(entry.get("unit") or "")
    units = TIMESTAMP_UNITS if kind is Kind.TIMESTAMP else DURATION_UNITS
    if unit and kind not in (Kind.DURATION, Kind.TIMESTAMP):
        raise ConfigError(f"{where}: a unit applies to duration and timestamp columns, not {kind.value}")
    if unit and unit not in units:
        raise ConfigError(f"{where}: unit {unit!r} of a {kind.value} column is not one of {', '.join(units)}")
    if unit and format_text:
        raise ConfigError(f"{where}: give a format or a unit, not both")
    decimal = str(entry.get("decimal") or "")
    if decimal and kind not in (Kind.NUMBER, Kind.PERCENT, Kind.DURATION):
        raise ConfigError(f"{where}: a decimal mark applies to number, percent and duration columns")
    if decimal and decimal not in DECIMAL_MARKS:
        raise ConfigError(f"{where}: decimal {decimal!r} is not '.' or ','")
    return format_text, unit, decimal


NUMBER_SETTINGS = tuple(name for name, schema in SETTINGS_SCHEMA["properties"].items() if "number" in schema["type"])


def _day(config: dict, name: str) -> dt.date | None:
    value = config.get(name)
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ConfigError(f"{name} '{value}' is not a date: use YYYY-MM-DD") from None


def _positive(config: dict, name: str, *, allow_zero: bool = False, most: float = math.inf) -> float:
    """A number setting: finite (nan and inf, which the environment can give, are refused), within its bounds."""
    given = config.get(name, SETTINGS_SCHEMA["properties"][name].get("default", 0))
    try:
        value = float(given) if not isinstance(given, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {str(given)[:40]!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be {'zero or more' if allow_zero else 'more than zero'}, not {value:g}")
    if value > most:
        raise ConfigError(f"{name} must be at most {most:g}, not {value:g}")
    return value


def _count(config: dict, name: str, *, allow_zero: bool = False, most: float = math.inf) -> int | None:
    """An optional whole number of `name`: None when unset."""
    if config.get(name) in (None, ""):
        return None
    value = _positive(config, name, allow_zero=allow_zero, most=most)
    if value != int(value):
        raise ConfigError(f"{name} must be a whole number, not {value:g}")
    return int(value)


def _api_url(config: dict) -> str:
    """The API's base URL: an http(s) URL with a host."""
    url = str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"api_url must be an http:// or https:// URL with a host, not {url[:80]!r}")
    return url


def _stream_window_days(config: dict) -> dict[str, int]:
    given = config.get("stream_window_days") or {}
    if not isinstance(given, dict):
        raise ConfigError('stream_window_days must be an object: {"<stream>": <days>}')
    streams = {report.stream_name for report in catalogue(config)}
    windows = {}
    for stream, days in given.items():
        if stream not in streams:
            raise ConfigError(f"stream_window_days names the stream '{stream}', which is not a stream of this tap")
        try:
            count = float(days) if isinstance(days, (int, float, str)) and not isinstance(days, bool) else 0.0
        except (ValueError, OverflowError):
            count = 0.0
        if not 1 <= count <= MAX_WINDOW_DAYS or count != int(count):
            raise ConfigError(
                f"stream_window_days.{stream} must be a whole number of days, from 1 to {MAX_WINDOW_DAYS}, "
                f"not {str(days)[:40]!r}"
            )
        windows[stream] = int(count)
    return windows


@dataclass(frozen=True)
class Settings:
    """Checked settings, read once before any request."""

    authorization: str  # "Basic ..." or "Bearer ..."; kept out of repr below
    api_url: str
    start_date: dt.date
    end_date: dt.date | None
    timezone: str
    window_days: int | None  # None: each report's own
    lookback_days: int
    max_concurrent_exports: int
    max_disk_mb: float
    max_unzipped_mb: float
    poll_interval_seconds: float
    max_poll_interval_seconds: float
    export_timeout_seconds: float
    request_timeout_seconds: float
    download_timeout_seconds: float
    discovery_cache_seconds: float  # how long discovered columns are reused without a request
    filters: dict[str, list[int]]
    column_types: dict[str, list[dict]] = field(default_factory=dict)  # as the user gave them
    stream_window_days: dict[str, int] = field(default_factory=dict)
    rate_limit_reserve: int | None = None  # None: a fifth of the limit the API reports
    max_requests_per_minute: int | None = None
    strict_values: bool = False
    plan_only: bool = False
    check_schema: bool = False
    request: RequestSettings = field(default_factory=lambda: RequestSettings())

    @override
    def __repr__(self) -> str:
        return f"Settings(api_url={self.api_url!r}, timezone={self.timezone!r}, start_date={self.start_date})"

    def window_days_for(self, report: Report) -> int:
        """Days per export of `report`: its `stream_window_days`, else `window_days`, else its own."""
        return self.stream_window_days.get(report.stream_name) or self.window_days or report.window_days

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The account timezone."""
        return zoneinfo.ZoneInfo(self.timezone)

    def today(self) -> dt.date:
        """Today in the account timezone: the first day that is not over."""
        return clock.today(self.zone)

    def last_day(self) -> dt.date:
        """The last day to export: `end_date`, or today."""
        return self.end_date or self.today()

    @classmethod
    def from_config(cls, config: dict) -> Settings:
        """Check the settings and return them typed; raise ConfigError on the first problem."""
        has_key = bool(config.get("api_id") or config.get("api_token"))
        if has_key and config.get("access_token"):
            raise ConfigError("set either api_id and api_token, or access_token, not both")
        if config.get("access_token"):
            authorization = f"Bearer {config['access_token']}"
        elif config.get("api_id") and config.get("api_token"):
            authorization = f"Basic {_basic(config)}"
        elif has_key:
            missing = "api_token" if config.get("api_id") else "api_id"
            raise ConfigError(f"{missing} is missing: Basic authentication needs both api_id and api_token")
        else:
            raise ConfigError("no credentials: set api_id and api_token (or access_token)")

        timezone = config.get("timezone") or "UTC"
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone '{timezone}' is not an IANA timezone name (e.g. Europe/Paris)") from None
        try:
            clock.today(zone)  # a mistyped injected today stops the run here, in one line
        except ClockError as error:
            raise ConfigError(str(error)) from None

        start_date = _day(config, "start_date")
        if start_date is None:
            raise ConfigError("start_date is missing: set the first day to export (YYYY-MM-DD)")
        end_date = _day(config, "end_date")
        latest = clock.today(zone) + dt.timedelta(days=MAX_DAYS_AHEAD)
        for name, day in (("start_date", start_date), ("end_date", end_date)):
            if day is not None and day > latest:
                raise ConfigError(f"{name} {day} is more than {MAX_DAYS_AHEAD} days after today: no export can hold it")
        if end_date is not None and end_date < start_date:
            raise ConfigError(f"end_date {end_date} is before start_date {start_date}")

        poll = _positive(config, "poll_interval_seconds", most=DAY_SECONDS)
        max_poll = _positive(config, "max_poll_interval_seconds", most=DAY_SECONDS)
        if max_poll < poll:
            raise ConfigError(f"max_poll_interval_seconds ({max_poll:g}) is less than poll_interval_seconds ({poll:g})")
        if config.get("plan_only") and config.get("check_schema"):
            raise ConfigError("plan_only and check_schema are two different runs: set one of them")
        return cls(
            authorization=authorization,
            api_url=_api_url(config),
            start_date=start_date,
            end_date=end_date,
            timezone=timezone,
            window_days=_count(config, "window_days", most=MAX_WINDOW_DAYS),
            lookback_days=int(_positive(config, "lookback_days", allow_zero=True, most=MAX_LOOKBACK_DAYS)),
            max_concurrent_exports=int(_positive(config, "max_concurrent_exports", most=MAX_CONCURRENT_EXPORTS)),
            max_disk_mb=_positive(config, "max_disk_mb"),
            max_unzipped_mb=_positive(config, "max_unzipped_mb"),
            poll_interval_seconds=poll,
            max_poll_interval_seconds=max_poll,
            export_timeout_seconds=_positive(config, "export_timeout_minutes", most=DAY_SECONDS / 60) * 60,
            request_timeout_seconds=_positive(config, "request_timeout_seconds", most=DAY_SECONDS),
            download_timeout_seconds=_positive(config, "download_timeout_minutes", most=DAY_SECONDS / 60) * 60,
            discovery_cache_seconds=_positive(config, "discovery_cache_hours", allow_zero=True) * 3600,
            filters={key: list(config[name]) for name, key in FILTER_SETTINGS.items() if config.get(name)},
            column_types=dict(config.get("column_types") or {}),
            stream_window_days=_stream_window_days(config),
            rate_limit_reserve=_count(config, "rate_limit_reserve", allow_zero=True),
            max_requests_per_minute=_count(config, "max_requests_per_minute"),
            strict_values=bool(config.get("strict_values")),
            plan_only=bool(config.get("plan_only")),
            check_schema=bool(config.get("check_schema")),
            request=RequestSettings.from_config(config),
        )


# --- Request filters and options ----------------------------------------------------------


@dataclass(frozen=True)
class RequestSettings:
    """The filters, report options and export name of every stream's export requests, checked."""

    filters: dict[str, object] = field(default_factory=dict)
    stream_filters: dict[str, dict[str, object]] = field(default_factory=dict)
    options: dict[str, object] = field(default_factory=dict)
    stream_options: dict[str, dict[str, object]] = field(default_factory=dict)
    export_name: str = ""
    warnings: tuple[str, ...] = ()  # unknown keys, sent as given: said once per run

    def filters_for(self, stream: str) -> dict[str, object]:
        """The filters of `stream`'s requests: `filters`, then its `stream_filters` (None: left out)."""
        return {**self.filters, **self.stream_filters.get(stream, {})}

    def options_for(self, stream: str) -> dict[str, object]:
        """The report options of `stream`'s requests: `report_options`, then its `stream_report_options`."""
        return {**self.options, **self.stream_options.get(stream, {})}

    @classmethod
    def from_config(cls, config: dict) -> RequestSettings:
        """Check shapes against the API's documented keys; ConfigError in one line on a mistake."""
        streams = {report.stream_name for report in catalogue(config)}
        unknown: list[tuple[str, str]] = []
        filters = _request_object(config, "filters", FILTER_SHAPES, unknown)
        options = _request_object(config, "report_options", OPTION_SHAPES, unknown)
        stream_filters = _per_stream(config, "stream_filters", FILTER_SHAPES, streams, unknown)
        stream_options = _per_stream(config, "stream_report_options", OPTION_SHAPES, streams, unknown)
        name = config.get("export_name")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"export_name must be a text, not {name!r}")
        if name and len(name) > EXPORT_NAME_MAX:
            raise ConfigError(f"export_name is {len(name)} characters long: give at most {EXPORT_NAME_MAX}")
        keys = ", ".join(dict.fromkeys(f"{where}.{key}" for where, key in unknown))
        warnings = (
            (
                f"keys the API does not document are sent as given: {keys} (documented filters: "
                f"{', '.join(FILTER_SHAPES)}; report options: {', '.join(OPTION_SHAPES)})",
            )
            if unknown
            else ()
        )
        return cls(filters, stream_filters, options, stream_options, str(name or ""), warnings)


def _request_object(
    config: dict, name: str, shapes: dict[str, ValueShape], unknown: list[tuple[str, str]], given: object = None
) -> dict[str, object]:
    value = config.get(name) if given is None else given
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be an object of the API's keys, not {value!r}")
    for key, item in value.items():
        if key in RESERVED_FILTERS and shapes is FILTER_SHAPES:
            raise ConfigError(f"{name}.{key}: the tap sets {key} itself (from its windows and timezone); remove it")
        if (mistake := shape_mistake(key, item, shapes)) is not None:
            raise ConfigError(f"{name}.{mistake}")
        if key not in shapes:
            unknown.append((name, key))
    return dict(value)


def _per_stream(
    config: dict, name: str, shapes: dict[str, ValueShape], streams: set[str], unknown: list[tuple[str, str]]
) -> dict[str, dict[str, object]]:
    given = config.get(name) or {}
    if not isinstance(given, dict):
        raise ConfigError(f'{name} must be an object: {{"<stream>": {{...}}}}')
    for stream in given:
        if stream not in streams:
            raise ConfigError(f"{name} names the stream '{stream}', which is not a stream of this tap")
    return {
        stream: _request_object(config, f"{name}.{stream}", shapes, unknown, given={} if value is None else value)
        for stream, value in given.items()
    }
