"""Export files to BATCH files (JSON lines or Parquet), converted by DuckDB.

In BATCH mode no record needs to exist in Python: DuckDB reads the CSV and writes the
batch file in C, several times faster than building records one by one. The SQL comes
from `batch_sql.py`; this module handles the files and the DuckDB session. A JSON-lines
batch holds exactly the records RECORD mode would emit, and a Parquet batch the same
values with native types (TIMESTAMP WITH TIME ZONE in UTC, DATE, BIGINT, DOUBLE, BOOLEAN).

DuckDB's CSV reader is set, option by option, to read what Python's csv module reads and
to refuse the rest (a row with a cell too many or too few, a quote left open), never to
pad, skip or guess. What it refuses is explained by RECORD mode's own reading of the file,
so both modes stop on the same line. And the rows written are reconciled with the rows of
the file, counted as RECORD mode counts them: a window whose batch lacks a row fails, so
it is never bookmarked.
"""

from __future__ import annotations

import csv
import errno
import importlib
import re
import shutil
import threading
import typing as t
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.spellings import Spelling
from tap_aircall_analytics.emit.batch_sql import BatchSql, sql_text, unparsed_counter, utc_offsets
from tap_aircall_analytics.exports.pipeline import disk_full
from tap_aircall_analytics.files.records import (
    MAX_FIELD_BYTES,
    FileFormatError,
    HeaderMatch,
    RecordReader,
    RowFeed,
    open_bytes,
    open_text,
    sample,
)
from tap_aircall_analytics.planning.windows import Window

FORMATS = {"jsonl": "json", "parquet": "parquet"}
PARQUET_ROW_GROUP = 8_192
COPY_BYTES = 1 << 20


SCAN_BYTES = 1_000_000  # the chunk the row scan reads at a time: a row without a line ending in it spans two


class ReadLimits(t.NamedTuple):
    """How much DuckDB may hold while it reads a file: its memory, and the longest row it reads."""

    memory_limit: str
    row_bytes: int  # DuckDB's buffer is as long as the longest row, and each thread holds one


#: Rows up to 2 MiB in DuckDB's share of the tap's memory (buffers and row groups kept small to fit it);
#: a file that may hold a longer row is given room for a row around RECORD mode's longest cell. DuckDB
#: must never meet a row longer than its buffer: it then takes minutes and gigabytes to refuse it.
READINGS = (ReadLimits("48MB", 2 << 20), ReadLimits("192MB", MAX_FIELD_BYTES + (4 << 20)))


def csv_source(path: Path, width: int, reading: ReadLimits) -> str:
    """The `read_csv` call that reads every cell of the file as text, columns named c0, c1, …

    Every option that decides which rows come out is set, as Python's csv module reads:
    the first line is the header; a comma separates; a quote opens a field and a doubled
    quote stands for one; a row with more or fewer cells than the header is an error, not
    padded (null_padding) nor cut (strict_mode); a bad row is an error, not skipped
    (ignore_errors); no line is a comment and none is skipped before the header. The file is
    read as it is, never decompressed after its name (a plain CSV announced as a zip ends in `.zip`).
    """
    columns = ", ".join(f"'c{index}': 'VARCHAR'" for index in range(width))
    return (
        f"read_csv({sql_text(str(path))}, header = true, auto_detect = false, delim = ',', quote = '\"', "
        f"escape = '\"', strict_mode = true, null_padding = false, ignore_errors = false, skip = 0, "
        f"encoding = 'utf-8', compression = 'none', max_line_size = {reading.row_bytes}, "
        f"buffer_size = {reading.row_bytes}, "
        f"columns = {{{columns}}})"
    )


class RowScan(t.NamedTuple):
    """What the bytes of a plain CSV file say of its rows."""

    rows: int  # data rows as RECORD mode counts them (see `scan_rows`)
    longest: int  # no row is longer than this many bytes


