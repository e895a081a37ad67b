"""Hostile export files, in RECORD mode and in BATCH mode (JSON lines and Parquet).

Every case is read by the tap's reader and its batch writer, which must give the same
records, row for row and cell for cell, or the same one-line refusal naming the stream
and the window. The cases of each kind of outcome, the bombs and the full disks also go
through the command line: the simulator serves the file (`serve_file`), TMPDIR is a small
tmpfs of the run's own, and the run must give every row, or one clear line and no
traceback and no bookmark for the window. Its peak memory is measured, and its disk is the
tmpfs: a run that wrote more than the tmpfs holds would stop on a full disk instead.
"""

from __future__ import annotations

import bz2
import codecs
import datetime as dt
import io
import json
import os
import signal
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
from helpers import PEAK_RSS, RSS_BOUND_MB
from helpers import batch_records as records_of_batches
from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from conftest import CREDENTIALS, FAST_POLLING, TAP, TODAY, TapRun, parse_messages, selected_catalog
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME
from tap_aircall_analytics.emit.batches import BatchFileWriter
from tap_aircall_analytics.files.records import (
    MAX_ROW_CHARS,
    SAMPLE_CHARS,
    FileFormatError,
    HeaderMatch,
    RecordReader,
    json_schema,
)
from tap_aircall_analytics.planning.windows import Window

STREAM = "user_activity_calls_handled"
DAY = TODAY - dt.timedelta(days=3)
WINDOW = DAY.isoformat()
HEADER = "Date,User ID,User name,Team,Inbound calls answered,Outbound calls answered,Missed calls,Calls handled"
MODES = ("record", "jsonl", "parquet")
TMPFS_MB = 96  # the TMPDIR of every run
RUN_SECONDS = 300  # the longest a run may take: a wait without a deadline fails the test instead of hanging it


def row(user: int, name: str = "Ann", team: str = "Support") -> str:
    return f"{DAY},{user},{name},{team},1,2,3,6"


def csv_bytes(*rows: str, ending: str = "\n") -> bytes:
    return (ending.join([HEADER, *rows]) + ending).encode()


GOOD = [row(1), row(2, "Bo"), row(3, "Cy")]


@dataclass
class Outcome:
    """What one run of the tap gave: its messages, its records (from RECORD or BATCH messages), its peak memory."""

    run: TapRun
    records: list[dict]
    peak_rss_mb: float
    cpu_seconds: float  # the tap's own, user and system

    @property
    def bookmark(self) -> str | None:
        return self.run.bookmark(STREAM)

    @property
    def last_line(self) -> str:
        return self.run.stderr.strip().splitlines()[-1]


