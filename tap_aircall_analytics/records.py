"""Export files to typed records.

Columns are matched by label, whatever their order; each gets one converter, chosen
once from the header, that turns its text into the exact JSON type the schema
declares. Files are read as a stream from disk (zipped or not, with or without a BOM),
never whole into memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import typing as t
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import spellings
from tap_aircall_analytics.reports import Column, Kind, Report, label_key
from tap_aircall_analytics.spellings import BadValue, Memo, Reading, WallClockReader

READ_BUFFER = 1 << 20
csv.field_size_limit(1 << 24)

JSON_TYPES: dict[Kind, dict] = {
    Kind.INTEGER: {"type": ["integer", "null"]},
    Kind.NUMBER: {"type": ["number", "null"]},
    Kind.STRING: {"type": ["string", "null"]},
    Kind.TIMESTAMP: {"type": ["string", "null"], "format": "date-time"},
    Kind.DATE: {"type": ["string", "null"], "format": "date"},
    Kind.DURATION: {"type": ["integer", "null"], "description": "seconds"},
    Kind.BOOLEAN: {"type": ["boolean", "null"]},
    Kind.PERCENT: {"type": ["number", "null"], "description": "percent (12.5 means 12.5%)"},
    Kind.LIST: {"type": ["array", "null"], "items": {"type": "string"}},
}

#: Columns of a file that the catalogue does not know: label -> text exactly as in the CSV.
EXTRA_COLUMNS = "_extra_columns"
#: Cells that did not parse as their column's type: property -> text exactly as in the CSV.
UNPARSED_VALUES = "_unparsed_values"
_TEXT_BY_NAME = {"type": ["object", "null"], "additionalProperties": {"type": "string"}}
RAW_PROPERTIES: dict[str, dict] = {
    EXTRA_COLUMNS: {
        **_TEXT_BY_NAME,
        "description": "Columns of the export that the tap's catalogue does not "
        "know, by CSV label, as text (see the column_types setting to type them).",
    },
    UNPARSED_VALUES: {
        **_TEXT_BY_NAME,
        "description": "Cells that did not parse as their column's type, by property, as text; that property is null.",
    },
}


def json_schema(report: Report) -> dict:
    """The stream schema of a report: one property per column, then the raw-text properties.

    Key columns are never null.
    """
    properties = {}
    for column in report.columns:
        schema = {**JSON_TYPES[column.kind], "type": list(JSON_TYPES[column.kind]["type"])}
        if column.name in report.primary_key:
            schema["type"].remove("null")
        properties[column.name] = schema
    properties.update(RAW_PROPERTIES)
    return {"type": "object", "properties": properties, "required": list(report.primary_key)}


#: The kinds a column's sample is tried as, most specific first (a list is never guessed):
#: an integer before a boolean (a column of 0 and 1 counts), a number before a percentage.
INFERRED_KINDS = (Kind.INTEGER, Kind.NUMBER, Kind.BOOLEAN, Kind.PERCENT, Kind.DURATION, Kind.DATE, Kind.TIMESTAMP)
SAMPLE_ROWS = 100  # the first rows of a file that each column's spelling is chosen from


def infer_kind(values: list[str]) -> Kind:
    """The first kind that reads every non-empty value of a sample; STRING when none does."""
    present = [value for value in values if value]
    for kind in INFERRED_KINDS if present else ():
        reading = Reading(kind)
        try:
            for value in present:
                spellings.read(value, reading)
        except BadValue:
            continue
        return kind
    return Kind.STRING


@dataclass(frozen=True)
class HeaderMatch:
    """How a file's header lines up with the catalogue."""

    positions: tuple[tuple[int, Column], ...]  # file position -> column, for the known columns
    extras: tuple[tuple[int, str], ...]  # file position -> label, for the columns the catalogue does not know
    missing: tuple[Column, ...]  # catalogue columns the file lacks
    header: tuple[str, ...] = ()
    repeated: tuple[tuple[str, Column], ...] = ()  # extras whose label matches a column matched before

    @property
    def unknown(self) -> tuple[str, ...]:
        """The labels the catalogue does not know, in file order."""
        return tuple(label for _, label in self.extras)

    @property
    def respelled(self) -> tuple[tuple[str, Column], ...]:
        """The known columns whose header is spelled otherwise than the catalogue's label."""
        return tuple(
            (self.header[index], column) for index, column in self.positions if self.header[index] != column.label
        )

    @classmethod
    def of(cls, report: Report, header: list[str]) -> HeaderMatch:
        """Match a header row to the report's columns by identity: `call_id` and `callId` are `Call ID`.

        The first header that matches a column fills it; a later one is kept as an extra
        column (under its own label, or `Label (2)` when that label was taken).
        """
        by_label = {label_key(column.label): column for column in report.columns}
        matched: dict[str, Column] = {}
        positions: list[tuple[int, Column]] = []
        extras: list[tuple[int, str]] = []
        repeated: list[tuple[str, Column]] = []
        for index, label in enumerate(header):
            key = label_key(label)
            column = by_label.pop(key, None)
            if column is not None:
                matched[key] = column
                positions.append((index, column))
                continue
            taken = {known.label for _, known in positions} | {extra for _, extra in extras}
            unique, copy = label, 1
            while unique in taken:
                copy += 1
                unique = f"{label} ({copy})"
            extras.append((index, unique))
            if key in matched:
                repeated.append((unique, matched[key]))
        return cls(tuple(positions), tuple(extras), tuple(by_label.values()), tuple(header), tuple(repeated))


