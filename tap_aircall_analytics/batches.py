"""Export files to BATCH files (JSON lines or Parquet), converted by DuckDB.

In BATCH mode no record needs to exist in Python: DuckDB reads the CSV and writes the
batch file in C, several times faster than building records one by one. The SQL comes
from `batch_sql.py`; this module handles the files and the DuckDB session. A JSON-lines
batch holds exactly the records RECORD mode would emit, and a Parquet batch the same
values with native types (TIMESTAMP WITH TIME ZONE in UTC, DATE, BIGINT, DOUBLE, BOOLEAN).
"""

from __future__ import annotations

import csv
import importlib
import itertools
import shutil
import threading
import typing as t
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_aircall_analytics import spellings
from tap_aircall_analytics.batch_sql import BatchSql, sql_text, unparsed_counter, utc_offsets
from tap_aircall_analytics.records import SAMPLE_ROWS, FileFormatError, HeaderMatch, RecordReader, open_text
from tap_aircall_analytics.spellings import Spelling
from tap_aircall_analytics.windows import Window

FORMATS = {"jsonl": "json", "parquet": "parquet"}
MEMORY_LIMIT = "48MB"  # DuckDB's share of the tap's memory; buffers and row groups are kept small to fit it
PARQUET_ROW_GROUP = 8_192


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
    ) -> None:
        self.reader = reader
        self.report = reader.report
        self.selected = selected
        self.encoding = encoding
        self.storage = storage
        self.file_stem = file_stem
        self.sql = BatchSql(
            reader.report, selected, reader.timezone, json_lines=encoding.format == "jsonl", strict=reader.strict
        )
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
            rows = csv.reader(text)
            header = next(rows, None)
            head = list(itertools.islice(rows, SAMPLE_ROWS))
        match = None if header is None else self.reader.match(header)
        if match is None:
            select = self.sql.empty_select()
        else:
            offsets = utc_offsets(self.reader.timezone, window)
            select = self.sql.select(csv_path, len(header or ()), match, offsets, self._primaries(match, head))
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

    def _primaries(self, match: HeaderMatch, head: list[list[str]]) -> dict[str, Spelling | None]:
        """The spelling each column's first values are in: its SQL is tried first."""
        return {
            name: spellings.detect(reading, (row[index] for row in head if index < len(row) and row[index]))
            for (index, _), (name, reading) in zip(match.positions, self.reader.readings(match).items())
        }

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
            for index, _ in self.sql.lenient_columns(match):
                db.execute(f"CREATE SEQUENCE {unparsed_counter(index)}")
            try:
                written = db.execute(f"COPY ({select}) TO {sql_text(str(destination))} ({options})").fetchone()
            except duckdb.Error as error:
                self._explain(source, window, str(error).strip().splitlines()[0])
            self.rows_written = int(written[0]) if written else 0
            counts = dict(db.execute("SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall())
        for index, column in self.sql.lenient_columns(match):
            if counts.get(unparsed_counter(index)):
                self.reader.count_unparsed(column, counts[unparsed_counter(index)])

    def _explain(self, source: Path, window: Window, duckdb_message: str) -> t.NoReturn:
        """Raise the error RECORD mode gives for this file (row, column, value), else DuckDB's."""
        strict = RecordReader(self.report, self.reader.timezone, lambda message: None, strict=True)
        for _ in strict.read(source, where=str(window)):
            pass
        raise FileFormatError(f"{self.report.stream_name} {window}: {duckdb_message}")


def file_stem(tap_name: str, stream_name: str) -> str:
    """A unique stem for the batch files of one stream sync."""
    return f"{tap_name}--{stream_name}-{uuid.uuid4()}"