@pytest.fixture
def tmpfs(tmp_path):
    """A folder on a tmpfs of TMPFS_MB, unmounted after the test (the tests run as root, as CI does)."""
    mounted: list[Path] = []

    def mount(size_mb: int = TMPFS_MB) -> Path:
        folder = tmp_path / f"tmpfs-{len(mounted)}"
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)], check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def hostile(simulator, catalog, tmp_path, tmpfs):
    """Serve `data` as every export's file and run the tap on one day of STREAM, in `mode`."""

    def run(
        data: bytes | Path,
        mode: str,
        *,
        zipped: bool = False,
        tmpdir_mb: int = TMPFS_MB,
        faults: dict | None = None,
        **settings,
    ) -> Outcome:
        served = data if isinstance(data, Path) else tmp_path / "served"
        if not isinstance(data, Path):
            served.write_bytes(data)
        sim = simulator(serve_file=str(served), zipped=zipped, rate_limit=100_000, **(faults or {}))
        config = {
            **CREDENTIALS,
            **FAST_POLLING,
            "api_url": sim.api_url,
            "start_date": WINDOW,
            "end_date": WINDOW,
            **settings,
        }
        batches = tmp_path / f"batches-{mode}"
        if mode != "record":
            batches.mkdir(exist_ok=True)
            compression = "gzip" if mode == "jsonl" else "none"
            config["batch_config"] = {
                "encoding": {"format": mode, "compression": compression},
                "storage": {"root": batches.as_uri()},
            }
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / "catalog.json").write_text(json.dumps(selected_catalog(catalog, [STREAM])))
        env = {key: value for key, value in os.environ.items() if not key.startswith("TAP_AIRCALL_ANALYTICS_")}
        env["TMPDIR"] = str(tmpfs(tmpdir_mb))
        command = [*TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
        stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
        peak = tmp_path / "peak_rss_kb"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-c", PEAK_RSS, str(peak), *command],
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # the tap with it: a run past its time is ended whole
            )
            try:
                process.wait(timeout=RUN_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                pytest.fail(f"the run took more than {RUN_SECONDS} s: a wait without a deadline")
        run = parse_messages(
            stdout.read_text(), TapRun(process.returncode, stdout.read_text(), stderr.read_text(errors="replace"))
        )
        records = run.records[STREAM] if mode == "record" else batch_records(run.stdout, mode)
        peak_kb, cpu = peak.read_text().split()
        return Outcome(run, records, int(peak_kb) / 1024, float(cpu))

    return run


def batch_records(stdout: str, mode: str) -> list[dict]:
    """The records of STREAM's BATCH messages' files, as RECORD mode would write them."""
    return records_of_batches(SimpleNamespace(stdout=stdout), mode).get(STREAM, [])


def by_user(records: list[dict]) -> dict[int, dict]:
    """Records by user (a batch is a set of rows, in no particular order); no user twice."""
    keyed = {record["user_id"]: record for record in records}
    assert len(keyed) == len(records), "a row came out twice"
    return keyed


def assert_loaded(outcome: Outcome, users: dict[int, str]) -> None:
    """Exit 0, the window bookmarked, exactly these users' rows with these names, nothing shifted."""
    assert outcome.run.returncode == 0, outcome.run.stderr[-3000:]
    assert "Traceback" not in outcome.run.stderr
    assert_rows(outcome.records, users)
    assert outcome.bookmark == (DAY + dt.timedelta(days=1)).isoformat()
    assert outcome.peak_rss_mb < RSS_BOUND_MB


def assert_rows(records: list[dict], users: dict[int, str]) -> None:
    """Exactly these users' rows, with these names, every other cell in its column: nothing lost or shifted."""
    keyed = by_user(records)
    assert {user: record["user_name"] for user, record in keyed.items()} == users
    for record in keyed.values():
        assert (record["date"], record["team"], record["calls_handled"]) in ((WINDOW, "Support", 6), (WINDOW, "S", 6))
        assert (record["inbound_calls_answered"], record["outbound_calls_answered"], record["missed_calls"]) == (
            1,
            2,
            3,
        )
        assert record["_extra_columns"] is None and record["_unparsed_values"] is None


def assert_refused(outcome: Outcome, *needles: str) -> None:
    """Exit 1 on one clear line naming the stream and the window; no traceback, no bookmark for the window."""
    assert outcome.run.returncode == 1, outcome.run.stderr[-3000:]
    assert "Traceback" not in outcome.run.stderr, outcome.run.stderr[-3000:]
    line = outcome.last_line
    assert line.startswith(f"tap-aircall-analytics: {STREAM} {WINDOW}: "), line
    for needle in needles:
        assert needle in line, line
    assert len(line) < 400, line  # a sentence, not a row of data
    assert outcome.bookmark is None
    assert outcome.peak_rss_mb < RSS_BOUND_MB


# --- the cases ---------------------------------------------------------------------------------------------


def zipped(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", method) as writer:
        writer.writestr("export.csv", data)
    return archive.getvalue()


LONG_NAME = "N" * 3_000_000  # longer than DuckDB's default line (2 MB)
MULTI_LINE_NAME = "line\n" * 600_000  # 3 MB in a quoted field that holds 600,000 line endings
ONE_TO_THREE = {1: "Ann", 2: "Bo", 3: "Cy"}
WHOLE_ZIP = zipped(csv_bytes(*[row(user) for user in range(1, 2000)]))


@dataclass(frozen=True)
class Case:
    """A hostile file, and what every mode must make of it: these users' rows, or a refusal holding these words."""

    data: bytes
    users: dict[int, str] | None = None
    refusal: tuple[str, ...] = ()
    warning: str = ""
    zipped: bool = False  # what the API announces
    strict: bool = False
    end_to_end: bool = False  # also run through the command line, in every mode


CASES = {
    # rows
    "field-of-3-mb": Case(csv_bytes(row(1), row(2, LONG_NAME), row(3, "Cy")), {1: "Ann", 2: LONG_NAME, 3: "Cy"}),
    "quoted-field-of-3-mb-on-600k-lines": Case(
        csv_bytes(row(1), row(2, f'"{MULTI_LINE_NAME}"'), row(3, "Cy")),
        {1: "Ann", 2: MULTI_LINE_NAME, 3: "Cy"},
        end_to_end=True,
    ),
    "field-over-16-mb": Case(
        csv_bytes(row(1), row(2, "N" * (17 << 20)), row(3, "Cy")),
        refusal=("field larger than field limit",),
        end_to_end=True,
    ),
    "cell-too-many": Case(csv_bytes(row(1), row(2) + ",7", row(3)), refusal=("row 3 has 9 fields; the header has 8",)),
    "cell-too-few": Case(
        csv_bytes(row(1), f"{DAY},2,Bo,Support,1,2,3", row(3)), refusal=("row 3 has 7 fields; the header has 8",)
    ),
    "unquoted-comma": Case(
        csv_bytes(row(1), row(2, "Dupont, Jean"), row(3)),
        refusal=("row 3 has 9 fields; the header has 8",),
        end_to_end=True,
    ),
    "line-of-empty-quotes": Case(csv_bytes(row(1), '""', row(3)), refusal=("row 3 has 1 fields; the header has 8",)),
    "text-after-a-closing-quote": Case(
        csv_bytes(row(1), row(2, '"Bo"x'), row(3)), refusal=("',' expected after '\"'",)
    ),
    "quote-left-open": Case(csv_bytes(row(1), row(2, '"Bo'), row(3, "Cy")), refusal=("unexpected end of data",)),
    "blank-lines-crlf": Case(
        csv_bytes(row(1), "", "", row(2, "Bo"), "", row(3, "Cy"), "", ending="\r\n"), ONE_TO_THREE
    ),
    # Not RFC 4180, and the fast row count of BATCH mode cannot follow it: the file is counted again row by row.
    "quote-inside-unquoted-fields": Case(
        csv_bytes(row(1, 'An"n'), row(2, "Bo"), row(3, 'C"y')), {1: 'An"n', 2: "Bo", 3: 'C"y'}
    ),
    # files
    "zero-bytes": Case(b"", {}, warning="the export file has no header row (0 bytes)", end_to_end=True),
    "bom-alone": Case(codecs.BOM_UTF8, {}, warning="the export file has no header row (3 bytes)"),
    "zero-bytes-strict": Case(b"", strict=True, refusal=("has no header row (0 bytes)", "strict_values")),
    "truncated-zip": Case(
        WHOLE_ZIP[: len(WHOLE_ZIP) // 2], zipped=True, refusal=("the zip archive is damaged or truncated",)
    ),
    "csv-announced-as-zip": Case(
        csv_bytes(*GOOD),
        ONE_TO_THREE,
        zipped=True,
        warning="the export was announced as a zip archive but is a plain CSV",
        end_to_end=True,
    ),
    **{
        f"{name}-zip-announced-as-csv": Case(
            zipped(csv_bytes(*GOOD), method),
            ONE_TO_THREE,
            warning="the export was announced as a plain CSV but is a zip archive",
            end_to_end=method == zipfile.ZIP_DEFLATED,
        )
        for name, method in [("deflate", zipfile.ZIP_DEFLATED), ("bzip2", zipfile.ZIP_BZIP2), ("stored", 0)]
    },
    "utf16": Case(
        codecs.BOM_UTF16_LE + csv_bytes(*GOOD).decode().encode("utf-16-le"),
        refusal=("the file is UTF-16 text, not UTF-8",),
        end_to_end=True,
    ),
    "utf16-without-bom": Case(csv_bytes(*GOOD).decode().encode("utf-16-le"), refusal=("the file looks like UTF-16",)),
    "invalid-utf8": Case(
        csv_bytes(row(1), row(2, "B?n")).replace(b"B?n", b"B\xffn"), refusal=("the file is not UTF-8 text (byte 0xff",)
    ),
}


def read_in_process(case: Case, mode: str, tmp_path: Path) -> tuple[list[dict] | None, str, list[str]]:
    """What the tap's reader (RECORD) or batch writer (BATCH) makes of the file: records or the error, and warnings."""
    report = REPORTS_BY_API_NAME["USER_ACTIVITY_CALLS_HANDLED"]
    path = tmp_path / f"export-{mode}"
    path.write_bytes(case.data)
    warnings: list[str] = []
    reader = RecordReader(report, "UTC", warnings.append, strict=case.strict)
    window = Window(DAY, DAY)
    try:
        if mode == "record":
            return list(reader.read(path, zipped=case.zipped, where=WINDOW)), "", warnings
        (tmp_path / "out").mkdir(exist_ok=True)
        compression = "gzip" if mode == "jsonl" else "none"
        writer = BatchFileWriter(
            reader,
            list(json_schema(report)["properties"]),
            BaseBatchFileEncoding(format=mode, compression=compression),
            StorageTarget(root=(tmp_path / "out").as_uri()),
            f"batch-{mode}",
        )
        urls = writer.write(path, zipped=case.zipped, window=window, workdir=tmp_path)
        return batch_records(json.dumps({"type": "BATCH", "stream": STREAM, "manifest": urls}), mode), "", warnings
    except FileFormatError as error:
        return None, str(error), warnings


@pytest.mark.parametrize("name", CASES)
def test_every_mode_reads_a_hostile_file_alike(tmp_path, name):
    """The same records (row for row, cell for cell), or the same one-line refusal, and the same warning."""
    case = CASES[name]
    outcomes = {mode: read_in_process(case, mode, tmp_path) for mode in MODES}
    for mode, (records, error, warnings) in outcomes.items():
        if case.refusal:
            assert records is None, mode
            assert error.startswith(f"{STREAM} {WINDOW}: ") and "\n" not in error, (mode, error[:300])
            assert all(needle in error for needle in case.refusal), (mode, error)
            assert len(error) < 400, mode  # a sentence, not a row of data
        else:
            assert error == "", (mode, error[:300])
            assert_rows(records or [], case.users or {})
        if case.warning:
            assert any(f"{STREAM} {WINDOW}: {case.warning}" in warning for warning in warnings), (mode, warnings)
    assert len({error for _, error, _ in outcomes.values()}) == 1, "the modes refuse with different lines"


END_TO_END = [name for name, case in CASES.items() if case.end_to_end]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", END_TO_END)
def test_the_command_line_gives_one_line_or_every_row_with_memory_and_disk_bounded(hostile, name, mode):
    case = CASES[name]
    outcome = hostile(case.data, mode, zipped=case.zipped, strict_values=case.strict)
    if case.refusal:
        assert_refused(outcome, *case.refusal)
    else:
        assert_loaded(outcome, case.users or {})
    if case.warning:
        assert f"{STREAM} {WINDOW}: {case.warning}" in outcome.run.stderr


# --- bombs and full disks ----------------------------------------------------------------------------------


def write_zip(path: Path, method: int, compressed: list[bytes], *, claimed_size: int, crc: int) -> None:
    """A zip archive of one member, written by hand so that its headers say what we like."""
    name = b"export.csv"
    size = sum(map(len, compressed))
    fields = (20, 0, method, 0, 0x21, crc, size, claimed_size, len(name))
    with open(path, "wb") as archive:
        archive.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + name)
        for part in compressed:
            archive.write(part)
        directory = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, 0) + name
        archive.write(directory)
        archive.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), 30 + len(name) + size, 0))


