"""What each column kind accepts: every spelling of a timestamp, a duration, a boolean, a number.

One table, read by `records.py` (Python readers, RECORD mode), by `batch_sql.py` (DuckDB
expressions, BATCH mode) and by `preflight.py` (which names the spelling it detects). A
spelling is one row: the regular expression a cell must match (written in the part of the
syntax that Python's `re` and DuckDB's RE2 read alike: ASCII classes, no look-around), the
Python function and the SQL expression that read a matching cell from the same capture
groups, and for the two spellings files usually hold, quicker SQL for their usual shape.

The patterns of one kind never overlap, so a cell has one reading whichever spelling its
column was first read with: a column's reader is chosen once, from its first values, and a
cell in another spelling is read by that spelling's row, never lost.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing as t
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field

from tap_aircall_analytics.config.catalogue import LIST_SEPARATOR, Column, Kind

CACHE_LIMIT = 1 << 14  # entries per cache: a few MB at most, cleared when full
SAMPLE_VALUES = 20  # the first non-empty values of a column that its spelling is chosen from

#: The units a duration column written as a number can declare, as seconds per unit.
DURATION_UNITS = {"milliseconds": (1, 1000), "seconds": (1, 1), "minutes": (60, 1), "hours": (3600, 1)}
DECIMAL_MARKS = (".", ",")
#: The units a Unix timestamp column can declare, as microseconds per unit. Undeclared, the
#: number of digits decides: 9-10 are seconds, 12-13 milliseconds, 15-16 microseconds (the
#: years 1973 to 2286 in each); a column of other lengths needs its unit declared.
TIMESTAMP_UNITS = {"seconds": 1_000_000, "milliseconds": 1000, "microseconds": 1}
EPOCH_LIMIT_MICROSECONDS = 10**17  # a declared unit reads Unix times below this: 11 digits of seconds


#: A column's reader (see column_reader): a function of a cell, or a Memo of them.
Reader = Callable[[str], object] | dict[str, object]


class BadValue(ValueError):
    """A field that cannot be read as its column's type; the message says what was expected."""


@dataclass(frozen=True)
class ColumnType:
    """A column's type as its cells are read: its kind, the account timezone, and what a
    declaration adds (the `column_types` setting: a strptime format, a unit, a decimal mark)."""

    kind: Kind
    timezone: str = "UTC"
    format: str = ""  # a declared strptime format (timestamps, dates)
    unit: str = "seconds"  # the unit of a duration written as a number
    decimal: str = "."  # the decimal mark of numbers, percentages and durations
    epoch: str = ""  # the declared unit of a Unix timestamp column (TIMESTAMP_UNITS), whatever its digits

    @classmethod
    def of(cls, column: Column, timezone: str) -> ColumnType:
        """The type of a catalogue (or declared) column in an account's timezone."""
        if column.kind is Kind.TIMESTAMP:
            return cls(column.kind, timezone, column.format, epoch=column.unit)
        return cls(column.kind, timezone, column.format, column.unit or "seconds", column.decimal or ".")

    @property
    def expected(self) -> str:
        """What a cell of this column should look like, for messages."""
        if self.format:
            return f"a {self.kind.value} ({self.format})"
        if self.epoch:
            return f"a timestamp (YYYY-MM-DD HH:MM:SS, ISO 8601 or Unix {self.epoch})"
        return EXPECTED[self.kind]


EXPECTED = {
    Kind.INTEGER: "an integer",
    Kind.NUMBER: "a number",
    Kind.STRING: "a text",
    Kind.TIMESTAMP: "a timestamp (YYYY-MM-DD HH:MM:SS, ISO 8601 or Unix seconds, milliseconds or microseconds)",
    Kind.DATE: "a date (YYYY-MM-DD)",
    Kind.DURATION: "a duration (H:MM:SS or seconds)",
    Kind.BOOLEAN: "a boolean (Yes/No, true/false, 1/0)",
    Kind.PERCENT: "a percentage (12.5% or 12.5)",
    Kind.LIST: "a list",
}


