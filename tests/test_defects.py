"""Defects a user could hit: each test here failed before its fix."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import subprocess
import sys
import textwrap
import zlib

import pytest
from test_faults import emitted_keys, expected_keys, exported_windows, exporter_for
from test_halves import CALLS, calls_file, messages

from conftest import TODAY, TapRun, parse_messages, tap_config
from tap_aircall_analytics import client, halves
from tap_aircall_analytics.exports import ExportPipeline
from tap_aircall_analytics.records import RecordReader
from tap_aircall_analytics.reports import REPORTS_BY_STREAM
from tap_aircall_analytics.simulator.data import FileOptions
from tap_aircall_analytics.windows import Window

YESTERDAY = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))


def served_file(sim) -> bytes:
    """The CSV file of the simulator's only export, as it was made."""
    (export,) = sim._exports.values()
    with open(export.path, "rb") as handle:
        return handle.read()


# --- Downloads served with Content-Encoding: gzip ------------------------------------


def test_a_gzip_encoded_download_is_checked_on_the_wire_and_written_decoded(simulator, tmp_path):
    sim = simulator(gzip_downloads=True, calls_per_day=2000)
    exporter, _ = exporter_for(sim)
    export = exporter._await(exporter._request(YESTERDAY), YESTERDAY)
    size = exporter.client.download(export.link, tmp_path / "calls.csv")
    original = served_file(sim)
    assert (tmp_path / "calls.csv").read_bytes() == original and size == len(original)
    assert len(gzip.compress(original, 1)) < size / 2  # Content-Length counted far fewer bytes than were written


def test_a_gzip_encoded_download_cut_short_is_retried_and_arrives_whole(simulator, tmp_path):
    sim = simulator(gzip_downloads=True, cut_download_once=True, calls_per_day=2000)
    exporter, messages = exporter_for(sim)
    pipeline = ExportPipeline(max_concurrent=1, max_disk_bytes=1e12, stop=exporter.client.stop)
    pipeline.add(exporter, [YESTERDAY])
    with pipeline:
        files = pipeline.files(exporter.stream)
        assert next(files).path.read_bytes() == served_file(sim)
        files.close()
    assert [download.status for download in sim.downloads] == [200, 200]
    assert any("download interrupted" in message and "cut off" in message for message in messages)


def test_every_file_of_a_gzip_encoded_run_is_read(simulator):
    sim = simulator(gzip_downloads=True, zipped=True)
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    days = [Window(TODAY - dt.timedelta(days=d), TODAY - dt.timedelta(days=d)) for d in (3, 2, 1)]
    assert exported_windows(exporter, days) == days


def test_decoding_holds_no_more_than_a_chunk_however_well_the_body_compresses():
    body = b"0" * (40 * client.CHUNK_BYTES)
    wire = gzip.compress(body, 9)
    assert len(wire) < client.CHUNK_BYTES / 4  # one chunk on the wire decodes to forty
    chunks = list(client.decoded(iter([wire]), "gzip"))
    assert b"".join(chunks) == body and max(map(len, chunks)) <= client.CHUNK_BYTES


def test_every_gzip_member_and_a_zlib_deflate_body_are_decoded():
    two_members = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n")
    assert b"".join(client.decoded(iter([two_members[:5], two_members[5:]]), "gzip")) == b"a,b\n1,2\n3,4\n"
    assert b"".join(client.decoded(iter([zlib.compress(b"a,b\n")]), "deflate")) == b"a,b\n"
    assert b"".join(client.decoded(iter([b"a,", b"b\n"]), "identity")) == b"a,b\n"


