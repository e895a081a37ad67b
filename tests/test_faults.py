"""Never lose a window: every fault at once, failures, link refreshes, kills and resumes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import zoneinfo
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import CREDENTIALS, TAP, TODAY, TapRun, parse_messages, selected_catalog, tap_config
from tap_aircall_analytics.api.client import AircallClient
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME, export_request_body
from tap_aircall_analytics.config.settings import Settings
from tap_aircall_analytics.exports.pipeline import ExportPipeline, PollPolicy, ReportExporter
from tap_aircall_analytics.planning.windows import Window

TOKEN = CREDENTIALS["api_token"]


def expected_keys(sim, report, first, last, timezone="UTC"):
    labels, rows = sim.expected_rows(report.api_name, first, last, timezone)
    columns = [labels.index(report.column(name).label) for name in report.primary_key]
    return [tuple(row[i] for i in columns) for row in rows]


def emitted_keys(report, records, timezone="UTC"):
    """Keys as text, comparable with the simulator's rows (timestamps back to wall-clock time in `timezone`)."""
    zone = zoneinfo.ZoneInfo(timezone)

    def text(value):
        if isinstance(value, str) and value.endswith("+00:00"):
            return dt.datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        return str(value)

    return [tuple(text(record[name]) for name in report.primary_key) for record in records]


def assert_leftovers_removed(tmp: Path) -> None:
    assert [p.name for p in tmp.iterdir() if p.name.startswith("tap-aircall-analytics-")] == []


def test_every_fault_at_once_loses_nothing_and_duplicates_nothing(simulator, run_tap, tmp_path, monkeypatch):
    first, last = TODAY - dt.timedelta(days=6), TODAY - dt.timedelta(days=1)
    sim = simulator(
        rate_limit=25,
        rate_window_seconds=1,  # pacing and 429s
        error_every=9,  # a 500 now and then
        fail_first_export=True,  # every report's first export fails
        fail_over_days=2,  # three-day windows fail and are split
        cut_download_once=True,
        link_seconds=1,
        refuse_first_download=True,  # every link is refused once (403) and refreshed
        forget_first_export=True,  # one export is forgotten (404) and requested again
        zipped=True,
        export_seconds=0.4,
        bom=True,
        crlf=True,
        shuffle_columns=True,
        empty_days=frozenset({first + dt.timedelta(days=1)}),
    )
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    run = run_tap(
        tap_config(
            sim, start_date=first.isoformat(), end_date=last.isoformat(), window_days=3, max_concurrent_exports=3
        )
    )
    for report in REPORTS:
        emitted = emitted_keys(report, run.records[report.stream_name])
        expected = expected_keys(sim, report, first, last)
        assert expected, report.stream_name
        assert Counter(emitted) == Counter(expected), report.stream_name  # each exactly once
        assert run.bookmark(report.stream_name) == TODAY.isoformat()
    assert sim.downloads and not any(download.had_authorization for download in sim.downloads)
    statuses = Counter(download.status for download in sim.downloads)
    assert statuses[403] >= len(REPORTS) and statuses[404] == 0
    assert TOKEN not in run.stdout + run.stderr
    assert "X-Signature" not in run.stderr
    assert "Retrying" in run.stderr and "splitting" in run.stderr and "requesting it again" in run.stderr
    assert_leftovers_removed(tmp_path)


def test_a_pending_export_past_its_deadline_fails_the_window_not_empties_it(simulator, run_tap, tmp_path, monkeypatch):
    sim = simulator(hold_exports=True)  # never completes
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    run = run_tap(
        tap_config(sim, start_date=(TODAY - dt.timedelta(days=2)).isoformat(), export_timeout_minutes=0.02),
        streams=["calls_history"],
        check=False,
    )
    assert run.returncode != 0
    assert "still PENDING after" in run.stderr.strip().splitlines()[-1]
    assert run.records == {} and run.bookmark("calls_history") is None
    assert_leftovers_removed(tmp_path)


def test_a_one_day_window_that_keeps_failing_stops_after_the_finished_windows(simulator, run_tap):
    days = [TODAY - dt.timedelta(days=d) for d in range(6, 0, -1)]
    sim = simulator(fail_days=frozenset({days[4]}))
    run = run_tap(
        tap_config(
            sim, start_date=days[0].isoformat(), end_date=days[-1].isoformat(), window_days=2, max_concurrent_exports=1
        ),
        streams=["user_activity_calls_handled"],
        check=False,
    )
    assert run.returncode != 0
    last_line = run.stderr.strip().splitlines()[-1]
    assert f"user_activity_calls_handled {days[4]}: the export failed twice, even for one day" in last_line
    assert "too many rows" in last_line
    assert run.bookmark("user_activity_calls_handled") == days[4].isoformat()
    assert {r["date"] for r in run.records["user_activity_calls_handled"]} == {d.isoformat() for d in days[:4]}
    # The failing window was retried once, split, and each one-day half retried once.
    ranges = [b["input"]["filter"]["dateFilter"]["absoluteRange"] for m, _, b in sim.api_requests if m == "POST"]
    assert [(r["fromDate"], r["toDate"]) for r in ranges[2:]] == [(days[4].isoformat(), days[5].isoformat())] * 2 + [
        (days[4].isoformat(), days[4].isoformat())
    ] * 2


