"""The tap against the simulator: completeness, types, state, retention and errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zoneinfo
from collections import Counter

import pytest
from helpers import emitted_keys, expected_keys
from jsonschema import Draft7Validator, FormatChecker

from conftest import CREDENTIALS, TODAY, tap_config
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_STREAM, property_name
from tap_aircall_analytics.tap import TapAircallAnalytics

THREE_DAYS_AGO = (TODAY - dt.timedelta(days=3)).isoformat()


def request_ranges(sim, report_name):
    """The (fromDate, toDate) of every export request the simulator got for a report."""
    return [
        (
            body["input"]["filter"]["dateFilter"]["absoluteRange"]["fromDate"],
            body["input"]["filter"]["dateFilter"]["absoluteRange"]["toDate"],
        )
        for method, _, body in sim.api_requests
        if method == "POST" and body and body["input"]["reportName"] == report_name
    ]


def test_every_record_of_a_multi_window_range_is_emitted_exactly_once(simulator, run_tap):
    sim = simulator(rate_limit=100_000)
    first, last = TODAY - dt.timedelta(days=6), TODAY - dt.timedelta(days=1)
    run = run_tap(
        tap_config(sim, start_date=first.isoformat(), end_date=last.isoformat(), timezone="Europe/Paris", window_days=2)
    )
    assert set(run.records) == {report.stream_name for report in REPORTS}
    for report in REPORTS:
        emitted = Counter(emitted_keys(report, run.records[report.stream_name], "Europe/Paris"))
        expected = Counter(expected_keys(sim, report, first, last, "Europe/Paris"))
        assert emitted == expected and expected, report.stream_name
        assert len(request_ranges(sim, report.api_name)) == 3
        assert run.bookmark(report.stream_name) == TODAY.isoformat()


def test_every_field_has_its_declared_type_dst_days_included(simulator, run_tap, as_of):
    first, last = dt.date(2026, 10, 24), dt.date(2026, 10, 26)  # clocks go back in Paris on the 25th
    as_of(last + dt.timedelta(days=2))
    sim = simulator(calls_per_day=200, rate_limit=100_000)
    streams = ["calls_history", "user_activity_percentage_of_time_in_each_status", "user_activity_calls_handled"]
    run = run_tap(
        tap_config(sim, start_date=first.isoformat(), end_date=last.isoformat(), timezone="Europe/Paris"),
        streams=streams,
    )
    for stream in streams:
        validator = Draft7Validator(run.schemas[stream], format_checker=FormatChecker())
        assert run.records[stream]
        for record in run.records[stream]:
            errors = list(validator.iter_errors(record))
            assert not errors, (stream, record, errors[0].message)
            assert set(record) == set(run.schemas[stream]["properties"])
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    labels, rows = sim.expected_rows("CALLS_HISTORY", first, last, "Europe/Paris")
    wall = {int(row[0]): row[labels.index("Started at")] for row in rows}
    calls = run.records["calls_history"]
    for record in calls:
        local = dt.datetime.fromisoformat(wall[record["call_id"]]).replace(tzinfo=zone, fold=0)
        assert dt.datetime.fromisoformat(record["started_at"]) == local.astimezone(dt.timezone.utc)
        assert record["started_at"].endswith("+00:00")
    assert any(record["started_at"].startswith("2026-10-25T00:") for record in calls)
    assert any(isinstance(record["tags"], list) and record["tags"] for record in calls)
    assert {record["answered"] for record in calls} == {True, False}
    assert max(record["duration"] for record in calls) > 24 * 3600
    percents = run.records["user_activity_percentage_of_time_in_each_status"]
    assert all(isinstance(record["available"], float) for record in percents)


def test_state_round_trip_resumes_at_bookmark_minus_lookback(simulator, run_tap):
    sim = simulator(empty_days=frozenset({TODAY - dt.timedelta(days=d) for d in (7, 8, 9)}))
    stream = "user_activity_calls_handled"
    config = tap_config(sim, start_date=(TODAY - dt.timedelta(days=12)).isoformat(), window_days=3, lookback_days=2)
    first = run_tap(config, streams=[stream])
    bookmarks = [
        state["bookmarks"][stream]["replication_key_value"]
        for state in first.states
        if stream in state.get("bookmarks", {})
    ]
    window_ends = [(TODAY - dt.timedelta(days=d)).isoformat() for d in (9, 6, 3, 0)]
    assert bookmarks[:4] == window_ends  # one checkpoint per window, the empty one included
    assert first.bookmark(stream) == TODAY.isoformat()  # today is exported but not done
    assert {r["date"] for r in first.records[stream]} >= {TODAY.isoformat()}

    sim.api_requests.clear()
    second = run_tap(config, streams=[stream], state=first.state)
    assert request_ranges(sim, "USER_ACTIVITY_CALLS_HANDLED") == [
        ((TODAY - dt.timedelta(days=2)).isoformat(), TODAY.isoformat())
    ]
    assert {r["date"] for r in second.records[stream]} == {
        (TODAY - dt.timedelta(days=d)).isoformat() for d in (2, 1, 0)
    }
    assert second.bookmark(stream) == TODAY.isoformat()


def test_a_day_not_yet_over_is_exported_again_by_the_next_run(simulator, run_tap):
    sim = simulator()
    config = tap_config(sim, start_date=(TODAY - dt.timedelta(days=3)).isoformat(), lookback_days=0)
    first = run_tap(config, streams=["calls_history"])
    assert first.bookmark("calls_history") == TODAY.isoformat()
    sim.api_requests.clear()
    run_tap(config, streams=["calls_history"], state=first.state)
    assert request_ranges(sim, "CALLS_HISTORY") == [(TODAY.isoformat(), TODAY.isoformat())]


def test_a_start_before_retention_is_clamped_with_a_warning(simulator, run_tap):
    sim = simulator()
    run = run_tap(tap_config(sim, start_date="2025-01-01", window_days=30), streams=["user_status_history"])
    assert request_ranges(sim, "USER_STATUS_HISTORY")[0][0] == (TODAY - dt.timedelta(days=7)).isoformat()
    assert "keeps 7 days of data: starting at" in run.stderr
    assert run.records["user_status_history"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Paris"}, "timezone 'Paris' is not an IANA timezone name"),
        ({"start_date": "2026-05-10", "end_date": "2026-05-01"}, "end_date 2026-05-01 is before start_date 2026-05-10"),
        ({"api_id": None, "api_token": None}, "no credentials"),
        ({"access_token": "abc"}, "either api_id and api_token, or access_token, not both"),
        ({"api_token": None}, "api_token is missing"),
        ({"max_poll_interval_seconds": 0.01}, "max_poll_interval_seconds"),
    ],
)
def test_bad_settings_stop_before_any_request_with_one_line(simulator, run_tap, settings, message):
    sim = simulator()
    config = {
        key: value
        for key, value in {**tap_config(sim, start_date=THREE_DAYS_AGO), **settings}.items()
        if value is not None
    }
    run = run_tap(config, streams=["calls_history"], check=False)
    assert run.returncode != 0
    assert message in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("tap-aircall-analytics: ")
    assert "Traceback" not in run.stderr
    assert sim.api_requests == []


@pytest.mark.parametrize(
    ("credentials", "sim_settings", "message"),
    [
        ({"api_token": "wrong-token"}, {}, "check api_id and api_token"),
        ({}, {"analytics_plus": False}, "Analytics+ add-on must be enabled"),
    ],
)
def test_api_refusals_stop_with_one_clear_line(simulator, run_tap, credentials, sim_settings, message):
    sim = simulator(**sim_settings)
    run = run_tap(
        {**tap_config(sim, start_date=THREE_DAYS_AGO), **credentials},
        streams=["calls_history"],
        check=False,
    )
    assert run.returncode != 0
    assert message in run.stderr.strip().splitlines()[-1]
    assert "Traceback" not in run.stderr
    assert "wrong-token" not in run.stderr + run.stdout
    assert run.records == {}


def test_a_rejected_request_quotes_the_api_message_and_the_window(simulator, capsys):
    """A tap whose catalogue lacks a retention limit the API enforces gets a 422, and says so."""
    sim = simulator()
    start = TODAY - dt.timedelta(days=20)
    tap = TapAircallAnalytics(
        config=tap_config(sim, start_date=start.isoformat(), window_days=30), validate_config=True
    )
    stream = tap.streams["user_status_history"]
    stream.report = dataclasses.replace(stream.report, retention_days=None)
    for name, other in tap.streams.items():
        other.selected = name == "user_status_history"
    with pytest.raises(SystemExit) as stop:
        tap.sync_all()
    message = str(stop.value)
    assert "422" in message and "retention limit" in message
    assert f"user_status_history {start}..{TODAY}" in message
    assert "\n" not in message
    state = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"STATE"' in line]
    assert all(
        "user_status_history" not in s["value"].get("bookmarks", {})
        or s["value"]["bookmarks"]["user_status_history"].get("replication_key_value") is None
        for s in state
    )


def test_settings_from_environment_variables_work_for_numbers_too(simulator, tmp_path, catalog):
    import os
    import subprocess
    import sys

    from conftest import TapRun, parse_messages, selected_catalog

    sim = simulator()
    env = {
        **os.environ,
        "TAP_AIRCALL_ANALYTICS_API_URL": sim.api_url,
        "TAP_AIRCALL_ANALYTICS_API_ID": CREDENTIALS["api_id"],
        "TAP_AIRCALL_ANALYTICS_API_TOKEN": CREDENTIALS["api_token"],
        "TAP_AIRCALL_ANALYTICS_START_DATE": (TODAY - dt.timedelta(days=1)).isoformat(),
        "TAP_AIRCALL_ANALYTICS_POLL_INTERVAL_SECONDS": "0.05",
        "TAP_AIRCALL_ANALYTICS_MAX_POLL_INTERVAL_SECONDS": "0.2",
        "TAP_AIRCALL_ANALYTICS_USER_IDS": "[101, 103]",
    }
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(selected_catalog(catalog, ["user_activity_calls_handled"])))
    result = subprocess.run(
        [sys.executable, "-m", "tap_aircall_analytics", "--config", "ENV", "--catalog", str(catalog_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = parse_messages(result.stdout, TapRun(0, result.stdout, result.stderr))
    assert {r["user_id"] for r in run.records["user_activity_calls_handled"]} == {101, 103}


def test_property_names_in_the_schema_match_the_catalogue(catalog):
    for entry in catalog["streams"]:
        report = REPORTS_BY_STREAM[entry["tap_stream_id"]]
        assert list(entry["schema"]["properties"]) == [property_name(c.label) for c in report.columns] + [
            "_extra_columns",
            "_unparsed_values",
        ]
        assert entry["key_properties"] == list(report.primary_key)
        top = next(m for m in entry["metadata"] if m["breadcrumb"] == [])["metadata"]
        assert top["valid-replication-keys"] == [report.replication_key]
        assert entry["replication_method"] == "INCREMENTAL"
        assert entry["replication_key"] == report.replication_key