def test_a_gzip_body_that_ends_early_is_a_transfer_failure_not_a_short_file():
    wire = gzip.compress(b"x" * 100_000)
    with pytest.raises(client.TransientError, match="ended before the end of its gzip stream"):
        list(client.decoded(iter([wire[: len(wire) // 2]]), "gzip"))


def test_an_encoding_the_tap_cannot_decode_is_named():
    with pytest.raises(client.AircallError, match="Content-Encoding 'br'"):
        list(client.decoded(iter([b"..."]), "br"))


# --- A large file read on two cores ----------------------------------------------------


def test_a_script_without_a_main_guard_syncs_once_with_a_large_file_on_two_cores(simulator, tmp_path):
    sim = simulator(export_seconds=0, calls_per_day=500, rate_limit=100_000)
    config = tap_config(sim, start_date=YESTERDAY.first.isoformat(), end_date=YESTERDAY.last.isoformat())
    script = tmp_path / "sync.py"
    script.write_text(
        textwrap.dedent(f"""
            import sys
            from tap_aircall_analytics import halves
            from tap_aircall_analytics.tap import TapAircallAnalytics

            halves.SPLIT_BYTES = 1000  # every file is read on two cores
            print("the script runs", file=sys.stderr)
            tap = TapAircallAnalytics(config={config!r})
            for name, stream in tap.streams.items():
                stream.selected = name == "calls_history"
            tap.sync_all()
        """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("the script runs") == 1  # the second half's process did not run the script again
    assert "one core" not in result.stderr  # and it did read its half
    run = parse_messages(result.stdout, TapRun(0, result.stdout, result.stderr))
    report = REPORTS_BY_STREAM["calls_history"]
    keys = emitted_keys(report, run.records["calls_history"])
    assert sorted(keys) == sorted(expected_keys(sim, report, YESTERDAY.first, YESTERDAY.last)) and len(keys) > 400
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()].count("SCHEMA") == 1


@pytest.mark.parametrize(
    "child",
    [
        "import sys; sys.exit(3)",  # stops before it reads its part
        "import sys; sys.stdin.buffer.read(); sys.exit(3)",  # stops after
        "import sys; sys.stdin.buffer.read(); print('not an answer')",  # answers what the tap cannot read
    ],
)
def test_a_second_half_process_that_stops_costs_speed_not_the_window(child, tmp_path, monkeypatch, caplog):
    path = calls_file(tmp_path)
    reader = RecordReader(CALLS, "UTC", lambda message: None)
    whole, _ = messages(reader, path, two_cores=False, monkeypatch=monkeypatch)
    started = []
    monkeypatch.setattr(halves, "_one_core", halves._OneCore())
    monkeypatch.setattr(halves, "child_command", lambda: started.append(child) or [sys.executable, "-c", child])
    with caplog.at_level(logging.WARNING, logger="tap_aircall_analytics"):
        for _ in range(2):  # two large files of one run
            records, count = messages(
                RecordReader(CALLS, "UTC", lambda message: None), path, two_cores=True, monkeypatch=monkeypatch
            )
            assert records == whole and count == len(whole)
    assert len(started) == 1  # the second file went to one core at once
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "the process reading the second half stopped" in warning and "read on one core" in warning
    assert not list(tmp_path.glob("*.second-half"))


def test_bad_cells_counted_by_the_tap_itself_after_a_fallback_are_those_of_the_whole_file(tmp_path, monkeypatch):
    path = calls_file(tmp_path, FileOptions(bad_cells_every=7))
    whole_reader = RecordReader(CALLS, "UTC", lambda message: None)
    whole, _ = messages(whole_reader, path, two_cores=False, monkeypatch=monkeypatch)
    monkeypatch.setattr(halves, "_one_core", halves._OneCore())
    monkeypatch.setattr(halves, "child_command", lambda: [sys.executable, "-c", "import sys; sys.exit(1)"])
    reader = RecordReader(CALLS, "UTC", lambda message: None)
    records, _ = messages(reader, path, two_cores=True, monkeypatch=monkeypatch)
    assert records == whole and reader.unparsed == whole_reader.unparsed and sum(reader.unparsed.values()) > 10