def exporter_for(sim, report_name="CALLS_HISTORY"):
    settings = Settings.from_config(tap_config(sim, start_date=TODAY.isoformat()))
    report = REPORTS_BY_API_NAME[report_name]
    messages: list[str] = []
    client = AircallClient(settings.api_url, settings.authorization)
    exporter = ReportExporter(
        client,
        report,
        lambda w: export_request_body(report, w.first, w.last, "UTC"),
        poll=PollPolicy(0.05, 0.2, 30),
        progress=messages.append,
    )
    return exporter, messages


def exported_windows(exporter, windows, max_concurrent=2) -> list[Window]:
    """Run `windows` through a pipeline of their own; the windows of the files, in the order read."""
    pipeline = ExportPipeline(max_concurrent=max_concurrent, max_disk_bytes=1e12, stop=exporter.client.stop)
    pipeline.add(exporter, windows)
    with pipeline:
        return [file.window for file in pipeline.files(exporter.stream)]


def test_a_refused_link_is_refreshed_by_polling_not_by_exporting_again(simulator):
    sim = simulator(refuse_first_download=True)
    exporter, messages = exporter_for(sim)
    window = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))
    assert exported_windows(exporter, [window]) == [window]
    assert sim.exports_created["CALLS_HISTORY"] == 1
    assert [d.status for d in sim.downloads] == [403, 200]
    assert any("link refused (403); polling export" in message for message in messages)


def test_an_expired_link_is_refreshed_before_download(simulator, tmp_path):
    sim = simulator(link_seconds=0, export_seconds=0)
    exporter, _ = exporter_for(sim)
    client = exporter.client
    window = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))
    export = client.create_export(exporter.request_body(window))
    assert sim.wait_until(lambda: sim.exports_ready() == 1)
    export = client.get_export(export.export_id)  # its link expires as it is minted
    sim.config.link_seconds = 3600  # the refreshed one does not
    assert export.done and export.link_expired()
    exported = exporter._download(export, window, tmp_path)
    exported.path.unlink()
    assert sim.exports_created["CALLS_HISTORY"] == 1
    assert [d.status for d in sim.downloads] == [200]  # refreshed first: no 403 needed
    assert exporter.stats.link_refreshes == 1


def test_a_forgotten_export_is_requested_again(simulator):
    sim = simulator(forget_first_export=True)
    exporter, messages = exporter_for(sim)
    window = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))
    assert len(exported_windows(exporter, [window])) == 1
    assert sim.exports_created["CALLS_HISTORY"] == 2
    assert any("export is gone (404); requesting it again" in message for message in messages)


def test_exports_run_concurrently_and_come_back_in_window_order(simulator):
    sim = simulator(hold_exports=True)
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    windows = [Window(TODAY - dt.timedelta(days=d), TODAY - dt.timedelta(days=d)) for d in range(12, 0, -1)]
    with ThreadPoolExecutor(1) as background:
        exported = background.submit(exported_windows, exporter, windows, max_concurrent=6)
        six_at_once = sim.wait_until(lambda: sum(sim.exports_created.values()) == 6)  # none has completed
        sim.release_exports()
        order = exported.result()
    assert six_at_once and order == windows


def test_rate_limit_headers_pace_requests_without_429s(simulator):
    sim = simulator(rate_limit=5, rate_window_seconds=1)
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    windows = [Window(TODAY - dt.timedelta(days=d), TODAY - dt.timedelta(days=d)) for d in range(6, 0, -1)]
    assert len(exported_windows(exporter, windows)) == 6
    assert exporter.client.retries == 0  # paced by X-AircallApi-Remaining, never refused


