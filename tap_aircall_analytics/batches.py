"""Export files to BATCH files (JSON lines or Parquet), converted by DuckDB.

In BATCH mode no record needs to exist in Python: DuckDB reads the CSV and writes the
batch file in C, several times faster than building records one by one. The SQL applies
the same conversions as `records.py` (UTC timestamps with the first occurrence of a
repeated hour, whole-second durations, Yes/No, percentages, tag lists), so a JSON-lines
batch holds exactly the records RECORD mode would emit, and a Parquet batch the same
values with native types (TIMESTAMP WITH TIME ZONE in UTC, DATE, BIGINT, DOUBLE, BOOLEAN).
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import shutil
import threading
import typing as t
import uuid
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_aircall_analytics.records import (
    EXTRA_COLUMNS,
    RAW_PROPERTIES,
    TIMESTAMP_EXPECTED,
    UNPARSED_VALUES,
    FileFormatError,
    HeaderMatch,
    RecordReader,
    open_text,
)
from tap_aircall_analytics.reports import (
    FALSE_TEXT,
    ISO_WALL_CLOCK,
    LIST_SEPARATOR,
    PERCENT_SUFFIX,
    TIMESTAMP_FORMAT,
    TRUE_TEXT,
    Column,
    Kind,
)
from tap_aircall_analytics.windows import Window

FORMATS = {"jsonl": "json", "parquet": "parquet"}
MEMORY_LIMIT = "48MB"  # DuckDB's share of the tap's memory; buffers and row groups are kept small to fit it
PARQUET_ROW_GROUP = 8_192
CSV_BUFFER_BYTES = 1 << 20


def load_duckdb_meanwhile() -> None:
    """Import DuckDB in the background: a run loads it while it waits for its first export."""
    threading.Thread(target=importlib.import_module, args=("duckdb",), name="load-duckdb", daemon=True).start()


def supported(encoding: BaseBatchFileEncoding) -> bool:
    """True when DuckDB can write this batch encoding (else the SDK's own batcher is used)."""
    return encoding.format in FORMATS and encoding.compression in (None, "none", "gzip", "snappy", "zstd")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _utc_offsets(timezone: str, window: Window) -> list[tuple[dt.datetime | None, int]]:
    """The UTC offsets (seconds) in force over the window, as (wall-clock start, offset) pairs.

    A wall time reads with the offset before a change until the later of the two
    clocks reaches the change: that is the first occurrence of a repeated hour, and the
    earlier offset in a skipped one, exactly as `zoneinfo` with fold=0 reads it.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    moment = dt.datetime.combine(window.first - dt.timedelta(days=2), dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(window.last + dt.timedelta(days=3), dt.time(), dt.timezone.utc)
    offset = moment.astimezone(zone).utcoffset() or dt.timedelta()
    changes: list[tuple[dt.datetime | None, int]] = [(None, int(offset.total_seconds()))]
    step = dt.timedelta(minutes=15)
    while moment < end:
        following = (moment + step).astimezone(zone).utcoffset() or dt.timedelta()
        if following != offset:
            wall = (moment + step).replace(tzinfo=None) + max(offset, following)
            changes.append((wall, int(following.total_seconds())))
            offset = following
        moment += step
    return changes


class BatchFileWriter:
    """Writes one report's export files as batch files, with DuckDB."""

    def __init__(
        self,
        reader: RecordReader,
        selected: list[str],
        encoding: BaseBatchFileEncoding,
        storage: StorageTarget,
        file_stem: str,
    ) -> None:
        self.reader = reader
        self.report = reader.report
        self.selected = selected
        self.encoding = encoding
        self.storage = storage
        self.file_stem = file_stem
        self.rows_written = 0  # rows of the last file written
        self._count = 0

    def write(self, csv_path: Path, *, zipped: bool, window: Window, workdir: Path) -> list[str]:
        """Convert one export file; return the URLs of the batch files written (one per thread)."""
        if zipped:
            plain = workdir / f"{csv_path.stem}.unzipped.csv"
            with open_text(csv_path, zipped=True) as text, open(plain, "w", encoding="utf-8", newline="") as out:
                shutil.copyfileobj(text, out, 1 << 20)
            csv_path = plain
        with open_text(csv_path, zipped=False) as text:
            header = next(csv.reader(text), None)
        match = None if header is None else self.reader.match(header)
        select = self._empty_select() if match is None else self._select(csv_path, len(header or ()), match, window)
        output = workdir / f"{csv_path.stem}.batch"
        self._copy(select, output, csv_path, match, window)
        self._count += 1
        urls = []
        for part, local in enumerate(sorted(output.iterdir()) if output.is_dir() else [output], start=1):
            filename = f"{self.storage.prefix or ''}{self.file_stem}-{self._count}-{part}.{self._extension}"
            url = self.storage.get_url(filename)
            if url.startswith("file://"):  # a local folder: moved there, renamed if on the same file system
                target = Path(url2pathname(urlsplit(url).path))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(local, target)
            else:
                with open(local, "rb") as source, self.storage.open(filename, "wb") as remote:
                    shutil.copyfileobj(source, remote, 1 << 20)
            urls.append(url)
        if output.is_dir():
            shutil.rmtree(output, ignore_errors=True)
        else:
            output.unlink(missing_ok=True)
        if zipped:
            csv_path.unlink()
        return urls

    @property
    def _extension(self) -> str:
        if self.encoding.format == "parquet":
            return "parquet"
        return "json.gz" if self.encoding.compression == "gzip" else "jsonl"

    def _copy(self, select: str, destination: Path, source: Path, match: HeaderMatch | None, window: Window) -> None:
        """Run the conversion, then count the cells kept as text. JSON lines: both threads write a file each."""
        if self.encoding.format == "jsonl":
            options = "FORMAT json, PER_THREAD_OUTPUT true" + (
                ", COMPRESSION gzip" if self.encoding.compression == "gzip" else ""
            )
        else:
            codec = {"gzip": "gzip", "zstd": "zstd", "snappy": "snappy"}.get(
                self.encoding.compression or "", "uncompressed"
            )
            options = f"FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {PARQUET_ROW_GROUP}"
        import duckdb  # noqa: PLC0415 - loaded only by runs that write batches (it weighs ~30 MB)

        with duckdb.connect(config={"threads": 2, "memory_limit": MEMORY_LIMIT}) as db:
            db.execute("SET TimeZone = 'UTC'")
            db.execute("SET preserve_insertion_order = false")  # a batch is a set of rows: no reordering buffers
            db.execute("SET enable_progress_bar = false")
            for index, _ in self._lenient_columns(match):
                db.execute(f"CREATE SEQUENCE {_unparsed_counter(index)}")
            try:
                written = db.execute(f"COPY ({select}) TO {_sql_text(str(destination))} ({options})").fetchone()
            except duckdb.Error as error:
                self._explain(source, window, str(error).strip().splitlines()[0])
            self.rows_written = int(written[0]) if written else 0
            counts = dict(db.execute("SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall())
        for index, column in self._lenient_columns(match):
            if counts.get(_unparsed_counter(index)):
                self.reader.count_unparsed(column, counts[_unparsed_counter(index)])

    def _explain(self, source: Path, window: Window, duckdb_message: str) -> t.NoReturn:
        """Raise the error RECORD mode gives for this file (row, column, value), else DuckDB's."""
        strict = RecordReader(self.report, self.reader.timezone, lambda message: None, strict=True)
        for _ in strict.read(source, where=str(window)):
            pass
        raise FileFormatError(f"{self.report.stream_name} {window}: {duckdb_message}")

    def _lenient_columns(self, match: HeaderMatch | None) -> list[tuple[int, Column]]:
        """The columns whose bad cells are kept as text (not keys, not text already, not strict)."""
        if match is None or self.reader.strict:
            return []
        return [
            (index, column)
            for index, column in match.positions
            if column.kind not in (Kind.STRING, Kind.LIST)
            and column.name not in self.report.primary_key
            and column.name in self.selected
        ]

    def _empty_select(self) -> str:
        return f"SELECT {', '.join(f'{self._null(name)} AS {_quoted(name)}' for name in self.selected)} LIMIT 0"

    def _null(self, name: str) -> str:
        if name in RAW_PROPERTIES:
            return "CAST(NULL AS MAP(VARCHAR, VARCHAR))"
        return f"CAST(NULL AS {self._sql_type(self.report.column(name))})"

    def _select(self, path: Path, width: int, match: HeaderMatch, window: Window) -> str:
        """Convert in an inner query (each cell once), assemble the record in the outer one."""
        columns = ", ".join(f"'c{index}': 'VARCHAR'" for index in range(width))
        source = (
            f"read_csv({_sql_text(str(path))}, header = true, auto_detect = false, delim = ',', "
            f"quote = '\"', escape = '\"', strict_mode = false, buffer_size = {CSV_BUFFER_BYTES}, "
            f"columns = {{{columns}}})"
        )
        offsets = _utc_offsets(self.reader.timezone, window)
        lenient = {index for index, _ in self._lenient_columns(match)}
        converted = [
            f"{self._expression(column, f'c{index}', offsets, index in lenient)} AS v{index}"
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
                expression = f"v{positions[name]}"
            else:
                expression = self._null(name)
            fields.append(f"{expression} AS {_quoted(name)}")
        return f"SELECT {', '.join(fields)} FROM ({inner})"

    def _extra_columns(self, match: HeaderMatch) -> str:
        """The unknown columns as a map of label to text (an empty cell stays an empty text)."""
        if not match.extras:
            return self._null(EXTRA_COLUMNS)
        labels = ", ".join(_sql_text(label) for _, label in match.extras)
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
            f"CASE WHEN {failed[index]} THEN [{{'k': {_sql_text(column.name)}, 'v': CASE WHEN "
            f"nextval('{_unparsed_counter(index)}') > 0 THEN c{index} END}}] ELSE [] END"
            for index, column in match.positions
            if index in failed
        )  # lists joined with flatten, not filtered with a lambda: lambda syntax differs in DuckDB 1 and 2
        return f"CASE WHEN {' OR '.join(failed.values())} THEN map_from_entries(flatten([{entries}])) END"

    def _sql_type(self, column: Column) -> str:
        json_lines = self.encoding.format == "jsonl"
        return {
            Kind.INTEGER: "BIGINT",
            Kind.NUMBER: "DOUBLE",
            Kind.STRING: "VARCHAR",
            Kind.DURATION: "BIGINT",
            Kind.BOOLEAN: "BOOLEAN",
            Kind.PERCENT: "DOUBLE",
            Kind.LIST: "VARCHAR[]",
            Kind.TIMESTAMP: "VARCHAR" if json_lines else "TIMESTAMPTZ",
            Kind.DATE: "VARCHAR" if json_lines else "DATE",
        }[column.kind]

    def _expression(
        self, column: Column, field: str, offsets: list[tuple[dt.datetime | None, int]], lenient: bool
    ) -> str:
        """SQL for one column: the same value as the records.py converter, NULL when empty.

        A bad cell is NULL when `lenient`, else an error naming the column and the value.
        """
        label = column.label.replace("'", "''")
        if lenient:

            def bad(expected: str) -> str:
                return "NULL"
        else:

            def bad(expected: str) -> str:
                return f"error('column ''{label}'': ' || {field} || ' is not {expected}')"

        value = self._value(column, field, offsets, bad, "TRY_CAST" if lenient else "CAST")
        if column.name in self.report.primary_key:
            present = f"{field} IS NOT NULL AND {field} <> ''"
            return f"CASE WHEN {present} THEN {value} ELSE error('column ''{label}'': key column is empty') END"
        return f"CASE WHEN {field} IS NULL OR {field} = '' THEN NULL ELSE {value} END"

    def _value(self, column: Column, field: str, offsets, bad: t.Callable[[str], str], cast: str) -> str:
        kind = column.kind
        if kind is Kind.STRING:
            return field
        if kind is Kind.INTEGER:
            return f"{cast}({field} AS BIGINT)"
        if kind in (Kind.NUMBER, Kind.PERCENT):
            number = (
                f"{cast}({field} AS DOUBLE)"
                if kind is Kind.NUMBER
                else f"{cast}(rtrim({field}, '{PERCENT_SUFFIX}') AS DOUBLE)"
            )
            return f"CASE WHEN isfinite({number}) THEN {number} ELSE {bad('a finite number')} END"
        if kind is Kind.BOOLEAN:
            return (
                f"CASE {field} WHEN '{TRUE_TEXT}' THEN true WHEN '{FALSE_TEXT}' THEN false ELSE {bad('a boolean')} END"
            )
        if kind is Kind.LIST:  # the non-empty items between separators, trimmed
            item = f"[^{LIST_SEPARATOR}\\s](?:[^{LIST_SEPARATOR}]*[^{LIST_SEPARATOR}\\s])?"
            return f"regexp_extract_all({field}, '{item}')"
        if kind is Kind.DURATION:  # H:MM:SS, MM and SS at fixed places from the end; a part not a number fails
            hours = f"substr({field}, 1, strlen({field}) - 6)"
            return (
                f"CASE WHEN substr({field}, -3, 1) = ':' AND substr({field}, -6, 1) = ':' THEN "
                f"{cast}({hours} AS BIGINT) * 3600 + {cast}(substr({field}, -5, 2) AS BIGINT) * 60 + "
                f"{cast}(substr({field}, -2, 2) AS BIGINT) ELSE {bad('a duration (H:MM:SS)')} END"
            )
        strptime = "try_strptime" if cast == "TRY_CAST" else "strptime"
        if kind is Kind.DATE:
            date = f"CAST({strptime}({field}, '%Y-%m-%d') AS DATE)"
            return f"strftime({date}, '%Y-%m-%d')" if self.encoding.format == "jsonl" else date
        if TIMESTAMP_FORMAT == ISO_WALL_CLOCK:  # the fast cast, kept as strict as records.py
            local = (
                f"CASE WHEN strlen({field}) = 19 AND substr({field}, 11, 1) = ' ' "
                f"THEN {cast}({field} AS TIMESTAMP) ELSE {bad(TIMESTAMP_EXPECTED)} END"
            )
        else:
            local = f"{strptime}({field}, {_sql_text(TIMESTAMP_FORMAT)})"
        cases = " ".join(
            f"WHEN {local} >= TIMESTAMP '{start.isoformat(' ')}' THEN {seconds}"
            for start, seconds in reversed(offsets[1:])
        )
        offset = f"(CASE {cases} ELSE {offsets[0][1]} END)" if cases else str(offsets[0][1])
        utc = f"({local} - to_seconds({offset}))"
        if self.encoding.format == "jsonl":  # the text records.py emits: 2026-07-01T08:00:05+00:00
            return f"replace(CAST({utc} AS VARCHAR), ' ', 'T') || '+00:00'"
        return f"CAST({utc} AS TIMESTAMPTZ)"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unparsed_counter(index: int) -> str:
    """The sequence that counts the bad cells of file column `index`."""
    return f"unparsed_c{index}"


def file_stem(tap_name: str, stream_name: str) -> str:
    """A unique stem for the batch files of one stream sync."""
    return f"{tap_name}--{stream_name}-{uuid.uuid4()}"
