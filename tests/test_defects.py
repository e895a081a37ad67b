"""Defects a user could hit: each test here failed before its fix."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import subprocess
import sys
import textwrap
import threading
import zlib

import pytest
from test_faults import emitted_keys, expected_keys, exported_windows, exporter_for
from test_halves import CALLS, calls_file, messages

from conftest import TODAY, TapRun, parse_messages, tap_config
from tap_aircall_analytics.api import client
from tap_aircall_analytics.api.client import AircallClient
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME, REPORTS_BY_STREAM
from tap_aircall_analytics.emit import halves
from tap_aircall_analytics.exports.pipeline import ExportPipeline, OutOfOrder
from tap_aircall_analytics.files.records import RecordReader
from tap_aircall_analytics.planning.windows import Window
from tap_aircall_analytics.run import Run
from tap_aircall_analytics.simulator.data import FileOptions, ReportData, write_csv
from tap_aircall_analytics.tap import TapAircallAnalytics

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
            from tap_aircall_analytics.emit import halves
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


# --- max_disk_mb bounds the files on disk, downloads under way included -------------------

LAST_SIX_DAYS = [Window(TODAY - dt.timedelta(days=d), TODAY - dt.timedelta(days=d)) for d in range(6, 0, -1)]


def served_csv(sim, report_name: str, window: Window) -> bytes:
    """The bytes of the CSV file the simulator makes for `window`, made here on their own."""
    report = REPORTS_BY_API_NAME[report_name]
    data = ReportData(report, window.first, window.last, "UTC", seed=sim.config.seed, calls_per_day=40)
    text = io.StringIO(newline="")
    write_csv(data, text, sim.config.file_options(), sim.config.seed)
    return text.getvalue().encode()


@pytest.mark.parametrize("gzip_downloads", [False, True], ids=["sized", "gzip-encoded"])
def test_downloads_under_way_do_not_take_the_disk_past_max_disk_mb(simulator, monkeypatch, gzip_downloads):
    sim = simulator(rate_limit=100_000, gzip_downloads=gzip_downloads)
    report = "USER_ACTIVITY_CALLS_HANDLED"
    contents = [served_csv(sim, report, window) for window in LAST_SIX_DAYS]
    largest = max(map(len, contents))
    bound = 1.5 * largest  # room for one file, not for two
    ended = threading.Semaphore(0)
    download = AircallClient.download

    def counted_download(self, *args, **kwargs):
        try:
            return download(self, *args, **kwargs)
        finally:
            ended.release()

    monkeypatch.setattr(AircallClient, "download", counted_download)
    exporter, _ = exporter_for(sim, report)
    pipeline = ExportPipeline(max_concurrent=3, max_disk_bytes=bound, stop=exporter.client.stop)
    pipeline.add(exporter, LAST_SIX_DAYS)
    with pipeline:
        files = pipeline.files(exporter.stream)
        first = next(files)
        for _ in range(3):  # each of the three downloads in flight ended: done, or stopped for want of room
            assert ended.acquire(timeout=60)
        on_disk = sum(path.stat().st_size for path in pipeline.workdir.iterdir())
        # The bound holds, but for the one file the stream waits for (nothing is read before it).
        assert on_disk <= bound + largest
        read = [(first.window, first.path.read_bytes())]
        read += [(file.window, file.path.read_bytes()) for file in files]
    assert read == list(zip(LAST_SIX_DAYS, contents))  # every file whole, in order, after the waits


def test_a_file_larger_than_max_disk_mb_is_still_read(simulator):
    sim = simulator(rate_limit=100_000)
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    pipeline = ExportPipeline(max_concurrent=3, max_disk_bytes=1, stop=exporter.client.stop)
    pipeline.add(exporter, LAST_SIX_DAYS)
    with pipeline:
        assert [file.window for file in pipeline.files(exporter.stream)] == LAST_SIX_DAYS
    assert pipeline.peak_disk <= max(len(served_csv(sim, "USER_ACTIVITY_CALLS_HANDLED", w)) for w in LAST_SIX_DAYS)


# --- Streams read their files in the order they were planned --------------------------------


def test_a_stream_that_asks_for_its_files_out_of_turn_is_told_at_once(simulator):
    sim = simulator(rate_limit=100_000)
    planned_first, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    planned_second, _ = exporter_for(sim, "USER_ACTIVITY_CALL_VOLUME_AND_TIME")
    pipeline = ExportPipeline(max_concurrent=1, max_disk_bytes=1, stop=planned_first.client.stop)
    pipeline.add(planned_first, LAST_SIX_DAYS[:2])
    pipeline.add(planned_second, LAST_SIX_DAYS[:1])
    outcome: list[BaseException] = []

    def read(stream: str) -> None:
        try:
            list(pipeline.files(stream))
        except OutOfOrder as error:
            outcome.append(error)

    with pipeline:
        reader = threading.Thread(target=read, args=(planned_second.stream,), daemon=True)
        reader.start()
        reader.join(60)
        assert not reader.is_alive(), "the out-of-turn stream waits for files that cannot come"
        assert [str(error) for error in outcome] == [
            "user_activity_call_volume_and_time's files were asked for before user_activity_calls_handled's were "
            "all read: the run downloads files in the order its streams were planned (user_activity_calls_handled, "
            "user_activity_call_volume_and_time), and streams must be synced in that order"
        ]
        read(planned_first.stream)
        read(planned_second.stream)
        read(planned_first.stream)  # a second time: its files are gone
    assert [str(error) for error in outcome[1:]] == [
        "user_activity_calls_handled's files were asked for a second time: each file is deleted once read"
    ]


def test_a_run_whose_streams_are_synced_out_of_plan_order_stops_with_one_line(simulator, monkeypatch):
    sim = simulator(rate_limit=100_000)
    plan = Run.plan_exports
    monkeypatch.setattr(Run, "plan_exports", lambda run, streams: plan(run, streams[::-1]))
    tap = TapAircallAnalytics(
        config=tap_config(sim, start_date=YESTERDAY.first.isoformat(), end_date=YESTERDAY.last.isoformat())
    )
    for name, stream in tap.streams.items():
        stream.selected = name in ("calls_history", "user_status_history")
    with pytest.raises(SystemExit) as stopped:
        tap.sync_all()
    assert str(stopped.value) == (
        "tap-aircall-analytics: calls_history's files were asked for before user_status_history's were all read: "
        "the run downloads files in the order its streams were planned (user_status_history, calls_history), and "
        "streams must be synced in that order"
    )
