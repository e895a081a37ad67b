"""One export pipeline for the whole run: every stream's exports in flight at once, in emission order,
under one disk bound; a failure or a kill anywhere loses nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import signal
import subprocess
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    assert_leftovers_removed,
    emitted_keys,
    expected_keys,
    exporter_for,
    read_until,
    rest_of_output,
    start_tap,
)

from conftest import TAP, TODAY, TapRun, parse_messages, selected_catalog, tap_config
from tap_aircall_analytics.api.client import AircallClient
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME, REPORTS_BY_STREAM
from tap_aircall_analytics.exports.pipeline import ExportPipeline, OutOfOrder, WindowFailed
from tap_aircall_analytics.planning.windows import Window
from tap_aircall_analytics.run import Run
from tap_aircall_analytics.simulator.data import ReportData, write_csv
from tap_aircall_analytics.tap import TapAircallAnalytics

FIRST, LAST = TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=1)
YESTERDAY = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))


def posted(sim) -> list[tuple[str, str]]:
    """(report, first day) of each export request, in the order the API received them."""
    return [
        (body["input"]["reportName"], body["input"]["filter"]["dateFilter"]["absoluteRange"]["fromDate"])
        for method, _, body in sim.api_requests
        if method == "POST"
    ]


def test_exports_are_requested_in_emission_order_across_streams(simulator, run_tap):
    sim = simulator(rate_limit=100_000)
    streams = ["calls_history", "user_activity_calls_handled", "user_status_history"]
    run = run_tap(
        tap_config(
            sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=2, max_concurrent_exports=1
        ),
        streams=streams,
    )
    emitted = list(
        dict.fromkeys(
            json.loads(line)["stream"] for line in run.stdout.splitlines() if json.loads(line)["type"] == "RECORD"
        )
    )
    assert sorted(emitted) == sorted(streams)
    assert posted(sim) == [
        (REPORTS_BY_STREAM[stream].api_name, day.isoformat())
        for stream in emitted
        for day in (FIRST, FIRST + dt.timedelta(2))
    ]


def test_all_twelve_streams_wait_together_and_every_record_arrives_once(simulator, run_tap):
    sim = simulator(hold_exports=True, rate_limit=100_000)
    config = tap_config(
        sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=2, max_concurrent_exports=24
    )
    with ThreadPoolExecutor(1) as background:
        running = background.submit(run_tap, config)
        # Every export is held PENDING: the tap asks for all 24 before any completes, or never gets here.
        all_in_flight = sim.wait_until(lambda: sum(sim.exports_created.values()) == 24)
        downloads_before_release = len(sim.downloads)
        sim.release_exports()
        run = running.result()
    assert all_in_flight and downloads_before_release == 0
    assert sum(sim.exports_created.values()) == 24
    for report in REPORTS:
        emitted = Counter(emitted_keys(report, run.records[report.stream_name]))
        assert emitted == Counter(expected_keys(sim, report, FIRST, LAST)), report.stream_name
        assert run.bookmark(report.stream_name) == TODAY.isoformat()


def test_progress_shows_the_run_wide_picture_while_waiting(simulator, catalog, tmp_path):
    sim = simulator(hold_exports=True, rate_limit=100_000)
    streams = ["calls_history", "user_activity_calls_handled", "user_status_history"]
    (tmp_path / "config.json").write_text(
        json.dumps(tap_config(sim, start_date=LAST.isoformat(), end_date=LAST.isoformat(), max_concurrent_exports=2))
    )
    (tmp_path / "catalog.json").write_text(json.dumps(selected_catalog(catalog, streams)))
    command = [*TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)  # ends a run that never shows the picture: the test fails
    watchdog.start()
    try:
        # The exports are held until the picture is shown, so it is shown with all of them pending.
        logged = []
        for logged_line in process.stderr:
            logged.append(logged_line)
            if "waiting for calls_history" in logged_line:
                break
    finally:
        sim.release_exports()
    stdout, _ = process.communicate(timeout=120)
    watchdog.cancel()
    line = logged[-1].rstrip() if logged else ""
    assert line.endswith(f"waiting for calls_history {LAST}: exports ready 0, pending 2, queued 1; 0.0 MB on disk"), (
        "".join(logged)[-3000:]
    )
    assert process.returncode == 0 and '"RECORD"' in stdout


def test_each_window_is_bookmarked_after_its_records_in_window_order(simulator, run_tap):
    sim = simulator(rate_limit=100_000, export_seconds=0.3)
    streams = ["user_activity_calls_handled", "user_status_history"]
    run = run_tap(
        tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=1, lookback_days=0),
        streams=streams,
    )
    seen: dict[str, set[str]] = {stream: set() for stream in streams}
    marks: dict[str, list[str]] = {stream: [] for stream in streams}
    for line in run.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            record = message["record"]
            seen[message["stream"]].add(record.get("date") or record["started_at"][:10])
        elif message["type"] == "STATE":
            for stream in streams:
                mark = message["value"].get("bookmarks", {}).get(stream, {}).get("replication_key_value")
                if mark and (not marks[stream] or marks[stream][-1] != mark):
                    marks[stream].append(mark)
                    if stream == "user_activity_calls_handled":  # every day before the mark was emitted
                        before = (dt.date.fromisoformat(mark) - FIRST).days
                        assert {(FIRST + dt.timedelta(d)).isoformat() for d in range(before)} <= seen[stream]
    for stream in streams:  # one mark per window, in window order; the last one is today
        assert marks[stream] == [(FIRST + dt.timedelta(d)).isoformat() for d in range(1, 5)], stream


def test_a_failure_in_the_third_stream_ends_the_run_without_waiting_for_the_fourth(
    simulator, run_tap, tmp_path, monkeypatch
):
    streams = [report.stream_name for report in REPORTS[3:7]]
    # The other exports never complete: a run that waited for them would never end (run_tap's timeout).
    sim = simulator(hold_exports=True, fail_report=REPORTS[5].api_name, rate_limit=100_000)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    run = run_tap(
        tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=2),
        streams=streams,
        check=False,
        timeout=120,
    )
    assert run.returncode == 1
    last_line = run.stderr.strip().splitlines()[-1]
    either_window = f"(?:{FIRST}|{FIRST + dt.timedelta(days=2)})"  # both fail; the first to is reported
    assert re.fullmatch(
        rf"tap-aircall-analytics: {streams[2]} {either_window}: the export failed twice, even for "
        "one day: Report generation failed: report unavailable",
        last_line,
    ), last_line
    assert Counter(report for report, _ in posted(sim))[REPORTS[6].api_name] == 2  # the fourth was in flight
    assert not run.records and not any(run.bookmark(stream) for stream in streams)
    assert_leftovers_removed(tmp_path)


def test_sigterm_with_every_stream_in_flight_stops_cleanly(simulator, catalog, tmp_path):
    sim = simulator(export_seconds=0.2, calls_per_day=200, rate_limit=100_000)
    config = tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=1, lookback_days=0)
    process = start_tap(tmp_path, catalog, config, None, [report.stream_name for report in REPORTS])
    seen = read_until(process, 500)
    sim.hold_exports()  # what is in flight now never completes: only the signal can end the run
    process.send_signal(signal.SIGTERM)
    rest = rest_of_output(process)
    assert process.returncode == 128 + signal.SIGTERM
    run = parse_messages(seen + rest, TapRun(process.returncode, seen + rest, ""))
    check_bookmarks_cover_only_emitted_days(sim, run)
    assert_leftovers_removed(tmp_path)


def test_killed_while_files_wait_on_disk_a_rerun_loses_nothing(simulator, catalog, tmp_path):
    streams = ["calls_history", "user_activity_ringing_attempts", "user_status_history"]
    # Each window's records outgrow the pipe to this test, so the tap blocks on stdout while it holds files.
    sim = simulator(export_seconds=0.1, calls_per_day=3000, rate_limit=100_000)
    config = tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=1, lookback_days=0)
    process = start_tap(tmp_path, catalog, config, None, streams)
    seen = read_until(process, 300)
    # The tap is held on stdout by its first window; other windows' files are downloaded meanwhile.
    assert sim.wait_until(lambda: served(sim) >= 3)
    files_waiting = any(any((tmp_path / name).iterdir()) for name in _workdirs(tmp_path))
    process.kill()
    killed = parse_messages(seen + rest_of_output(process), TapRun(-9, "", ""))
    assert files_waiting
    rerun_process = start_tap(tmp_path, catalog, config, killed.state or None, streams)
    out = rest_of_output(rerun_process)
    assert rerun_process.returncode == 0
    rerun = parse_messages(out, TapRun(0, out, ""))
    for stream in streams:
        report = REPORTS_BY_STREAM[stream]
        together = set(emitted_keys(report, killed.records[stream] + rerun.records[stream]))
        assert together == set(expected_keys(sim, report, FIRST, LAST)), stream
    check_bookmarks_cover_only_emitted_days(sim, killed)
    assert_leftovers_removed(tmp_path)


def served(sim) -> int:
    """Downloads the download host answered with the file."""
    return len([download for download in sim.downloads if download.status == 200])


def _workdirs(folder) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name.startswith("tap-aircall-analytics-")]


def check_bookmarks_cover_only_emitted_days(sim, run: TapRun) -> None:
    """Every day before a stream's bookmark had all its records emitted."""
    for stream, bookmark in run.state.get("bookmarks", {}).items():
        mark = bookmark.get("replication_key_value")
        if mark and dt.date.fromisoformat(mark) > FIRST:
            report = REPORTS_BY_STREAM[stream]
            done = set(expected_keys(sim, report, FIRST, dt.date.fromisoformat(mark) - dt.timedelta(days=1)))
            assert done <= set(emitted_keys(report, run.records[stream])), stream