@dataclass(frozen=True)
class FilePart:
    """Bytes [start, end) of a plain export file, starting at a row."""

    start: int
    end: int | None
    lines_before: int  # line endings before `start`: row numbers in messages stay the file's
    header: list[str] | None  # None: the part starts with the header row


class FileFormatError(ValueError):
    """An export file that cannot be read; the message names the row and column."""


class _ByteRange(io.RawIOBase):
    """Bytes [start, end) of a file, read as a stream of their own."""

    def __init__(self, path: Path, start: int, end: int | None) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this stream
        self._file.seek(start)
        self._left = (end - start) if end is not None else None

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: t.Any) -> int:
        view = memoryview(buffer)
        if self._left is not None:
            view = view[: self._left]
        count = self._file.readinto(view) or 0
        if self._left is not None:
            self._left -= count
        return count

    @override
    def close(self) -> None:
        self._file.close()
        super().close()


@contextmanager
def open_text(path: Path, zipped: bool, start: int = 0, end: int | None = None) -> Iterator[io.TextIOBase]:
    """Open an export file as text: unzipped if need be, BOM dropped, newlines kept for csv.

    `start` and `end` read a byte range of a plain file (a range starting at a row).
    """
    if not zipped:
        encoding = "utf-8-sig" if start == 0 else "utf-8"
        with io.TextIOWrapper(
            io.BufferedReader(_ByteRange(path, start, end), READ_BUFFER), encoding=encoding, newline=""
        ) as handle:
            yield handle
        return
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise FileFormatError(f"the zip archive holds {len(members)} files, not one CSV")
        with archive.open(members[0]) as binary:
            member = t.cast(io.RawIOBase, binary)  # a zip member reads like a raw stream
            yield io.TextIOWrapper(io.BufferedReader(member, READ_BUFFER), encoding="utf-8-sig", newline="")


def _empty_key() -> None:
    raise BadValue("a key: it is empty")