class SqlCell(t.Protocol):
    """What a spelling's SQL is written against: one cell of a DuckDB query."""

    @property
    def field(self) -> str:
        """The SQL of the cell's text."""
        ...

    @property
    def column_type(self) -> ColumnType:
        """How the cell's column is read."""
        ...

    def group(self, index: int) -> str:
        """The SQL of the text of capture group `index` ('' when it did not match)."""
        ...

    def to_utc(self, local: str) -> str:
        """The SQL of the UTC TIMESTAMP of a wall-clock TIMESTAMP in the account timezone."""
        ...


@dataclass(frozen=True)
class Spelling:
    """One way of writing a value of one kind, read alike by Python and by DuckDB.

    `read` gets the pattern's match; `sql` the same groups. Values are the JSON value in
    Python, and in SQL a BIGINT, DOUBLE, BOOLEAN, DATE or TIMESTAMP (UTC, no zone); either
    is NULL/BadValue when the cell matches but means nothing (a 30 February).
    `quick`, for the spellings Aircall's files use, is the pattern of the cells' usual shape and
    SQL that reads a cell of that shape with no capture groups (the same value; half the work
    of converting a file in BATCH mode).
    """

    kind: Kind
    name: str
    pattern: str
    read: Callable[[re.Match[str], ColumnType], object]
    sql: Callable[[SqlCell], str]
    quick: tuple[str, Callable[[SqlCell], str]] | None = None
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.pattern))

    def value(self, text: str, column_type: ColumnType) -> object:
        """The value of `text` in this spelling; BadValue if it is not one."""
        match = self.compiled.fullmatch(text)
        if match is None:
            raise BadValue(column_type.expected)
        return self.read(match, column_type)

    def describe(self, column_type: ColumnType) -> str:
        """The spelling's name as check_schema prints it."""
        if self.name == WALL_CLOCK:
            return f"{WALL_CLOCK} in {column_type.timezone}"
        if self.name == NUMBER_OF_UNITS:
            return f"{column_type.unit}" + (" (decimal comma)" if column_type.decimal == "," else "")
        return self.name


# --- Shared parts -------------------------------------------------------------------------

_DATE = r"([12][0-9]{3}-[01][0-9]-[0-3][0-9])"
_MINUTE = r"([01][0-9]|2[0-3]):([0-5][0-9])"
_SECONDS = r"(?::([0-5][0-9])(?:[.,]([0-9]{1,9}))?)?"
_LOCAL = _DATE + "[ T]" + _MINUTE + _SECONDS  # groups 1-5: date, hour, minute, second, fraction
_UTC_SUFFIX = r"(?:Z| ?UTC)"
_OFFSET = r" ?([+-])([01][0-9]|2[0-3]):?([0-5][0-9])"  # groups 6-8: sign, hours, minutes
_EPOCH = dt.datetime(1970, 1, 1)


def _micro(fraction: str) -> int:
    """Microseconds of a fraction of a second's digits (beyond six: cut, as DuckDB does)."""
    return int((fraction + "000000")[:6])


def _sql_micro(fraction: str) -> str:
    return f"CAST(rpad(substr({fraction}, 1, 6), 6, '0') AS BIGINT)"


def _wall_clock(match: re.Match[str]) -> dt.datetime:
    """The wall-clock time of groups 1-5; BadValue if no such time exists (a 30 February)."""
    date, hour, minute, second, fraction = match.group(1, 2, 3, 4, 5)
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise BadValue("a timestamp with a real date") from None
    return dt.datetime(day.year, day.month, day.day, int(hour), int(minute), int(second or 0), _micro(fraction or ""))


def _sql_wall_clock(cell: SqlCell) -> str:
    whole = f"TRY_CAST({cell.group(1)} || ' ' || {cell.group(2)} || ':' || {cell.group(3)} || ':' || "
    whole += f"CASE WHEN {cell.group(4)} = '' THEN '00' ELSE {cell.group(4)} END AS TIMESTAMP)"
    return f"({whole} + to_microseconds({_sql_micro(cell.group(5))}))"