def scan_rows(path: Path) -> RowScan:
    """Count the data rows of a plain CSV file as RECORD mode counts them (blank lines and the header left out).

    Counted from the bytes, at the speed of a copy: the line endings outside quotes (a CR,
    an LF or both end a line, as in Python's csv module). The count is exact when every
    quote of the file opens or closes a field (RFC 4180); for any other file it may differ
    from RECORD mode's, and the file is then counted again by reading it (`_reconcile`).
    A row is at most as long as the chunks in a row without a line ending outside quotes,
    and the two around them.
    """
    endings = blanks = 0
    inside = False  # within quotes at the start of the chunk
    after_ending = True  # the byte before the chunk ended a line (or the chunk starts the file)
    last = b""
    without_ending = longest_without = 0  # chunks in a row without a line ending outside quotes
    for chunk in _chunks(path):
        # Only quotes and line endings decide; two quotes side by side change no line's side.
        marks = chunk.translate(None, _NEITHER_QUOTE_NOR_LF).replace(b'""', b"")
        parts = marks.split(b'"')
        found = sum(map(len, parts[1::2] if inside else parts[0::2]))
        endings += found
        without_ending = 0 if found else without_ending + 1
        longest_without = max(longest_without, without_ending)
        if _TWO_LINE_ENDINGS.search(chunk) or (after_ending and not inside and chunk[:1] == b"\n"):
            segments = chunk.split(b'"')  # a quote between two segments: no blank line across them
            outside = b'"'.join(segments[1::2] if inside else segments[0::2])
            blanks += len(_BLANK_LINE.findall((b"\n" if after_ending and not inside else b"") + outside))
        inside ^= len(parts) % 2 == 0
        after_ending = not inside and chunk.endswith(b"\n")
        last = chunk[-1:]
    unended = 1 if last and last != b"\n" else 0  # a last row without a line ending
    return RowScan(max(0, endings - blanks - 1 + unended), (longest_without + 2) * (SCAN_BYTES + 1))


_NEITHER_QUOTE_NOR_LF = bytes(byte for byte in range(256) if byte not in b'"\n')
_BLANK_LINE = re.compile(rb"(?<=\n)\n")
_TWO_LINE_ENDINGS = re.compile(rb"\n\n")  # found in a chunk in half the time of `in`


def _chunks(path: Path) -> t.Iterator[bytes]:
    """The file's bytes a chunk at a time, every line ending made one LF (a CR LF is never split)."""
    carry = b""
    with open(path, "rb") as data:
        while block := data.read(SCAN_BYTES):
            chunk = carry + block
            carry = b"\r" if chunk.endswith(b"\r") else b""
            chunk = chunk[:-1] if carry else chunk
            yield chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in chunk else chunk
    if carry:
        yield b"\n"


def load_duckdb_meanwhile() -> None:
    """Import DuckDB in the background: a run loads it while it waits for its first export."""
    threading.Thread(target=importlib.import_module, args=("duckdb",), name="load-duckdb", daemon=True).start()


def supported(encoding: BaseBatchFileEncoding) -> bool:
    """True when DuckDB can write this batch encoding (else the SDK's own batcher is used)."""
    return encoding.format in FORMATS and encoding.compression in (None, "none", "gzip", "snappy", "zstd")


