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
import shutil
import uuid
import zoneinfo
from pathlib import Path

from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_aircall_analytics.records import TIMESTAMP_EXPECTED, FileFormatError, HeaderMatch, RecordReader, open_text
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
PARQUET_ROW_GROUP = 16_384
CSV_BUFFER_BYTES = 2 << 20


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
    offset = moment.astimezone(zone).utcoffset()
    changes: list[tuple[dt.datetime | None, int]] = [(None, int(offset.total_seconds()))]
    step = dt.timedelta(minutes=15)
    while moment < end:
        following = (moment + step).astimezone(zone).utcoffset()
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
        select = self._empty_select() if header is None else self._select(
            csv_path, len(header), self.reader.match(header), window)
        output = workdir / f"{csv_path.stem}.batch"
        self._copy(select, output)
        self._count += 1
        urls = []
        for part, local in enumerate(sorted(output.iterdir()) if output.is_dir() else [output], start=1):
            filename = f"{self.storage.prefix or ''}{self.file_stem}-{self._count}-{part}.{self._extension}"
            with open(local, "rb") as source, self.storage.open(filename, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
            urls.append(self.storage.get_url(filename))
        if output.is_dir():
            shutil.rmtree(output, ignore_errors=True)
        else:
            output.unlink()
        if zipped:
            csv_path.unlink()
        return urls

    @property
    def _extension(self) -> str:
        if self.encoding.format == "parquet":
            return "parquet"
        return "json.gz" if self.encoding.compression == "gzip" else "jsonl"

    def _copy(self, select: str, destination: Path) -> None:
        """Run the conversion. JSON lines are written by both threads at once, a file each."""
        if self.encoding.format == "jsonl":
            options = "FORMAT json, PER_THREAD_OUTPUT true" + (
                ", COMPRESSION gzip" if self.encoding.compression == "gzip" else "")
        else:
            codec = {"gzip": "gzip", "zstd": "zstd", "snappy": "snappy"}.get(self.encoding.compression, "uncompressed")
            options = f"FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {PARQUET_ROW_GROUP}"
        import duckdb  # noqa: PLC0415 - loaded only by runs that write batches (it weighs ~30 MB)

        with duckdb.connect(config={"threads": 2, "memory_limit": MEMORY_LIMIT}) as db:
            db.execute("SET TimeZone = 'UTC'")
            db.execute("SET preserve_insertion_order = false")  # a batch is a set of rows: no reordering buffers
            db.execute("SET enable_progress_bar = false")
            try:
                (self.rows_written,) = db.execute(
                    f"COPY ({select}) TO {_sql_text(str(destination))} ({options})").fetchone()
            except duckdb.Error as error:
                first_line = str(error).strip().splitlines()[0]
                raise FileFormatError(f"{self.report.stream_name}: {first_line}") from None

    def _empty_select(self) -> str:
        columns = ", ".join(
            f"CAST(NULL AS {self._sql_type(self.report.column(name))}) AS \"{name}\"" for name in self.selected
        )
        return f"SELECT {columns} LIMIT 0"

    def _select(self, path: Path, width: int, match: HeaderMatch, window: Window) -> str:
        columns = ", ".join(f"'c{index}': 'VARCHAR'" for index in range(width))
        source = (
            f"read_csv({_sql_text(str(path))}, header = true, auto_detect = false, delim = ',', "
            f"quote = '\"', escape = '\"', strict_mode = false, buffer_size = {CSV_BUFFER_BYTES}, "
            f"columns = {{{columns}}})"
        )
        positions = {column.name: index for index, column in match.positions}
        offsets = _utc_offsets(self.reader.timezone, window)
        fields = []
        for name in self.selected:
            column = self.report.column(name)
            if name in positions:
                expression = self._expression(column, f"c{positions[name]}", offsets)
            else:
                expression = f"CAST(NULL AS {self._sql_type(column)})"
            fields.append(f'{expression} AS "{name}"')
        return f"SELECT {', '.join(fields)} FROM {source}"

    def _sql_type(self, column: Column) -> str:
        json_lines = self.encoding.format == "jsonl"
        return {
            Kind.INTEGER: "BIGINT", Kind.STRING: "VARCHAR", Kind.DURATION: "BIGINT", Kind.BOOLEAN: "BOOLEAN",
            Kind.PERCENT: "DOUBLE", Kind.LIST: "VARCHAR[]",
            Kind.TIMESTAMP: "VARCHAR" if json_lines else "TIMESTAMPTZ",
            Kind.DATE: "VARCHAR" if json_lines else "DATE",
        }[column.kind]

    def _expression(self, column: Column, field: str, offsets: list[tuple[dt.datetime | None, int]]) -> str:
        """SQL for one column: the same value as the records.py converter, NULL when empty."""
        label = column.label.replace("'", "''")
        bad = f"error('column ''{label}'': ' || {field} || ' is not "
        if column.name in self.report.primary_key:
            present = f"{field} IS NOT NULL AND {field} <> ''"
            value = self._value(column, field, offsets, bad)
            return f"CASE WHEN {present} THEN {value} ELSE error('column ''{label}'': key column is empty') END"
        return f"CASE WHEN {field} IS NULL OR {field} = '' THEN NULL ELSE {self._value(column, field, offsets, bad)} END"

    def _value(self, column: Column, field: str, offsets, bad: str) -> str:
        kind = column.kind
        if kind is Kind.STRING:
            return field
        if kind is Kind.INTEGER:
            return f"CAST({field} AS BIGINT)"
        if kind is Kind.PERCENT:
            return f"CAST(rtrim({field}, '{PERCENT_SUFFIX}') AS DOUBLE)"
        if kind is Kind.BOOLEAN:
            return f"CASE {field} WHEN '{TRUE_TEXT}' THEN true WHEN '{FALSE_TEXT}' THEN false ELSE {bad}a boolean') END"
        if kind is Kind.LIST:  # the non-empty items between separators, trimmed
            item = f"[^{LIST_SEPARATOR}\\s](?:[^{LIST_SEPARATOR}]*[^{LIST_SEPARATOR}\\s])?"
            return f"regexp_extract_all({field}, '{item}')"
        if kind is Kind.DURATION:  # H:MM:SS; a part that is not a number fails its CAST
            parts = [f"split_part({field}, ':', {n})" for n in (1, 2, 3)]
            return (f"CASE WHEN strlen({parts[1]}) = 2 AND strlen({parts[2]}) = 2 THEN "
                    f"CAST({parts[0]} AS BIGINT) * 3600 + CAST({parts[1]} AS BIGINT) * 60 + CAST({parts[2]} AS BIGINT)"
                    f" ELSE {bad}a duration (H:MM:SS)') END")
        if kind is Kind.DATE:
            date = f"CAST(strptime({field}, '%Y-%m-%d') AS DATE)"
            return f"strftime({date}, '%Y-%m-%d')" if self.encoding.format == "jsonl" else date
        if TIMESTAMP_FORMAT == ISO_WALL_CLOCK:  # the fast cast, kept as strict as records.py
            local = (f"CASE WHEN strlen({field}) = 19 AND substr({field}, 11, 1) = ' ' "
                     f"THEN CAST({field} AS TIMESTAMP) ELSE {bad}{TIMESTAMP_EXPECTED}') END")
        else:
            local = f"strptime({field}, {_sql_text(TIMESTAMP_FORMAT)})"
        cases = " ".join(f"WHEN {local} >= TIMESTAMP '{start.isoformat(' ')}' THEN {seconds}"
                         for start, seconds in reversed(offsets[1:]))
        offset = f"(CASE {cases} ELSE {offsets[0][1]} END)" if cases else str(offsets[0][1])
        utc = f"({local} - to_seconds({offset}))"
        if self.encoding.format == "jsonl":  # the text records.py emits: 2026-07-01T08:00:05+00:00
            return f"replace(CAST({utc} AS VARCHAR), ' ', 'T') || '+00:00'"
        return f"CAST({utc} AS TIMESTAMPTZ)"


def file_stem(tap_name: str, stream_name: str) -> str:
    """A unique stem for the batch files of one stream sync."""
    return f"{tap_name}--{stream_name}-{uuid.uuid4()}"