def utc_text(moment: dt.datetime) -> str:
    """RFC 3339 text of a UTC time without zone: 2026-07-01T08:00:05+00:00 (micro only if any)."""
    return moment.isoformat() + "+00:00"


class Zone:
    """Wall-clock times of one timezone to UTC: the first occurrence of a repeated hour, fold=0."""

    def __init__(self, timezone: str) -> None:
        self._zone = zoneinfo.ZoneInfo(timezone)

    def to_utc(self, local: dt.datetime) -> dt.datetime:
        offset = local.replace(tzinfo=self._zone, fold=0).utcoffset() or dt.timedelta()
        if offset.seconds % 60:
            raise BadValue("a timestamp in a zone with whole-minute offsets")
        return local - offset


class Memo(dict):
    """A bounded memo of a converter, for values that repeat (durations, booleans, dates).

    A dict whose missing key is converted (or raises BadValue) once: the compiled row
    reader of `records.py` looks a value up with one subscript, no call.
    """

    def __init__(self, convert: Callable[[str], object]) -> None:
        super().__init__()
        self.convert = convert

    def __call__(self, text: str) -> object:
        return self[text]

    def __missing__(self, text: str) -> object:
        value = self.convert(text)
        if len(self) > CACHE_LIMIT:
            self.clear()
        self[text] = value
        return value


def wall_clock_reader(column_type: ColumnType, utc: bool) -> Callable[[str], str | None]:
    """Wall-clock timestamps, whole columns of them: each minute converted once, seconds carried over.

    `minutes` maps the first 16 characters (`2026-11-27 18:47`) to the UTC minute, `rests`
    what follows (`:56`, `:56.250`) to the end of the UTC text. Together they check the
    whole pattern of the spelling, so a cell of another spelling raises BadValue.
    """
    zone = Zone("UTC" if utc else column_type.timezone)
    minute_pattern = re.compile(_DATE + "[ T]" + _MINUTE)
    rest_pattern = re.compile(_SECONDS + (_UTC_SUFFIX if utc else ""))

    def minute(text: str) -> str:
        if minute_pattern.fullmatch(text) is None:
            raise BadValue(EXPECTED[Kind.TIMESTAMP])
        try:
            local = dt.datetime.fromisoformat(text)
        except ValueError:
            raise BadValue("a timestamp with a real date") from None
        return zone.to_utc(local).isoformat(timespec="minutes")

    def rest(text: str) -> str:
        match = rest_pattern.fullmatch(text)
        if match is None:
            raise BadValue(EXPECTED[Kind.TIMESTAMP])
        second, fraction = match.group(1, 2)
        micro = _micro(fraction or "")
        return f":{second or '00'}" + (f".{micro:06d}" if micro else "") + "+00:00"

    minutes, rests = Memo(minute), Memo(rest)

    return lambda text: minutes[text[:16]] + rests[text[16:]] if text else None


def _local_timestamp(match: re.Match[str], column_type: ColumnType) -> str:
    return utc_text(Zone(column_type.timezone).to_utc(_wall_clock(match)))


def _utc_timestamp(match: re.Match[str], column_type: ColumnType) -> str:
    return utc_text(_wall_clock(match))


def _offset_timestamp(match: re.Match[str], column_type: ColumnType) -> str:
    sign, hours, minutes = match.group(6, 7, 8)
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
    return utc_text(_wall_clock(match) - (offset if sign == "+" else -offset))


def _sql_offset_timestamp(cell: SqlCell) -> str:
    seconds = f"(CAST({cell.group(7)} AS BIGINT) * 3600 + CAST({cell.group(8)} AS BIGINT) * 60)"
    signed = f"(CASE WHEN {cell.group(6)} = '-' THEN -{seconds} ELSE {seconds} END)"
    return f"({_sql_wall_clock(cell)} - to_seconds({signed}))"