def _row_function(
    match: HeaderMatch, converters: dict[str, Callable[[str], object]], keys: tuple[str, ...]
) -> Callable[[list[str]], dict]:
    """Compile the function that turns one CSV row into a record, for one header.

    Written out as a single dict display (no loop; no call for a text, an integer, a
    value seen before or a timestamp in a minute seen before), it reads a row several
    times faster than a generic loop; this is the hot path of every export. A cell not in
    its column's usual spelling, a bad value or an empty key raises; `RecordReader._lenient`
    reads such a row again, cell by cell.
    """
    scope: dict[str, object] = {"empty_key": _empty_key}
    fields = []
    for index, column in match.positions:
        convert = converters[column.name]
        scope[f"convert_{index}"] = convert
        empty = "empty_key()" if column.name in keys else "None"  # an empty key cell goes to the careful path
        if column.kind is Kind.STRING:
            value = f"row[{index}] or {empty}"
        elif column.kind is Kind.INTEGER:  # plain digits inline; a sign or a '.0' through the spelling table
            value = (
                f"(int(v) if v.isdigit() and v.isascii() and len(v) < 19 else convert_{index}(v)) "
                f"if (v := row[{index}]) else {empty}"
            )
        elif isinstance(convert, WallClockReader):  # a known minute costs a lookup, no call
            scope[f"minute_{index}"] = convert.minutes.get
            scope[f"convert_{index}"] = convert.convert_minute
            scope[f"rests_{index}"] = convert.rests.cache
            scope[f"rest_{index}"] = convert.rests
            value = (
                f"(minute_{index}(v[:16]) or convert_{index}(v)) + "
                f"(rests_{index}[r] if (r := v[16:]) in rests_{index} else rest_{index}(r)) "
                f"if (v := row[{index}]) else {empty}"
            )
        elif isinstance(convert, Memo):  # a value seen before costs a lookup, no call
            scope[f"cache_{index}"] = convert.cache
            value = (
                f"(cache_{index}[v] if v in cache_{index} else convert_{index}(v)) if (v := row[{index}]) else {empty}"
            )
        else:
            value = f"convert_{index}(v) if (v := row[{index}]) else {empty}"
        fields.append(f"{column.name!r}: {value}")
    fields += [f"{column.name!r}: None" for column in match.missing]
    extras = ", ".join(f"{label!r}: row[{index}]" for index, label in match.extras)
    fields.append(f"{EXTRA_COLUMNS!r}: " + (f"{{{extras}}}" if extras else "None"))
    fields.append(f"{UNPARSED_VALUES!r}: None")
    source = "def row_to_record(row):\n    return {" + ", ".join(fields) + "}\n"
    exec(compile(source, "<row_to_record>", "exec"), scope)
    return scope["row_to_record"]  # type: ignore[return-value]


