"""Never lose a window: every fault at once, failures, link refreshes, kills and resumes."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    assert_leftovers_removed,
    emitted_keys,
    expected_keys,
    exported_windows,
    exporter_for,
    read_until,
    rest_of_output,
    start_tap,
)

from conftest import CREDENTIALS, TODAY, TapRun, parse_messages, tap_config
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME
from tap_aircall_analytics.config.settings import Settings
from tap_aircall_analytics.planning.windows import Window

TOKEN = CREDENTIALS["api_token"]


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
    process = start_tap(tmp_path, catalog, config, None, ["calls_history"])
    seen = read_until(process, kill_after_records)
    process.kill()
    complete = seen + rest_of_output(process)
    killed = parse_messages(complete, TapRun(-9, complete, ""))
    rerun_process = start_tap(tmp_path, catalog, config, killed.state or None, ["calls_history"])
    out = rest_of_output(rerun_process)
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
    process = start_tap(tmp_path, catalog, config, None, ["calls_history"])
    seen = read_until(process, 60)
    threading.Timer(0.05, process.send_signal, args=(signal.SIGTERM,)).start()
    rest = rest_of_output(process)
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