def _epoch_timestamp(per_unit: int) -> Callable[[re.Match[str], ColumnType], str]:
    """The reader of a Unix time in a unit of `per_unit` microseconds (groups: units, fraction)."""

    def read(match: re.Match[str], column_type: ColumnType) -> str:
        units, fraction = match.group(1, 2)
        micro = int(units) * per_unit + _micro(fraction or "") * per_unit // 1_000_000
        return utc_text(_EPOCH + dt.timedelta(microseconds=micro))

    return read


def _sql_epoch_timestamp(per_unit: int) -> Callable[[SqlCell], str]:
    def sql(cell: SqlCell) -> str:
        fraction = f"{_sql_micro(cell.group(2))} * {per_unit} // 1000000"
        return f"make_timestamp(CAST({cell.group(1)} AS BIGINT) * {per_unit} + {fraction})"

    return sql


def _formatted(match: re.Match[str], column_type: ColumnType) -> object:
    try:
        moment = dt.datetime.strptime(match.group(0), column_type.format)
    except ValueError:
        raise BadValue(column_type.expected) from None
    if column_type.kind is Kind.DATE:
        return moment.date().isoformat()
    return utc_text(Zone(column_type.timezone).to_utc(moment))


def _sql_formatted(cell: SqlCell) -> str:
    parsed = f"try_strptime({cell.field}, {_sql_literal(cell.column_type.format)})"
    if cell.column_type.kind is Kind.DATE:
        return f"CAST({parsed} AS DATE)"
    return cell.to_utc(parsed)


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- Durations, numbers, booleans, dates ----------------------------------------------------


def _half_up(units: int, fraction: str, column_type: ColumnType) -> int:
    """Whole seconds of `units` and a fraction of one unit, a half second rounded up."""
    numerator, denominator = DURATION_UNITS[column_type.unit]
    millionths = (units * 1_000_000 + _micro(fraction)) * numerator
    return (millionths + denominator * 500_000) // (denominator * 1_000_000)


def _sql_half_up(units: str, fraction: str, numerator: int, denominator: int) -> str:
    millionths = f"((CAST({units} AS HUGEINT) * 1000000 + {_sql_micro(fraction)}) * {numerator})"
    return f"CAST(({millionths} + {denominator * 500_000}) // {denominator * 1_000_000} AS BIGINT)"


def _clock_duration(match: re.Match[str], column_type: ColumnType) -> int:
    hours, minutes, seconds, fraction = match.group(1, 2, 3, 4)
    whole = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return _half_up(whole, fraction or "", ColumnType(Kind.DURATION))


def _sql_clock_duration(cell: SqlCell) -> str:
    whole = (
        f"(CAST({cell.group(1)} AS BIGINT) * 3600 + CAST({cell.group(2)} AS BIGINT) * 60 + "
        f"CAST({cell.group(3)} AS BIGINT))"
    )
    return _sql_half_up(whole, cell.group(4), 1, 1)


def _quick_clock_duration(cell: SqlCell) -> str:  # H:MM:SS (up to 999 hours): DuckDB's interval, exactly
    return f"CAST(epoch(CAST({cell.field} AS INTERVAL)) AS BIGINT)"


def _unit_duration(match: re.Match[str], column_type: ColumnType) -> int:
    return _half_up(int(match.group(1)), match.group(2) or "", column_type)


def _sql_unit_duration(cell: SqlCell) -> str:
    numerator, denominator = DURATION_UNITS[cell.column_type.unit]
    return _sql_half_up(cell.group(1), cell.group(2), numerator, denominator)


def _integer(match: re.Match[str], column_type: ColumnType) -> int:
    return int(match.group(1))


def _number(match: re.Match[str], column_type: ColumnType) -> float:
    value = float(match.group(1))
    if value in (float("inf"), float("-inf")):
        raise BadValue("a finite number")
    return value


def _sql_number(cell: SqlCell) -> str:
    number = f"TRY_CAST({cell.group(1)} AS DOUBLE)"
    return f"CASE WHEN isfinite({number}) THEN {number} END"