class RecordReader:
    """Reads one report's export files into typed records.

    A cell that does not parse as its column's type is kept: its property is null, its
    text goes to `_unparsed_values`, and it is counted per column. With `strict`, it
    stops the run instead. A key cell must always parse.
    """

    def __init__(self, report: Report, timezone: str, warn: Callable[[str], None], *, strict: bool = False) -> None:
        self.report = report
        self.timezone = timezone
        self.strict = strict
        self.unparsed: Counter[str] = Counter()  # column label -> cells kept as text this run
        self.examples: dict[str, str] = {}  # column label -> where its first such cell was, for the warning
        self._warn = warn
        self._warned: set[str] = set()

    def read(
        self,
        path: Path,
        *,
        zipped: bool = False,
        where: str = "",
        part: FilePart | None = None,
    ) -> Iterator[dict]:
        """Yield the records of one file, or of one `part` of it. `where` names the file in error messages."""
        where = where or path.name
        start, end = (part.start, part.end) if part else (0, None)
        with open_text(path, zipped, start, end) as handle:
            reader = csv.reader(handle, strict=True)
            try:
                header = part.header if part and part.header is not None else next(reader)
            except StopIteration:
                return  # an empty file: no header, no rows
            lines_before = part.lines_before if part else 0
            match = self.match(header)
            width = len(header)
            head: list[tuple[list[str], int]] = []  # the first rows, that each column's spelling is chosen from
            try:
                for row in reader:
                    head.append((row, reader.line_num))
                    if len(head) == SAMPLE_ROWS:
                        break
                readings = self.readings(match)
                converters = {
                    name: spellings.column_reader(
                        reading, (row[index] for row, _ in head if len(row) == width and row[index])
                    )
                    for (index, _), (name, reading) in zip(match.positions, readings.items())
                }
                row_to_record = _row_function(match, converters, self.report.primary_key)
                for row, line in itertools.chain(head, ((row, reader.line_num) for row in reader)):
                    if len(row) != width:
                        if row == [] or row == [""]:
                            continue
                        raise FileFormatError(
                            f"row {lines_before + line} has {len(row)} fields; the header has {width}"
                        )
                    try:
                        record = row_to_record(row)
                    except (BadValue, ValueError, KeyError, TypeError):
                        record = self._lenient(row, match, readings, lines_before + line)
                    yield record
            except (FileFormatError, csv.Error, UnicodeDecodeError) as error:
                raise FileFormatError(f"{self.report.stream_name} {where}: {error}") from None

    def readings(self, match: HeaderMatch) -> dict[str, Reading]:
        """How each known column of a file is read, by property, in file order."""
        return {column.name: Reading.of(column, self.timezone) for _, column in match.positions}

    def _lenient(self, row: list[str], match: HeaderMatch, readings: dict[str, Reading], line: int) -> dict:
        """Read a row cell by cell, each in its own spelling: null and raw text for a bad cell,
        or an error when strict or a key."""
        record: dict = {}
        unparsed: dict[str, str] = {}
        for index, column in match.positions:
            text = row[index]
            try:
                record[column.name] = spellings.read(text, readings[column.name]) if text else None
            except BadValue as expected:
                if self.strict or column.name in self.report.primary_key:
                    self._explain(row, match, line)
                record[column.name] = None
                unparsed[column.name] = text
                self.count_unparsed(column, example=f" ({text!r} in row {line} is not {expected})")
        record.update({column.name: None for column in match.missing})
        record[EXTRA_COLUMNS] = {label: row[index] for index, label in match.extras} or None
        record[UNPARSED_VALUES] = unparsed or None
        if any(record[key] is None for key in self.report.primary_key):
            self._explain(row, match, line)
        return record

    def count_unparsed(self, column: Column, count: int = 1, example: str = "") -> None:
        """Count cells of `column` kept as text; warn the first time in this run."""
        first = not self.unparsed[column.label]
        self.unparsed[column.label] += count
        self.examples.setdefault(column.label, example)
        if first:
            self._warn(
                f"{self.report.stream_name}: column '{column.label}' holds values that do not parse as "
                f"{column.kind.value}{example}; they are loaded as null with their text in "
                f"{UNPARSED_VALUES}.{column.name} (set strict_values to stop the run instead)"
            )

    def _explain(self, row: list[str], match: HeaderMatch, line: int) -> None:
        """Raise FileFormatError naming the first field of `row` that cannot be read."""
        for index, column in match.positions:
            text = row[index]
            if not text:
                if column.name in self.report.primary_key:
                    raise FileFormatError(f"row {line}, column '{column.label}': key column is empty")
                continue
            try:
                spellings.read(text, Reading.of(column, self.timezone))
            except BadValue as expected:
                hint = (
                    ""
                    if column.name not in self.report.primary_key
                    else " (a key column: declare another type for it in column_types, e.g. string, to load it)"
                )
                raise FileFormatError(
                    f"row {line}, column '{column.label}': {text!r} is not {expected}{hint}"
                ) from None

    def match(self, header: list[str]) -> HeaderMatch:
        """Match a file's header to the catalogue; warn once per run of unknown or missing columns."""
        match = HeaderMatch.of(self.report, header)
        for label, column in match.repeated:
            self._warn_once(
                f"{self.report.stream_name}: column '{label}' matches '{column.label}' like a column before it; "
                f"the first is read into {column.name}, this one is kept as text in {EXTRA_COLUMNS}"
            )
        twice = {label for label, _ in match.repeated}
        new = [label for label in match.unknown if f"extra:{label}" not in self._warned and label not in twice]
        if new:
            self._warned.update(f"extra:{label}" for label in new)
            names = ", ".join(f"'{label}'" for label in new)
            self._warn(
                f"{self.report.stream_name}: column(s) {names} are not in the catalogue; they are loaded as "
                f"text in {EXTRA_COLUMNS} (run with check_schema to get the column_types setting that "
                "types them)"
            )
        for column in match.missing:
            if column.name in self.report.primary_key:
                raise FileFormatError(
                    f"{self.report.stream_name}: the file has no '{column.label}' column, "
                    "which is part of the primary key"
                )
            self._warn_once(
                f"column '{column.label}' of {self.report.api_name} is missing from the file; "
                f"{column.name} is emitted as null"
            )
        return match

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)