def deflate_bomb(path: Path, expanded_mib: int) -> None:
    """A header, then `expanded_mib` MiB of line endings, deflated: about 1 KB per MiB, written in a moment.

    After a full flush the compressor starts afresh, so one MiB compresses to the same bytes
    every time: they are computed once and written over and over. The headers lie: they
    claim 1,000 bytes and a CRC of 0.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(HEADER.encode() + b"\n") + compressor.flush(zlib.Z_FULL_FLUSH)
    mebibyte = b"\n" * (1 << 20)
    block = compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    write_zip(
        path,
        zipfile.ZIP_DEFLATED,
        [head, *[block] * (expanded_mib - 1), compressor.flush()],
        claimed_size=1_000,
        crc=0,
    )


@pytest.fixture(scope="session")
def bzip2_bomb(tmp_path_factory) -> Path:
    """A header, then 400 MiB of line endings, in a bzip2 zip of a few hundred bytes (made once per session)."""
    path = tmp_path_factory.mktemp("bombs") / "bzip2.zip"
    compressor = bz2.BZ2Compressor(9)
    parts = [compressor.compress(HEADER.encode() + b"\n")]
    mebibyte = b"\n" * (1 << 20)
    parts += [compressor.compress(mebibyte) for _ in range(400)]
    parts.append(compressor.flush())
    write_zip(path, zipfile.ZIP_BZIP2, parts, claimed_size=1_000, crc=0)
    return path


#: RECORD mode reads a bomb's blank lines one by one (about a microsecond each), so its bound is kept small here.
BOUNDS = {"record": {"max_unzipped_mb": 5}, "jsonl": {"max_disk_mb": 20}, "parquet": {"max_disk_mb": 20}}
BOUND_LINES = {
    "record": "the file expands to more than 5 MB unzipped; the bound is max_unzipped_mb",
    "jsonl": "the file expands to more than 20 MB unzipped; the bound is max_disk_mb",
    "parquet": "the file expands to more than 20 MB unzipped; the bound is max_disk_mb",
}


@pytest.mark.parametrize("mode", MODES)
def test_a_deflate_bomb_with_lying_headers_stops_at_its_bound_with_memory_and_disk_flat(hostile, tmp_path, mode):
    bomb = tmp_path / "bomb.zip"
    deflate_bomb(bomb, 4_300)  # 4.3 GB unzipped from a 4 MB file, whose headers claim 1,000 bytes
    assert bomb.stat().st_size < 5_000_000
    assert_refused(hostile(bomb, mode, zipped=True, **BOUNDS[mode]), BOUND_LINES[mode])


@pytest.mark.parametrize("mode", MODES)
def test_a_bzip2_bomb_stops_at_its_bound_with_memory_and_disk_flat(hostile, bzip2_bomb, mode):
    # zipfile's own reader holds all 400 MiB at once here, whatever the bound: the RSS bound tells.
    assert bzip2_bomb.stat().st_size < 10_000
    assert_refused(hostile(bzip2_bomb, mode, zipped=True, **BOUNDS[mode]), BOUND_LINES[mode])


@pytest.mark.parametrize("mode", MODES)
def test_a_download_into_a_full_tmpdir_is_one_line(hostile, mode):
    rows = [row(user, "N" * 1000) for user in range(1, 6000)]  # 6 MB, in a TMPDIR of 4 MB
    outcome = hostile(csv_bytes(*rows), mode, tmpdir_mb=4)
    assert_refused(outcome, "no space left in", "for the download", "TMPDIR")


@pytest.mark.parametrize("mode", MODES)
def test_a_zip_that_unzips_past_a_full_tmpdir_is_one_line_in_batch_mode_and_read_in_record_mode(hostile, mode):
    names = {user: f"{user:05d}" + "N" * 1000 for user in range(1, 6000)}  # 6 MB unzipped, in a TMPDIR of 4 MB
    archive = zipped(csv_bytes(*[row(user, name) for user, name in names.items()]))
    outcome = hostile(archive, mode, zipped=True, tmpdir_mb=4)
    if mode == "record":  # read as it is unzipped: nothing goes to disk
        assert_loaded(outcome, names)
    else:
        assert_refused(outcome, "no space left in", "for the batch", "TMPDIR")


# --- bounds by construction: time, memory, disk and wall clock, whatever the input's shape ---------------------

CPU_BUDGET_SECONDS = 30  # a run here needs a few seconds of CPU; the quadratic passes these sizes met took hours


@pytest.mark.parametrize("mode", MODES)
def test_a_cell_of_1_mb_that_does_not_parse_costs_seconds_and_is_quoted_short(hostile, mode):
    cell = "?" * 1_000_000
    outcome = hostile(csv_bytes(row(1), f"{DAY},2,Bo,Support,{cell},2,3,6", row(3)), mode)
    assert outcome.run.returncode == 0, outcome.run.stderr[-3000:]
    assert "Traceback" not in outcome.run.stderr
    records = by_user(outcome.records)
    assert records[2]["inbound_calls_answered"] is None
    assert records[2]["_unparsed_values"] == {"inbound_calls_answered": cell}  # kept whole
    assert max(map(len, outcome.run.stderr.splitlines())) < 1000  # what a log line quotes is cut
    assert outcome.cpu_seconds < CPU_BUDGET_SECONDS
    assert outcome.peak_rss_mb < RSS_BOUND_MB


@pytest.mark.parametrize("mode", MODES)
def test_a_header_of_200000_columns_is_refused_in_seconds(hostile, mode):
    header = HEADER + "".join(f",Extra {index}" for index in range(200_000))
    data = (header + "\n" + row(1) + "," * 200_000 + "\n").encode()
    outcome = hostile(data, mode)
    assert_refused(outcome, "the header row has 200,008 columns; the tap reads at most 10,000")
    assert outcome.cpu_seconds < CPU_BUDGET_SECONDS


def test_a_header_of_many_repeated_and_unknown_columns_is_matched_in_linear_time():
    report = REPORTS_BY_API_NAME["USER_ACTIVITY_CALLS_HANDLED"]
    header = HEADER.split(",") + ["Date"] * 50_000 + [f"Date ({index})" for index in range(2, 50_000)]
    header += [f"Extra {index}" for index in range(100_000)]
    started = os.times()
    match = HeaderMatch.of(report, header)  # the width bound comes after: matching itself must be linear
    spent = os.times()
    assert spent.user + spent.system - started.user - started.system < 5  # a set rebuilt per column: hours
    labels = [label for _, label in match.extras]
    assert len(set(labels)) == len(labels) == len(header) - 8  # every extra column under a label of its own
    assert labels[:2] == ["Date (2)", "Date (3)"] and labels[49_999:50_001] == ["Date (50001)", "Date (2) (2)"]
    warnings: list[str] = []
    RecordReader(report, "UTC", warnings.append).match(header)
    assert len(warnings) <= 22 and max(map(len, warnings)) < 2000  # 20 labels named at most, then a count


@pytest.mark.parametrize("mode", MODES)
def test_a_row_of_400_mb_in_a_small_bzip2_zip_is_refused_with_memory_flat(hostile, tmp_path, mode):
    bomb = tmp_path / "row.zip"
    compressor = bz2.BZ2Compressor(9)
    parts = [compressor.compress(f"{HEADER}\n{DAY},1,".encode())]
    mebibyte = b"N" * (1 << 20)
    parts += [compressor.compress(mebibyte) for _ in range(400)]
    parts.append(compressor.flush())
    write_zip(bomb, zipfile.ZIP_BZIP2, parts, claimed_size=1_000, crc=0)
    assert bomb.stat().st_size < 10_000
    outcome = hostile(bomb, mode, zipped=True, max_disk_mb=50)
    if mode == "record":  # read as it is unzipped: the row stops at its bound
        assert_refused(outcome, "a row is longer than 18 MiB, the most the tap reads")
    else:  # unzipped to TMPDIR first
        assert_refused(outcome, "the file expands to more than 50 MB unzipped; the bound is max_disk_mb")


def test_the_rows_held_to_choose_readers_are_bounded_in_characters(tmp_path):
    path = tmp_path / "long-rows.csv"
    names = {user: "N" * 3_000_000 for user in range(1, 40)}  # 40 rows of 3 MB: 120 MB if all held
    with open(path, "w") as handle:
        handle.write(HEADER + "\n")
        for user, name in names.items():
            handle.write(row(user, name) + "\n")
    reader = RecordReader(REPORTS_BY_API_NAME["USER_ACTIVITY_CALLS_HANDLED"], "UTC", lambda message: None)
    rows = reader.records(path)
    first = next(rows)
    frame = rows.gi_frame
    assert frame is not None
    held = sum(len(cell) for kept in frame.f_locals["head"] for cell in kept)
    assert held <= SAMPLE_CHARS + MAX_ROW_CHARS  # a few rows, not all 40
    assert_rows([msgspec.to_builtins(record) for record in (first, *rows)], names)


@pytest.mark.parametrize("mode", MODES)
def test_a_download_that_never_ends_stops_at_max_disk_mb(hostile, mode):
    outcome = hostile(csv_bytes(*GOOD), mode, faults={"endless_download": True}, tmpdir_mb=40, max_disk_mb=20)
    assert_refused(outcome, "the file is larger than max_disk_mb (20 MB) allows")


@pytest.mark.parametrize("mode", MODES)
def test_a_small_gzip_encoded_download_that_decodes_to_gigabytes_stops_at_max_disk_mb(hostile, mode):
    outcome = hostile(csv_bytes(*GOOD), mode, faults={"gzip_bomb_mb": 300}, tmpdir_mb=40, max_disk_mb=20)
    assert_refused(outcome, "the file is larger than max_disk_mb (20 MB) allows")


@pytest.mark.parametrize("mode", MODES)
def test_a_download_that_trickles_stops_at_its_deadline(hostile, mode):
    rows = [row(user, "N" * 100) for user in range(1, 100)]  # 12 KB, a byte every 0.2 s: 40 minutes
    outcome = hostile(csv_bytes(*rows), mode, faults={"trickle_seconds": 0.2}, download_timeout_minutes=0.05)
    assert_refused(outcome, "the download took longer than 0.05 minutes", "download_timeout_minutes")


@pytest.mark.parametrize("mode", MODES)
def test_a_40_mb_file_with_a_stray_quote_gives_every_row(hostile, mode):
    names = {user: f"{user:06d}" + "N" * 240 for user in range(1, 160_001)}
    names[2] = 'A stray " quote'  # read as it is (not RFC 4180): the quotes of the file are odd from here on
    for user in range(100_000, 160_001, 1_000):  # past the middle, quoted cells over two lines
        names[user] = f"Two\nlines {user}"
    cells = {user: f'"{name}"' if "\n" in name else name for user, name in names.items()}
    outcome = hostile(csv_bytes(*[row(user, cell) for user, cell in cells.items()]), mode)
    if mode == "record":
        assert_loaded(outcome, names)
    else:  # DuckDB cannot follow a quote that opens no field: one line, and what to do (it ran out of memory)
        assert_refused(outcome, "although RECORD mode can: run this window without batch_config")