def _date(match: re.Match[str], column_type: ColumnType) -> str:
    try:
        return dt.date.fromisoformat(match.group(1)).isoformat()
    except ValueError:
        raise BadValue("a real date") from None


def _any_case(word: str) -> str:
    """A pattern of `word` in any case, ASCII letters only (no Unicode case folding)."""
    return "".join(f"[{letter.upper()}{letter.lower()}]" if letter.isalpha() else letter for letter in word)


def _boolean(true: str, false: str) -> Spelling:
    words = {true.lower(): True, false.lower(): False}
    return Spelling(
        Kind.BOOLEAN,
        f"{true}/{false}",
        f"({_any_case(true)}|{_any_case(false)})",
        lambda match, column_type: words[match.group(1).lower()],
        lambda cell: f"lower({cell.field}) = '{true.lower()}'",  # the pattern's one group is the whole cell
    )


WALL_CLOCK = "wall clock"
NUMBER_OF_UNITS = "number of units"

LOCAL_TIMESTAMP: Spelling = Spelling(
    Kind.TIMESTAMP,
    WALL_CLOCK,
    _LOCAL,
    _local_timestamp,
    lambda cell: cell.to_utc(_sql_wall_clock(cell)),
    quick=(_DATE + "[ T]" + _MINUTE + ":[0-5][0-9]", lambda cell: cell.to_utc(f"TRY_CAST({cell.field} AS TIMESTAMP)")),
)
UTC_TIMESTAMP: Spelling = Spelling(
    Kind.TIMESTAMP,
    "ISO 8601 UTC",
    _LOCAL + _UTC_SUFFIX,
    _utc_timestamp,
    _sql_wall_clock,
)
OFFSET_TIMESTAMP = Spelling(
    Kind.TIMESTAMP, "ISO 8601 with a UTC offset", _LOCAL + _OFFSET, _offset_timestamp, _sql_offset_timestamp
)
UNIX_TIMESTAMP = Spelling(
    Kind.TIMESTAMP,
    "Unix seconds",
    r"([0-9]{9,10})(?:\.([0-9]{1,9}))?",
    _epoch_timestamp(1_000_000),
    _sql_epoch_timestamp(1_000_000),
)


def _whole_units(name: str, shortest: int, longest: int, per_unit: int) -> Spelling:
    """Unix times of `shortest` to `longest` digits in a unit of `per_unit` microseconds, no fraction."""
    return Spelling(
        Kind.TIMESTAMP,
        name,
        rf"([0-9]{{{shortest},{longest}}})()",
        _epoch_timestamp(per_unit),
        _sql_epoch_timestamp(per_unit),
    )


UNIX_MILLISECONDS = _whole_units("Unix milliseconds", 12, 13, 1000)
UNIX_MICROSECONDS = _whole_units("Unix microseconds", 15, 16, 1)
CLOCK_DURATION: Spelling = Spelling(
    Kind.DURATION,
    "H:MM:SS",
    r"([0-9]{1,9}):([0-5][0-9]):([0-5][0-9])(?:[.,]([0-9]{1,9}))?",
    _clock_duration,
    _sql_clock_duration,
    quick=(r"[0-9]{1,3}:[0-5][0-9]:[0-5][0-9]", _quick_clock_duration),
)
UNIT_DURATION: Spelling = Spelling(
    Kind.DURATION,
    NUMBER_OF_UNITS,
    r"([0-9]{1,12})(?:\.([0-9]{1,9}))?",
    _unit_duration,
    _sql_unit_duration,
)
INTEGER = Spelling(
    Kind.INTEGER,
    "integer",
    r"(-?[0-9]{1,18})(?:\.0+)?",
    _integer,
    lambda cell: f"TRY_CAST(split_part({cell.field}, '.', 1) AS BIGINT)",  # group 1: what comes before a '.'
)
_NUMBER = r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?)"
NUMBER = Spelling(Kind.NUMBER, "number", _NUMBER, _number, _sql_number)
PERCENT = Spelling(Kind.PERCENT, "number, % or not", _NUMBER + r"(?: ?%)?", _number, _sql_number)
DATE: Spelling = Spelling(
    Kind.DATE,
    "YYYY-MM-DD",
    _DATE + r"(?:[ T]00:00(?::00(?:[.,]0{1,9})?)?" + _UTC_SUFFIX + "?)?",
    _date,
    lambda cell: f"TRY_CAST({cell.group(1)} AS DATE)",
)
#: The pattern of each strptime code a declared format may use.
FORMAT_PATTERNS = {
    "Y": "[12][0-9]{3}",
    "y": "[0-9]{2}",
    "m": "[01]?[0-9]",
    "d": "[0-3]?[0-9]",
    "H": "[0-2]?[0-9]",
    "I": "[01]?[0-9]",
    "M": "[0-5][0-9]",
    "S": "[0-5][0-9]",
    "f": "[0-9]{1,6}",
    "p": "(?:AM|PM|am|pm)",
    "b": "[A-Za-z]{3}",
    "B": "[A-Za-z]{3,9}",
    "%": "%",
}


