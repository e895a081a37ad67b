"""The DuckDB SQL that converts one export file: pure functions of a report and a header.

Each cell is read by the SQL of the spelling table (`spellings.py`) that `records.py`
reads it with too, so a JSON-lines batch holds exactly the records RECORD mode would
emit, and a Parquet batch the same values with native types. Nothing here touches a file
or a DuckDB session: that is `batches.py`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.catalogue import LIST_SEPARATOR, Column, Kind, Report
from tap_aircall_analytics.config.spellings import ColumnType, Spelling
from tap_aircall_analytics.files.records import EXTRA_COLUMNS, RAW_PROPERTIES, UNPARSED_VALUES, HeaderMatch
from tap_aircall_analytics.planning.windows import Window

#: (wall-clock start, UTC offset in seconds) pairs; the first start is None (since ever).
Offsets = list[tuple[dt.datetime | None, int]]


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def quoted(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def unparsed_counter(index: int) -> str:
    """The sequence that counts the bad cells of file column `index`."""
    return f"unparsed_c{index}"


def utc_offsets(timezone: str, window: Window) -> Offsets:
    """The UTC offsets (seconds) in force over the window, as (wall-clock start, offset) pairs.

    A wall time reads with the offset before a change until the later of the two
    clocks reaches the change: that is the first occurrence of a repeated hour, and the
    earlier offset in a skipped one, exactly as `zoneinfo` with fold=0 reads it.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    moment = dt.datetime.combine(window.first - dt.timedelta(days=2), dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(window.last + dt.timedelta(days=3), dt.time(), dt.timezone.utc)
    offset = moment.astimezone(zone).utcoffset() or dt.timedelta()
    changes: Offsets = [(None, int(offset.total_seconds()))]
    step = dt.timedelta(minutes=15)
    while moment < end:
        following = (moment + step).astimezone(zone).utcoffset() or dt.timedelta()
        if following != offset:
            wall = (moment + step).replace(tzinfo=None) + max(offset, following)
            changes.append((wall, int(following.total_seconds())))
            offset = following
        moment += step
    return changes


@dataclass(frozen=True)
class BatchSql:
    """The conversion queries of one report's selected properties, for one batch format."""

    report: Report
    selected: list[str]
    timezone: str  # the account's: wall-clock times are read in it
    json_lines: bool  # True: values as the text RECORD mode emits; False: native Parquet types
    strict: bool = False  # a bad cell stops the run instead of being kept as text

    def lenient_columns(self, match: HeaderMatch | None) -> list[tuple[int, Column]]:
        """The columns whose bad cells are kept as text (not keys, not text already, not strict)."""
        if match is None or self.strict:
            return []
        return [
            (index, column)
            for index, column in match.positions
            if column.kind not in (Kind.STRING, Kind.LIST)
            and column.name not in self.report.primary_key
            and column.name in self.selected
        ]

    def empty_select(self) -> str:
        """A query of no rows with the stream's columns: the batch of a file without a header."""
        return f"SELECT {', '.join(f'{self._null(name)} AS {quoted(name)}' for name in self.selected)} LIMIT 0"

    def select(self, source: str, match: HeaderMatch, offsets: Offsets, primaries: dict[str, Spelling | None]) -> str:
        """Convert in an inner query (each cell once), assemble the record in the outer one.

        `source` is the table function that reads the file, its cells as text named c0, c1, …;
        `primaries` holds the spelling of each column's first values (spellings.detect).
        """
        lenient = {index for index, _ in self.lenient_columns(match)}
        converted = [
            f"{self._expression(column, f'c{index}', offsets, index in lenient, primaries.get(column.name))} "
            f"AS v{index}"
            for index, column in match.positions
            if column.name in self.selected
        ]
        inner = f"SELECT *, {', '.join(converted)} FROM {source}" if converted else f"SELECT * FROM {source}"
        positions = {column.name: index for index, column in match.positions}
        fields = []
        for name in self.selected:
            if name == EXTRA_COLUMNS:
                expression = self._extra_columns(match)
            elif name == UNPARSED_VALUES:
                expression = self._unparsed_values(match, lenient)
            elif name in positions:
                expression = self._output(self.report.column(name), f"v{positions[name]}")
            else:
                expression = self._null(name)
            fields.append(f"{expression} AS {quoted(name)}")
        return f"SELECT {', '.join(fields)} FROM ({inner})"

    def _null(self, name: str) -> str:
        if name in RAW_PROPERTIES:
            return "CAST(NULL AS MAP(VARCHAR, VARCHAR))"
        return f"CAST(NULL AS {self._sql_type(self.report.column(name))})"

    def _extra_columns(self, match: HeaderMatch) -> str:
        """The unknown columns as a map of label to text (an empty cell stays an empty text)."""
        if not match.extras:
            return self._null(EXTRA_COLUMNS)
        labels = ", ".join(sql_text(label) for _, label in match.extras)
        values = ", ".join(f"coalesce(c{index}, '')" for index, _ in match.extras)
        return f"map([{labels}], [{values}])"

    def _unparsed_values(self, match: HeaderMatch, lenient: set[int]) -> str:
        """The cells that did not convert, as a map of property to text, each one counted.

        The map is built, and its cells counted, only for the rare rows that hold one.
        """
        failed = {index: f"(c{index} <> '' AND v{index} IS NULL)" for index, _ in match.positions if index in lenient}
        if not failed:
            return self._null(UNPARSED_VALUES)
        entries = ", ".join(
            f"CASE WHEN {failed[index]} THEN [{{'k': {sql_text(column.name)}, 'v': CASE WHEN "
            f"nextval('{unparsed_counter(index)}') > 0 THEN c{index} END}}] ELSE [] END"
            for index, column in match.positions
            if index in failed
        )  # lists joined with flatten, not filtered with a lambda: lambda syntax differs in DuckDB 1 and 2
        return f"CASE WHEN {' OR '.join(failed.values())} THEN map_from_entries(flatten([{entries}])) END"

    def _sql_type(self, column: Column) -> str:
        return {
            Kind.INTEGER: "BIGINT",
            Kind.NUMBER: "DOUBLE",
            Kind.STRING: "VARCHAR",
            Kind.DURATION: "BIGINT",
            Kind.BOOLEAN: "BOOLEAN",
            Kind.PERCENT: "DOUBLE",
            Kind.LIST: "VARCHAR[]",
            Kind.TIMESTAMP: "VARCHAR" if self.json_lines else "TIMESTAMPTZ",
            Kind.DATE: "VARCHAR" if self.json_lines else "DATE",
        }[column.kind]

    def _expression(self, column: Column, field: str, offsets: Offsets, lenient: bool, primary: Spelling | None) -> str:
        """SQL for one column: the same value as records.py reads, NULL when empty.

        A bad cell is NULL when `lenient`, else an error naming the column and the value.
        """
        label = column.label.replace("'", "''")
        column_type = ColumnType.of(column, self.timezone)
        value = cell_value(field, column_type, offsets, primary)
        if not lenient and column.kind not in (Kind.STRING, Kind.LIST):
            expected = column_type.expected.replace("'", "''")
            value = f"coalesce({value}, error('column ''{label}'': ' || {field} || ' is not {expected}'))"
        if column.name in self.report.primary_key:
            present = f"{field} IS NOT NULL AND {field} <> ''"
            return f"CASE WHEN {present} THEN {value} ELSE error('column ''{label}'': key column is empty') END"
        return f"CASE WHEN {field} IS NULL OR {field} = '' THEN NULL ELSE {value} END"

    def _output(self, column: Column, value: str) -> str:
        """A converted value as the batch holds it: the text RECORD mode emits, or a Parquet type."""
        if column.kind is Kind.TIMESTAMP:
            if not self.json_lines:
                return f"CAST({value} AS TIMESTAMPTZ)"
            return (  # 2026-07-01T08:00:05+00:00, microseconds only when there are some
                f"CASE WHEN microsecond({value}) % 1000000 = 0 THEN replace(CAST({value} AS VARCHAR), ' ', 'T') "
                f"ELSE strftime({value}, '%Y-%m-%dT%H:%M:%S.%f') END || '+00:00'"
            )
        if column.kind is Kind.DATE and self.json_lines:
            return f"CAST({value} AS VARCHAR)"
        return value


@dataclass(frozen=True)
class _Cell:
    """One cell as a spelling's SQL sees it (see spellings.SqlCell)."""

    field: str
    column_type: ColumnType
    pattern: str
    offsets: Offsets

    def group(self, index: int) -> str:
        return f"regexp_extract({self.field}, {sql_text('^(?:' + self.pattern + ')$')}, {index})"

    def to_utc(self, local: str) -> str:
        """Wall-clock time to UTC with the offset in force then (see utc_offsets)."""
        cases = " ".join(
            f"WHEN {local} >= TIMESTAMP '{start.isoformat(' ')}' THEN {seconds}"
            for start, seconds in reversed(self.offsets[1:])
            if start is not None
        )
        offset = f"(CASE {cases} ELSE {self.offsets[0][1]} END)" if cases else str(self.offsets[0][1])
        return f"({local} - to_seconds({offset}))"


def cell_value(field: str, column_type: ColumnType, offsets: Offsets, primary: Spelling | None) -> str:
    """SQL of a non-empty cell's value in whichever spelling of its column it is; NULL if in none.

    The spelling the column's first values are in is tried first, its quick SQL first of all.
    """
    if column_type.kind is Kind.STRING:
        return field
    if column_type.kind is Kind.LIST:  # the non-empty items between separators, trimmed
        item = f"[^{LIST_SEPARATOR}\\s](?:[^{LIST_SEPARATOR}]*[^{LIST_SEPARATOR}\\s])?"
        return f"regexp_extract_all({field}, '{item}')"
    text = f"replace({field}, ',', '.')" if column_type.decimal == "," else field
    candidates = spellings.spellings_of(column_type)
    ordered = sorted(candidates, key=lambda spelling: spelling is not primary)
    branches = []
    if primary is not None and primary.quick is not None:
        shape, quick = primary.quick
        branches.append(
            f"WHEN regexp_full_match({text}, {sql_text(shape)}) THEN {quick(_Cell(text, column_type, shape, offsets))}"
        )
    for spelling in ordered:
        cell = _Cell(text, column_type, spelling.pattern, offsets)
        branches.append(f"WHEN regexp_full_match({text}, {sql_text(spelling.pattern)}) THEN {spelling.sql(cell)}")
    return f"(CASE {' '.join(branches)} END)"