class BatchFileWriter:
    """Writes one report's export files as batch files, with DuckDB."""

    def __init__(
        self,
        reader: RecordReader,
        selected: list[str],
        encoding: BaseBatchFileEncoding,
        storage: StorageTarget,
        file_stem: str,
        *,
        max_disk_bytes: float = float("inf"),
    ) -> None:
        self.reader = reader
        self.report = reader.report
        self.selected = selected
        self.encoding = encoding
        self.storage = storage
        self.file_stem = file_stem
        self.max_disk_bytes = max_disk_bytes  # a zipped export is unzipped to disk: at most this many bytes
        self.sql = BatchSql(
            reader.report, selected, reader.timezone, json_lines=encoding.format == "jsonl", strict=reader.strict
        )
        self.rows_written = 0  # rows of the last file written
        self._count = 0

    def write(self, csv_path: Path, *, zipped: bool, window: Window, workdir: Path) -> list[str]:
        """Convert one export file; return the URL of the batch file written.

        `zipped` is what the API announced; the file's first bytes decide.
        """
        try:
            return self._write(csv_path, zipped=zipped, window=window, workdir=workdir)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            raise FileFormatError(disk_full(f"{self.report.stream_name} {window}", workdir, "the batch")) from None

    def _write(self, csv_path: Path, *, zipped: bool, window: Window, workdir: Path) -> list[str]:
        where = str(window)
        zipped = self.reader.zipped(csv_path, zipped, where)
        if zipped:
            plain = workdir / f"{csv_path.stem}.unzipped.csv"
            self._unzip(csv_path, plain, where)
            csv_path = plain
        with self.reader.failures(where), open_text(csv_path, zipped=False) as text:
            feed = RowFeed(text)
            rows = csv.reader(feed, strict=True)
            header = next(rows, None)
            if header is None:
                self.reader.no_header(csv_path, where)
            else:
                self.reader.check_header(header)
            head, _ = sample(rows, feed)
        match = None if header is None else self.reader.match(header)
        primaries = {} if match is None else self._primaries(match, head)
        output = workdir / f"{csv_path.stem}.batch"
        try:
            self._copy(output, csv_path, header, match, window, primaries)
        except BaseException:
            _remove(output)
            raise
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
                    shutil.copyfileobj(source, remote, COPY_BYTES)
            urls.append(url)
        _remove(output)
        if zipped:
            csv_path.unlink()
        return urls

    def _primaries(self, match: HeaderMatch, head: list[list[str]]) -> dict[str, Spelling | None]:
        """The spelling each column's first values are in: its SQL is tried first."""
        return {
            name: spellings.detect(column_type, (row[index] for row in head if index < len(row) and row[index]))
            for (index, _), (name, column_type) in zip(match.positions, self.reader.column_types(match).items())
        }

    def _unzip(self, archive: Path, plain: Path, where: str) -> None:
        """Unzip the export's CSV next to it, for DuckDB: bytes as they are, at most the disk bound."""
        limit = min(self.reader.unzip_limit, self.max_disk_bytes)
        bound = "max_disk_mb, as BATCH mode unzips to TMPDIR" if limit == self.max_disk_bytes else "max_unzipped_mb"
        try:
            with (
                self.reader.failures(where, bound),
                open_bytes(archive, zipped=True, unzip_limit=limit) as member,
                open(plain, "wb") as out,
            ):
                shutil.copyfileobj(member, out, COPY_BYTES)
        except BaseException:
            plain.unlink(missing_ok=True)
            raise

    @property
    def _extension(self) -> str:
        if self.encoding.format == "parquet":
            return "parquet"
        return "json.gz" if self.encoding.compression == "gzip" else "jsonl"

    def _copy(
        self,
        destination: Path,
        source: Path,
        header: list[str] | None,
        match: HeaderMatch | None,
        window: Window,
        primaries: dict[str, Spelling | None],
    ) -> None:
        """Run the conversion, check it wrote every row, count the cells kept as text.

        A file DuckDB refuses is explained by RECORD mode's reading of it.
        """
        import duckdb  # noqa: PLC0415 - loaded only by runs that write batches (it weighs ~30 MB)

        where = f"{self.report.stream_name} {window}"
        scan = scan_rows(source)
        if scan.longest > MAX_FIELD_BYTES:  # a cell may be longer than RECORD mode reads: DuckDB has no such bound
            self._explain(source, window)  # raises RECORD mode's refusal of the file, if it refuses it
        reading = next((reading for reading in READINGS if reading.row_bytes >= scan.longest), None)
        if reading is None:
            raise FileFormatError(
                f"{where}: a row is longer than {READINGS[-1].row_bytes >> 20} MiB, the most BATCH mode reads, "
                "although RECORD mode can: run this window without batch_config"
            )
        try:
            written, counts = self._run(destination, source, header, match, window, primaries, reading)
        except duckdb.IOException as error:  # writing, not reading: the disk is full or not writable
            if "space left" in str(error):
                raise FileFormatError(disk_full(where, destination.parent, "the batch")) from None
            raise FileFormatError(f"{where}: writing the batch file failed: {_first_line(error)}") from None
        except duckdb.Error as error:
            self._explain(source, window)
            raise FileFormatError(
                f"{where}: DuckDB cannot read this file ({_first_line(error)}), although RECORD mode can: "
                "run this window without batch_config"
            ) from None
        if match is not None and written != scan.rows:
            self._reconcile(source, written, window)
        self.rows_written = written
        for index, column in self.sql.lenient_columns(match):
            if counts.get(unparsed_counter(index)):
                self.reader.count_unparsed(column, counts[unparsed_counter(index)])

    def _run(
        self,
        destination: Path,
        source: Path,
        header: list[str] | None,
        match: HeaderMatch | None,
        window: Window,
        primaries: dict[str, Spelling | None],
        reading: ReadLimits,
    ) -> tuple[int, dict[str, int]]:
        """COPY the file's records to `destination`: the rows written, and the bad cells by counter."""
        _remove(destination)  # left by an attempt before
        if match is None:
            select = self.sql.empty_select()
        else:
            offsets = utc_offsets(self.reader.timezone, window)
            select = self.sql.select(csv_source(source, len(header or ()), reading), match, offsets, primaries)
        if self.encoding.format == "jsonl":  # one file: DuckDB 2 holds every row of a per-thread output in memory
            options = "FORMAT json" + (", COMPRESSION gzip" if self.encoding.compression == "gzip" else "")
        else:
            codec = {"gzip": "gzip", "zstd": "zstd", "snappy": "snappy"}.get(
                self.encoding.compression or "", "uncompressed"
            )
            options = f"FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {PARQUET_ROW_GROUP}"
        import duckdb  # noqa: PLC0415 - see _copy

        with duckdb.connect(config={"threads": 2, "memory_limit": reading.memory_limit}) as db:
            db.execute("SET TimeZone = 'UTC'")
            db.execute(f"SET temp_directory = {sql_text(str(destination.parent / 'duckdb.tmp'))}")
            db.execute("SET preserve_insertion_order = false")  # a batch is a set of rows: no reordering buffers
            db.execute("SET enable_progress_bar = false")
            for index, _ in self.sql.lenient_columns(match):
                db.execute(f"CREATE SEQUENCE {unparsed_counter(index)}")
            written = db.execute(f"COPY ({select}) TO {sql_text(str(destination))} ({options})").fetchone()
            counts = dict(db.execute("SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall())
        return (int(written[0]) if written else 0), counts

    def _reconcile(self, source: Path, written: int, window: Window) -> None:
        """Fail the window unless the batch holds as many rows as RECORD mode reads from the file."""
        rows = sum(1 for _ in self._record_reader().read(source, where=str(window)))  # RECORD mode's refusal, if any
        if rows != written:
            raise FileFormatError(
                f"{self.report.stream_name} {window}: the batch holds {written:,} rows but the file {rows:,}; "
                "the window is not bookmarked (run it without batch_config, and report the file)"
            )

    def _explain(self, source: Path, window: Window) -> None:
        """Raise the error RECORD mode gives for this file (row, column, value), if it gives one."""
        for _ in self._record_reader().read(source, where=str(window)):
            pass

    def _record_reader(self) -> RecordReader:
        """A reader of this stream's files as RECORD mode reads them, silent (the run's reader warns)."""
        return RecordReader(self.report, self.reader.timezone, lambda message: None, strict=self.reader.strict)


def _remove(output: Path) -> None:
    """Remove a batch output: a file, or a folder of files."""
    if output.is_dir():
        shutil.rmtree(output, ignore_errors=True)
    else:
        output.unlink(missing_ok=True)


def _first_line(error: Exception) -> str:
    """DuckDB's message, first line only: the rest quotes the row, which may be long and is data."""
    return str(error).strip().splitlines()[0]


def file_stem(tap_name: str, stream_name: str) -> str:
    """A unique stem for the batch files of one stream sync."""
    return f"{tap_name}--{stream_name}-{uuid.uuid4()}"