@functools.lru_cache(maxsize=64)
def formatted(format_text: str) -> Spelling:
    """The spelling of a declared strptime format: its cells match the codes' patterns exactly.

    The pattern keeps out what Python's strptime and DuckDB's read differently (spaces
    around the value, a two-digit year for %Y).
    """
    pattern = "".join(
        FORMAT_PATTERNS[piece[1]] if piece.startswith("%") else re.escape(piece)
        for piece in re.findall(r"%.|[^%]+", format_text)
    )
    return Spelling(Kind.TIMESTAMP, f"format {format_text}", f"({pattern})", _formatted, _sql_formatted)


#: Every spelling a kind reads without a declaration, the one Aircall's files use first.
SPELLINGS: dict[Kind, tuple[Spelling, ...]] = {
    Kind.TIMESTAMP: (
        LOCAL_TIMESTAMP,
        UTC_TIMESTAMP,
        OFFSET_TIMESTAMP,
        UNIX_TIMESTAMP,
        UNIX_MILLISECONDS,
        UNIX_MICROSECONDS,
    ),
    Kind.DURATION: (CLOCK_DURATION, UNIT_DURATION),
    Kind.BOOLEAN: (
        _boolean("Yes", "No"),
        _boolean("true", "false"),
        _boolean("1", "0"),
        _boolean("Y", "N"),
        _boolean("T", "F"),
        _boolean("on", "off"),
    ),
    Kind.DATE: (DATE,),
    Kind.INTEGER: (INTEGER,),
    Kind.NUMBER: (NUMBER,),
    Kind.PERCENT: (PERCENT,),
}


def spellings_of(column_type: ColumnType) -> tuple[Spelling, ...]:
    """The spellings a column reads: a declared format alone, else every spelling of its kind."""
    if column_type.format:
        return (formatted(column_type.format),)
    if column_type.kind is Kind.TIMESTAMP and column_type.epoch:
        return (LOCAL_TIMESTAMP, UTC_TIMESTAMP, OFFSET_TIMESTAMP, declared_epoch(column_type.epoch))
    return SPELLINGS.get(column_type.kind, ())


