"""Export files to typed records.

Columns are matched by label, whatever their order; each gets one converter, chosen
once from the header, that turns its text into the exact JSON type the schema
declares. Files are read as a stream from disk (zipped or not, with or without a BOM),
never whole into memory; a zip member is decompressed a buffer at a time and counted as
it comes, so a file that expands without end stops at a bound instead of filling memory.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import io
import itertools
import json
import operator
import struct
import typing as t
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.catalogue import Column, Kind, Report, label_key
from tap_aircall_analytics.config.spellings import BadValue, ColumnType, Reader

READ_BUFFER = 1 << 20
MAX_FIELD_BYTES = 1 << 24  # the longest cell read (16 MiB): a longer one is an error, not a memory hog
csv.field_size_limit(MAX_FIELD_BYTES)
#: The longest row read, in characters, whatever its shape (one line, or many in quoted cells): a
#: longest cell and the others around it. A longer one is an error: a row of 1 GB of commas would be
#: a list of a billion cells.
MAX_ROW_CHARS = MAX_FIELD_BYTES + (2 << 20)
MAX_COLUMNS = 10_000  # the most columns a header may have (Aircall's reports have a few dozen)
SAMPLE_CHARS = 4 << 20  # the first rows held to choose readers stop here, even before SAMPLE_ROWS
QUOTED_CELL = 80  # the most characters of a cell a message quotes
MAX_NAMED = 20  # the most column labels a message names
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive starts with a member or, empty, with its end

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
        column_type = ColumnType(kind)
        try:
            for value in present:
                spellings.read(value, column_type)
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
        taken: set[str] = set()  # the labels given so far, as kept
        copies: dict[str, int] = {}  # label -> the last copy number tried for it: never tried again
        for index, label in enumerate(header):
            key = label_key(label)
            column = by_label.pop(key, None)
            if column is not None:
                matched[key] = column
                positions.append((index, column))
                taken.add(column.label)
                continue
            unique, copy = label, copies.get(label, 1)
            if unique in taken:
                copy += 1
                unique = f"{label} ({copy})"
                while unique in taken:
                    copy += 1
                    unique = f"{label} ({copy})"
                copies[label] = copy
            extras.append((index, unique))
            taken.add(unique)
            if key in matched:
                repeated.append((unique, matched[key]))
        return cls(tuple(positions), tuple(extras), tuple(by_label.values()), tuple(header), tuple(repeated))


class FileFormatError(ValueError):
    """An export file that cannot be read; the message names the row and column."""


class UnzipLimitError(FileFormatError):
    """A zip member that expands past the bound set for it."""


def quote_cell(text: str) -> str:
    """A cell as a message quotes it: its first QUOTED_CELL characters, and its length when it is longer."""
    if len(text) <= QUOTED_CELL:
        return repr(text)
    return f"{text[:QUOTED_CELL]!r}... ({len(text):,} characters)"


class RowFeed:
    """The lines of a text file for csv.reader, each row's characters counted: past MAX_ROW_CHARS, an error.

    csv.reader holds a row whole, however many lines and cells it spans; the reader resets
    `chars` after each row. A line is read at most MAX_ROW_CHARS + 1 characters at a time,
    so no line is held whole past the bound either.
    """

    def __init__(self, text: io.TextIOBase, limit: int = MAX_ROW_CHARS) -> None:
        self._readline = text.readline
        self.limit = limit
        self.chars = 0  # of the row being read

    def __iter__(self) -> RowFeed:
        return self

    def __next__(self) -> str:
        line = self._readline(self.limit + 1)
        if not line:
            raise StopIteration
        self.chars += len(line)
        if self.chars > self.limit:
            raise FileFormatError(f"a row is longer than {self.limit >> 20} MiB, the most the tap reads")
        return line


def sample(rows: Iterator[list[str]], feed: RowFeed) -> tuple[list[list[str]], list[int]]:
    """The first rows after the header, that each column's spelling is chosen from, and their line numbers.

    At most SAMPLE_ROWS rows, and no more once they hold SAMPLE_CHARS characters.
    """
    head: list[list[str]] = []
    lines: list[int] = []
    held = 0
    feed.chars = 0
    for row in rows:
        head.append(row)
        lines.append(rows.line_num)  # type: ignore[attr-defined]  # a csv reader
        held += feed.chars
        feed.chars = 0
        if len(head) == SAMPLE_ROWS or held > SAMPLE_CHARS:
            break
    return head, lines


def check_width(header: list[str]) -> None:
    """Refuse a header of more columns than MAX_COLUMNS."""
    if len(header) > MAX_COLUMNS:
        raise FileFormatError(
            f"the header row has {len(header):,} columns; the tap reads at most {MAX_COLUMNS:,} "
            "(this is not an export of the report)"
        )


def is_zip(path: Path) -> bool:
    """Whether the file is a zip archive, from its first bytes (whatever the API announced)."""
    with open(path, "rb") as head:
        return head.read(4) in ZIP_SIGNATURES


class _ZipMember(io.RawIOBase):
    """The one member of a zip archive, decompressed a buffer at a time, counted as it comes.

    zipfile's own reader asks bzip2 for all that a compressed chunk holds (a few KB of a
    bzip2 bomb are gigabytes of memory) and trusts the sizes written in the headers. Here
    no call returns more than the buffer asked for, the bytes are counted as they come
    out, past `limit` the read stops with UnzipLimitError, and the CRC is checked at the end.
    """

    _LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
    _CHUNK = 1 << 16  # compressed bytes read at a time

    def __init__(self, path: Path, info: zipfile.ZipInfo, limit: float) -> None:
        super().__init__()
        if info.flag_bits & 0x1:
            raise FileFormatError("the zip archive is encrypted")
        methods: dict[int, Callable[[], t.Any] | None] = {
            zipfile.ZIP_STORED: None,
            zipfile.ZIP_DEFLATED: lambda: zlib.decompressobj(-zlib.MAX_WBITS),  # raw deflate, as zip holds it
            zipfile.ZIP_BZIP2: bz2.BZ2Decompressor,
        }
        if info.compress_type not in methods:
            raise FileFormatError(
                f"the zip archive uses compression method {info.compress_type}; the tap reads stored, "
                "deflate and bzip2 members"
            )
        make = methods[info.compress_type]
        self._decompressor: t.Any = make() if make else None
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this stream
        self._file.seek(info.header_offset)
        header = self._file.read(self._LOCAL_HEADER.size)
        if len(header) < self._LOCAL_HEADER.size or header[:4] != ZIP_SIGNATURES[0]:
            self._file.close()
            raise FileFormatError("the zip archive is damaged (its member has no local header)")
        _, name_length, extra_length = self._LOCAL_HEADER.unpack(header)
        self._file.seek(name_length + extra_length, io.SEEK_CUR)
        self._compressed_left = info.compress_size
        self._expected_crc = info.CRC
        self._crc = 0
        self._limit = limit
        self.size = 0  # bytes decompressed so far

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: t.Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._next(len(view))
        if not data:
            if self._crc != self._expected_crc:
                raise FileFormatError("the zip archive is damaged (its CRC does not match its content)")
            return 0
        self.size += len(data)
        if self.size > self._limit:
            raise UnzipLimitError(f"the file expands to more than {self._limit / 1e6:,.0f} MB unzipped")
        self._crc = zlib.crc32(data, self._crc)
        view[: len(data)] = data
        return len(data)

    def _next(self, size: int) -> bytes:
        """Up to `size` decompressed bytes; empty at the end of the member."""
        decompressor = self._decompressor
        if decompressor is None:
            return self._compressed(size)
        while not decompressor.eof:
            if isinstance(decompressor, bz2.BZ2Decompressor):
                data = decompressor.decompress(self._compressed() if decompressor.needs_input else b"", size)
                starved = decompressor.needs_input
            else:
                data = decompressor.decompress(decompressor.unconsumed_tail or self._compressed(), size)
                starved = not decompressor.unconsumed_tail
            if data:
                return data
            if starved and not self._compressed_left and not decompressor.eof:
                raise FileFormatError("the zip archive is truncated (its member ends before its data does)")
        return b""

    def _compressed(self, size: int = _CHUNK) -> bytes:
        data = self._file.read(min(size, self._compressed_left))
        self._compressed_left -= len(data)
        if not data and self._compressed_left:
            raise FileFormatError("the zip archive is truncated")
        return data

    @override
    def close(self) -> None:
        self._file.close()
        super().close()


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
def open_text(
    path: Path, zipped: bool, start: int = 0, end: int | None = None, *, unzip_limit: float = float("inf")
) -> Iterator[io.TextIOBase]:
    """Open an export file as text: unzipped if need be, BOM dropped, newlines kept for csv.

    `start` and `end` read a byte range of a plain file (a range starting at a row).
    """
    with open_bytes(path, zipped, start, end, unzip_limit=unzip_limit) as binary:
        encoding = "utf-8-sig" if start == 0 else "utf-8"
        with io.TextIOWrapper(io.BufferedReader(binary, READ_BUFFER), encoding=encoding, newline="") as text:
            yield text


@contextmanager
def open_bytes(
    path: Path, zipped: bool, start: int = 0, end: int | None = None, *, unzip_limit: float = float("inf")
) -> Iterator[io.RawIOBase]:
    """The bytes of an export file, unzipped if need be (at most `unzip_limit` of them)."""
    if not zipped:
        with _ByteRange(path, start, end) as plain:
            yield plain
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise FileFormatError(f"the zip archive is damaged or truncated ({error})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise FileFormatError(f"the zip archive holds {len(members)} files, not one CSV")
        with _ZipMember(path, members[0], unzip_limit) as member:
            yield member


def not_utf8(error: UnicodeDecodeError) -> str:
    """What to say of a file that does not decode as UTF-8."""
    if error.object[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "the file is UTF-16 text, not UTF-8 as Aircall's exports are"
    byte = error.object[error.start : error.start + 1].hex()
    return f"the file is not UTF-8 text (byte 0x{byte} cannot start or continue a character)"


#: A record as the message writer encodes it: a Struct of the file's columns (`_row_function`),
#: or a dict for a row read cell by cell (`RecordReader._lenient`). Both encode to the same JSON.
Record = msgspec.Struct | dict


def _row_function(
    match: HeaderMatch, converters: dict[str, Reader], keys: tuple[str, ...]
) -> Callable[[list[str]], msgspec.Struct]:
    """Compile the function that turns one CSV row into a record, for one header.

    The record is a msgspec Struct whose fields are the record's properties in the order a
    dict record holds them: built in one call and encoded with its names encoded once, it
    takes about 0.7x the CPU of a dict of the same values (docs/batch-and-speed.md). Its
    arguments are one expression per cell: a text is its cell (None if empty), a value seen
    before is a dict lookup (`column_reader`'s memos), any other a call of its column's
    reader. A cell not in its column's usual spelling, a bad value or an empty key raises;
    `RecordReader._lenient` reads such a row again, cell by cell.
    """
    names = [column.name for _, column in match.positions] + [column.name for column in match.missing]
    names += [EXTRA_COLUMNS, UNPARSED_VALUES]
    fields = [f"f{position}" for position in range(len(names))]  # any property name, as a field's JSON name
    record = msgspec.defstruct("Record", fields, rename=dict(zip(fields, names)), gc=False)
    scope: dict[str, object] = {"Record": record, "empty_key": _empty_key}
    if match.extras:
        scope["extra_labels"] = tuple(label for _, label in match.extras)
        scope["extra_cells"] = _cells(index for index, _ in match.extras)
    values = []
    for index, column in match.positions:
        reader = scope[f"r{index}"] = converters[column.name]
        cell = f"r{index}[v]" if isinstance(reader, dict) else f"r{index}(v)"
        value = "v" if column.kind is Kind.STRING else cell
        values.append(f"{value} if (v := row[{index}]) else {'empty_key()' if column.name in keys else None}")
    values += ["None"] * len(match.missing)
    values += ["dict(zip(extra_labels, extra_cells(row)))" if match.extras else "None", "None"]
    source = "def row_to_record(row):\n    return Record(" + ", ".join(values) + ")\n"
    exec(compile(source, "<row_to_record>", "exec"), scope)
    return scope["row_to_record"]  # type: ignore[return-value]


def _empty_key() -> None:
    raise BadValue("a key: it is empty")


def _cells(positions: t.Iterable[int]) -> Callable[[t.Sequence[t.Any]], tuple[t.Any, ...]]:
    """The cells of a row at `positions` (one or more), as a tuple: itemgetter gives one alone bare."""
    picked = tuple(positions)
    return operator.itemgetter(*picked) if len(picked) > 1 else lambda row: (row[picked[0]],)


class RecordReader:
    """Reads one report's export files into typed records.

    A cell that does not parse as its column's type is kept: its property is null, its
    text goes to `_unparsed_values`, and it is counted per column. With `strict`, it
    stops the run instead. A key cell must always parse.
    """

    def __init__(
        self,
        report: Report,
        timezone: str,
        warn: Callable[[str], None],
        *,
        strict: bool = False,
        unzip_limit: float = float("inf"),
    ) -> None:
        self.report = report
        self.timezone = timezone
        self.strict = strict
        self.unzip_limit = unzip_limit  # the most bytes a zipped export may expand to
        self.unparsed: Counter[str] = Counter()  # column label -> cells kept as text this run
        self.examples: dict[str, str] = {}  # column label -> where its first such cell was, for the warning
        self._warn = warn
        self._warned: set[str] = set()

    def read(self, path: Path, *, zipped: bool = False, where: str = "") -> Iterator[dict]:
        """Yield the records of one file as dicts (see `records`)."""
        for record in self.records(path, zipped=zipped, where=where):
            yield record if type(record) is dict else msgspec.to_builtins(record)

    def records(self, path: Path, *, zipped: bool = False, where: str = "") -> Iterator[Record]:
        """Yield the records of one file, as the message writer encodes them. `where` names the
        file in error messages.

        `zipped` is what the API announced; the file's first bytes decide.
        """
        where = where or path.name
        with ExitStack() as opened:
            with self.failures(where):
                zipped = self.zipped(path, zipped, where)
                handle = opened.enter_context(open_text(path, zipped, unzip_limit=self.unzip_limit))
                feed = RowFeed(handle)
                reader = csv.reader(feed, strict=True)
                header = next(reader, None)
                if header is None:
                    self.no_header(path, where)
                    return
                self.check_header(header)
            match = self.match(header)
            width = len(header)
            with self.failures(where):
                head, head_lines = sample(reader, feed)  # the first rows, that each column's spelling is chosen from

                def line_of(row: list[str]) -> int:  # only on the rare paths: no counting in the hot loop
                    position = next((index for index, seen in enumerate(head) if seen is row), None)
                    return reader.line_num if position is None else head_lines[position]

                column_types = self.column_types(match)
                converters = {
                    name: spellings.column_reader(
                        column_type, (row[index] for row in head if len(row) == width and row[index])
                    )
                    for (index, _), (name, column_type) in zip(match.positions, column_types.items())
                }
                row_to_record = _row_function(match, converters, self.report.primary_key)
                for row in itertools.chain(head, reader):
                    feed.chars = 0
                    if len(row) != width:
                        if not row:  # a blank line; a line of "" is a row of one empty field
                            continue
                        raise FileFormatError(f"row {line_of(row)} has {len(row)} fields; the header has {width}")
                    try:
                        record: Record = row_to_record(row)
                    except (BadValue, ValueError, KeyError, TypeError):
                        record = self._lenient(row, match, column_types, line_of(row))
                    yield record

    @contextmanager
    def failures(self, where: str, bound: str = "max_unzipped_mb") -> Iterator[None]:
        """Turn what goes wrong reading a file into one FileFormatError naming the stream and `where`.

        `bound` names the setting that bounds what a zipped file may expand to.
        """
        try:
            yield
        except UnicodeDecodeError as error:
            raise FileFormatError(f"{self.report.stream_name} {where}: {not_utf8(error)}") from None
        except UnzipLimitError as error:
            raise UnzipLimitError(
                f"{self.report.stream_name} {where}: {error}; the bound is {bound} (raise it, or lower window_days)"
            ) from None
        except (FileFormatError, csv.Error) as error:
            raise FileFormatError(f"{self.report.stream_name} {where}: {error}") from None

    @staticmethod
    def check_header(header: list[str]) -> None:
        """Refuse a header row that cannot be one of a UTF-8 CSV, or that has more than MAX_COLUMNS columns."""
        check_width(header)
        if any("\x00" in label for label in header):
            raise FileFormatError("the header row holds NUL characters: the file looks like UTF-16, not UTF-8")

    def zipped(self, path: Path, announced: bool, where: str) -> bool:
        """Whether `path` is a zip archive, from its first bytes; warn when the API announced otherwise."""
        actual = is_zip(path)
        if actual != announced:
            said, found = ("a zip archive", "a plain CSV") if announced else ("a plain CSV", "a zip archive")
            self._warn(
                f"{self.report.stream_name} {where}: the export was announced as {said} but is {found}; "
                f"it is read as {found}"
            )
        return actual

    def no_header(self, path: Path, where: str) -> None:
        """A file without a header row (0 bytes, or a BOM alone): an empty window, said aloud; an error when strict.

        Called within `failures`.
        """
        message = f"the export file has no header row ({path.stat().st_size} bytes)"
        if self.strict:  # raised within `failures`, which names the stream and `where`
            raise FileFormatError(f"{message}; with strict_values such a file stops the run")
        self._warn(
            f"{self.report.stream_name} {where}: {message}; the window is read as holding no rows "
            "(set strict_values to stop the run instead)"
        )

    def column_types(self, match: HeaderMatch) -> dict[str, ColumnType]:
        """How each known column of a file is read, by property, in file order."""
        return {column.name: ColumnType.of(column, self.timezone) for _, column in match.positions}

    def _lenient(self, row: list[str], match: HeaderMatch, column_types: dict[str, ColumnType], line: int) -> dict:
        """Read a row cell by cell, each in its own spelling: null and raw text for a bad cell,
        or an error when strict or a key."""
        record: dict = {}
        unparsed: dict[str, str] = {}
        for index, column in match.positions:
            text = row[index]
            try:
                record[column.name] = spellings.read(text, column_types[column.name]) if text else None
            except BadValue as expected:
                if self.strict or column.name in self.report.primary_key:
                    self._explain(row, match, line)
                record[column.name] = None
                unparsed[column.name] = text
                self.count_unparsed(column, example=f" ({quote_cell(text)} in row {line} is not {expected})")
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
                spellings.read(text, ColumnType.of(column, self.timezone))
            except BadValue as expected:
                hint = (
                    ""
                    if column.name not in self.report.primary_key
                    else f" (a key column: {keeping_declaration(self.report, column, text)})"
                )
                raise FileFormatError(
                    f"row {line}, column '{column.label}': {quote_cell(text)} is not {expected}{hint}"
                ) from None

    def match(self, header: list[str]) -> HeaderMatch:
        """Match a file's header to the catalogue; warn once per run of unknown or missing columns."""
        match = HeaderMatch.of(self.report, header)
        for label, column in match.repeated[:MAX_NAMED]:
            self._warn_once(
                f"{self.report.stream_name}: column '{label[:QUOTED_CELL]}' matches '{column.label}' like a column "
                "before it; "
                f"the first is read into {column.name}, this one is kept as text in {EXTRA_COLUMNS}"
            )
        twice = {label for label, _ in match.repeated}
        new = [label for label in match.unknown if f"extra:{label}" not in self._warned and label not in twice]
        if new:
            self._warned.update(f"extra:{label}" for label in new)
            names = ", ".join(f"'{label[:QUOTED_CELL]}'" for label in new[:MAX_NAMED]) + (
                f" and {len(new) - MAX_NAMED:,} more" if len(new) > MAX_NAMED else ""
            )
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


def keeping_declaration(report: Report, column: Column, text: str) -> str:
    """What to declare in column_types so that a key column of `report` reads `text`, keeping its type."""
    whole = text.strip().split(".")[0]
    digits = whole.isascii() and whole.isdigit()
    if column.kind is Kind.TIMESTAMP and digits:
        unit = "seconds" if len(whole) <= 11 else "milliseconds" if len(whole) <= 14 else "microseconds"
        declared, other = {"unit": unit}, "the unit: seconds, milliseconds or microseconds"
    elif column.kind in (Kind.TIMESTAMP, Kind.DATE):
        declared, other = {"format": "%d/%m/%Y %H:%M"}, "the strptime layout of its cells"
    elif column.kind is Kind.DURATION and digits:
        declared, other = {"unit": "minutes"}, "the unit: milliseconds, seconds, minutes or hours"
    elif column.kind in (Kind.NUMBER, Kind.PERCENT, Kind.DURATION) and "," in text:
        declared, other = {"decimal": ","}, "the decimal mark"
    else:
        return "declare another type for it in column_types, e.g. string, to load it"
    entry = {"label": column.label, "type": column.kind.value, **declared}
    return f"declare {other} in column_types: {json.dumps({report.stream_name: [entry]})}"