def _start_tap(tmp_path: Path, catalog: dict, config: dict, state: dict | None, streams: list[str]):
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(selected_catalog(catalog, streams)))
    command = [*TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
    if state:
        (tmp_path / "state.json").write_text(json.dumps(state))
        command += ["--state", str(tmp_path / "state.json")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    with open(tmp_path / "stderr.log", "a") as stderr:  # a file: a chatty tap never blocks on a full pipe
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def _read_until(process, stop_after_records: int) -> str:
    """Read stdout until `stop_after_records` records went by; return the lines read."""
    lines: list[str] = []
    records = 0
    for line in process.stdout:
        lines.append(line)
        records += line.startswith('{"type":"RECORD"')
        if records >= stop_after_records:
            break
    return "".join(lines)


def _rest(process, timeout: float = 120) -> str:
    """The rest of stdout once the process ended, without a line cut off by a kill.

    A tap that does not end within `timeout` is killed and the test fails: the bound only
    catches a hang, no test passes by it.
    """
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    with process.stdout:
        rest = process.stdout.read()
    process.wait()
    ended_by_itself = watchdog.is_alive()
    watchdog.cancel()
    assert ended_by_itself, f"the tap did not end within {timeout} s"
    return rest[: rest.rfind("\n") + 1]


@pytest.mark.parametrize("kill_after_records", [1, 45, 130, 260])
def test_killed_at_any_moment_a_rerun_from_the_last_state_loses_nothing(
    simulator, catalog, tmp_path, kill_after_records
):
    first, last = TODAY - dt.timedelta(days=8), TODAY - dt.timedelta(days=1)
    sim = simulator(export_seconds=0.1, calls_per_day=40)
    config = tap_config(
        sim,
        start_date=first.isoformat(),
        end_date=last.isoformat(),
        window_days=2,
        lookback_days=0,
        max_concurrent_exports=2,
    )
    process = _start_tap(tmp_path, catalog, config, None, ["calls_history"])
    seen = _read_until(process, kill_after_records)
    process.kill()
    complete = seen + _rest(process)
    killed = parse_messages(complete, TapRun(-9, complete, ""))
    rerun_process = _start_tap(tmp_path, catalog, config, killed.state or None, ["calls_history"])
    out = _rest(rerun_process)
    assert rerun_process.returncode == 0, (tmp_path / "stderr.log").read_text()[-2000:]
    rerun = parse_messages(out, TapRun(0, out, ""))
    report = REPORTS_BY_API_NAME["CALLS_HISTORY"]
    together = set(emitted_keys(report, killed.records["calls_history"] + rerun.records["calls_history"]))
    assert together == set(expected_keys(sim, report, first, last))
    assert rerun.bookmark("calls_history") == (last + dt.timedelta(days=1)).isoformat()
    assert_leftovers_removed(tmp_path)


def test_sigterm_emits_the_finished_windows_state_and_exits(simulator, catalog, tmp_path):
    first, last = TODAY - dt.timedelta(days=8), TODAY - dt.timedelta(days=1)
    sim = simulator(export_seconds=0.5, calls_per_day=40)
    config = tap_config(
        sim,
        start_date=first.isoformat(),
        end_date=last.isoformat(),
        window_days=1,
        lookback_days=0,
        max_concurrent_exports=1,
    )
    process = _start_tap(tmp_path, catalog, config, None, ["calls_history"])
    seen = _read_until(process, 60)
    threading.Timer(0.05, process.send_signal, args=(signal.SIGTERM,)).start()
    rest = _rest(process)
    assert process.returncode == 128 + signal.SIGTERM
    run = parse_messages(seen + rest, TapRun(process.returncode, seen + rest, ""))
    bookmark = dt.date.fromisoformat(run.bookmark("calls_history"))
    assert first < bookmark <= last
    report = REPORTS_BY_API_NAME["CALLS_HISTORY"]
    done = set(expected_keys(sim, report, first, bookmark - dt.timedelta(days=1)))
    assert done <= set(emitted_keys(report, run.records["calls_history"]))
    assert_leftovers_removed(tmp_path)


def test_the_token_never_leaves_the_api_host(simulator, run_tap):
    sim = simulator(error_every=4)
    run = run_tap(
        {**tap_config(sim, start_date=(TODAY - dt.timedelta(days=1)).isoformat())},
        streams=["calls_history", "user_activity_calls_handled"],
    )
    assert run.records["calls_history"] and run.records["user_activity_calls_handled"]
    assert not any(download.had_authorization for download in sim.downloads)
    basic = Settings.from_config(tap_config(sim, start_date=TODAY.isoformat()))
    bearer = Settings.from_config(
        {**tap_config(sim, start_date=TODAY.isoformat()), "api_id": None, "api_token": None, "access_token": "tok-9f3"}
    )
    secrets = [TOKEN, "demo-api-id:", basic.authorization.split()[1], "tok-9f3"]
    assert basic.authorization.startswith("Basic ") and bearer.authorization == "Bearer tok-9f3"
    for text in (run.stdout, run.stderr, *map(json.dumps, run.states), repr(basic), str(basic), repr(bearer)):
        assert not [secret for secret in secrets if secret in text]