@functools.lru_cache(maxsize=8)
def declared_epoch(unit: str) -> Spelling:
    """The spelling of Unix times in a declared unit: any number of digits, a fraction of a unit or not."""
    per_unit = TIMESTAMP_UNITS[unit]
    longest = len(str(EPOCH_LIMIT_MICROSECONDS // per_unit)) - 1  # up to the year 5138 in any unit
    return Spelling(
        Kind.TIMESTAMP,
        f"Unix {unit}",
        rf"([0-9]{{1,{longest}}})(?:\.([0-9]{{1,9}}))?",
        _epoch_timestamp(per_unit),
        _sql_epoch_timestamp(per_unit),
    )


def detect(column_type: ColumnType, values: t.Iterable[str]) -> Spelling | None:
    """The spelling most of a column's first non-empty values are in (None: no value, or none read)."""
    candidates = spellings_of(column_type)
    counts = dict.fromkeys(candidates, 0)
    for text in values:
        text = normal(text, column_type)
        for spelling in candidates:
            if spelling.compiled.fullmatch(text):
                counts[spelling] += 1
                break
    best = max(candidates, key=lambda spelling: counts[spelling], default=None)
    return best if best is not None and counts[best] else None


def normal(text: str, column_type: ColumnType) -> str:
    """A cell as its spellings see it: with a declared decimal comma, the comma is the point."""
    return text.replace(",", ".") if column_type.decimal == "," else text


def read_list(text: str) -> list[str]:
    """The non-empty items of a list cell, trimmed: `vip, sales` -> ["vip", "sales"]."""
    return [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]


def read(text: str, column_type: ColumnType) -> object:
    """The value of a cell, in whichever spelling of its column it is (None if empty); BadValue if none."""
    if not text:
        return None
    if column_type.kind is Kind.STRING:
        return text
    if column_type.kind is Kind.LIST:
        return read_list(text)
    text = normal(text, column_type)
    for spelling in spellings_of(column_type):
        match = spelling.compiled.fullmatch(text)
        if match is not None:
            return spelling.read(match, column_type)
    raise BadValue(column_type.expected)


def column_reader(column_type: ColumnType, sample: t.Iterable[str]) -> Reader:
    """The reader of a whole column's cells (None for an empty one), chosen from its first values.

    Values that repeat (durations, booleans, dates, user IDs) are converted once and then
    looked up; a column of wall-clock timestamps converts each minute once; plain digits
    read as an integer directly. Any cell is read as `read` reads it, in its own spelling,
    so choosing from a sample changes speed, never values.
    """
    if column_type.kind is Kind.STRING:
        return lambda text: text or None
    if column_type.kind is Kind.LIST:  # a new list for each cell
        return lambda text: read_list(text) if text else None
    values = list(sample)
    spelling = detect(column_type, values)
    if spelling in (LOCAL_TIMESTAMP, UTC_TIMESTAMP) and column_type.decimal == ".":
        return wall_clock_reader(column_type, utc=spelling is UTC_TIMESTAMP)
    if column_type.kind in (Kind.DURATION, Kind.BOOLEAN, Kind.DATE) or len(set(values)) * 2 < len(values):
        return Memo(lambda text: read(text, column_type))
    if column_type.kind is Kind.INTEGER and column_type.decimal == ".":
        return lambda text: (
            int(text) if text.isdigit() and text.isascii() and len(text) < 19 else read(text, column_type)
        )
    return lambda text: read(text, column_type)


def format_mistake(kind: Kind, format_text: str) -> str | None:
    """Why a declared `format` cannot be used for a column of `kind`, or None when it can."""
    if kind not in (Kind.TIMESTAMP, Kind.DATE):
        return f"a format applies to timestamp and date columns, not {kind.value}"
    codes = re.findall(r"%(.?)", format_text)
    unknown = sorted(set(codes) - set(FORMAT_PATTERNS))
    if unknown:
        return f"format {format_text!r} uses %{unknown[0]}; use only " + " ".join(
            f"%{code}" for code in sorted(FORMAT_PATTERNS)
        )
    if not {"Y", "y"} & set(codes) or ("m" not in codes and not {"b", "B"} & set(codes)) or "d" not in codes:
        return f"format {format_text!r} needs a year, a month and a day (e.g. %d/%m/%Y %H:%M)"
    sample = dt.datetime(2026, 11, 27, 18 if kind is Kind.TIMESTAMP else 0, 47 if kind is Kind.TIMESTAMP else 0)
    try:
        dt.datetime.strptime(sample.strftime(format_text), format_text)
    except ValueError as error:
        return f"format {format_text!r} does not read back what it writes ({error})"
    return None