def eight_days_three_at_a_time(sim, max_disk_bytes: float) -> tuple[ExportPipeline, str]:
    """A pipeline for eight one-day windows of one report, three exports in flight; and the stream."""
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    pipeline = ExportPipeline(max_concurrent=3, max_disk_bytes=max_disk_bytes, stop=exporter.client.stop)
    pipeline.add(
        exporter, [Window(TODAY - dt.timedelta(days=d), TODAY - dt.timedelta(days=d)) for d in range(8, 0, -1)]
    )
    return pipeline, exporter.stream


def test_the_disk_bound_holds_back_new_exports_until_files_are_read(simulator, tmp_path):
    sim, size = one_file_of_room(simulator, tmp_path)
    pipeline, stream = eight_days_three_at_a_time(sim, max_disk_bytes=size)  # room for one file
    created_while_holding = []
    with pipeline:
        for file in pipeline.files(stream):
            # The exports in flight complete meanwhile (their downloads may wait for room).
            assert sim.wait_until(lambda: sim.exports_ready() == sum(sim.exports_created.values()))
            created_while_holding.append(sum(sim.exports_created.values()))
            assert file.path.exists()  # never dropped to make room
    # Holding the first file, only the 3 exports in flight were requested; read files make room again.
    assert created_while_holding[0] == 3
    assert all(count <= index + 3 for index, count in enumerate(created_while_holding, 1))
    assert sum(sim.exports_created.values()) == 8
    assert not pipeline.workdir.exists()


def test_below_the_disk_bound_exports_run_ahead_of_reading(simulator):
    sim = simulator(rate_limit=100_000)
    pipeline, stream = eight_days_three_at_a_time(sim, max_disk_bytes=1e12)
    with pipeline:
        files = pipeline.files(stream)
        next(files)
        assert sim.wait_until(lambda: sum(sim.exports_created.values()) == 8)  # all while the first file is held
        files.close()
    assert not pipeline.workdir.exists()


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


def one_file_of_room(simulator, tmp_path) -> tuple[object, int]:
    """A simulator serving one file (the same bytes) for every export, and that file's size: room for one file."""
    served = tmp_path / "served.csv"
    served.write_bytes(served_csv(simulator(), "USER_ACTIVITY_CALLS_HANDLED", LAST_SIX_DAYS[0]))
    return simulator(rate_limit=100_000, serve_file=str(served)), served.stat().st_size


def test_a_file_larger_than_max_disk_mb_fails_its_window_in_one_line(simulator, tmp_path):
    sim, size = one_file_of_room(simulator, tmp_path)
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    pipeline = ExportPipeline(max_concurrent=3, max_disk_bytes=size - 1, stop=exporter.client.stop)
    pipeline.add(exporter, LAST_SIX_DAYS)
    with pipeline, pytest.raises(WindowFailed) as failed:
        list(pipeline.files(exporter.stream))
    window, _, reason = str(failed.value).removeprefix("user_activity_calls_handled ").partition(": ")
    assert window in [str(day) for day in LAST_SIX_DAYS[:3]]  # one of the three in flight
    assert reason == (
        f"the file is larger than max_disk_mb ({(size - 1) / 1e6:g} MB) allows: raise max_disk_mb, or lower window_days"
    )
    assert pipeline.peak_disk <= size - 1  # not a byte past the bound, the file waited for included


# --- Streams read their files in the order they were planned --------------------------------


def test_a_stream_that_asks_for_its_files_out_of_turn_is_told_at_once(simulator, tmp_path):
    sim, size = one_file_of_room(simulator, tmp_path)
    planned_first, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    planned_second, _ = exporter_for(sim, "USER_ACTIVITY_CALL_VOLUME_AND_TIME")
    pipeline = ExportPipeline(max_concurrent=1, max_disk_bytes=size, stop=planned_first.client.stop)
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
