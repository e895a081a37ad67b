"""Request filters, report options and the export name: sent as the API documents them, checked for shape.

The simulator accepts every documented filter key with its documented shape, applies those it
can to its data, echoes `exportName`, and holds no row after the moment of the request.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from conftest import CREDENTIALS, TODAY, tap_config
from tap_aircall_analytics.config.catalogue import (
    FILTER_SHAPES,
    OPTION_SHAPES,
    REPORTS_BY_API_NAME,
    export_request_body,
)
from tap_aircall_analytics.config.settings import ConfigError, Settings

FIRST, LAST = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2)
CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]
STATUSES = REPORTS_BY_API_NAME["USER_STATUS_HISTORY"]
HANDLED = REPORTS_BY_API_NAME["USER_ACTIVITY_CALLS_HANDLED"]

#: One value of each documented key, in the shape the client documents (written out here, not
#: derived from the tap's table, so that a change of that table is seen).
EVERY_FILTER = {
    "userIDs": [101, 103],
    "teamIDs": [1, 2],
    "teamFilterOption": "ANY",
    "hours": [9, 10, 11],
    "callIDs": [12345],
    "lineIDs": [9001],
    "customerNumbers": ["+33 6 12 34 56 78"],
    "tagIDs": [1],
    "callTypes": ["inbound"],
    "duration": {"min": 10, "max": 600},
    "minConnectedDuration": 30,
    "ivrBranches": ["Sales"],
    "virtualVoiceAgentIDs": ["agent-abc123"],
    "withAiIntervention": False,
    "withVoicemail": False,
    "ringAttemptOrigin": "QUEUE",
    "userStatuses": ["available"],
    "nextUserStatuses": ["in_call"],
}
EVERY_OPTION = {"dateBreakdown": "DAILY", "slaTimeToAnswerInSeconds": 20, "slaIncludedCallUnansweredReasons": ["x"]}


def config_for(sim, **settings) -> dict:
    return tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), timezone="Europe/Paris", **settings)


def export_bodies(sim) -> dict[str, dict]:
    """The last export request body of each report, by report name."""
    return {
        body["input"]["reportName"]: body["input"]
        for method, path, body in sim.api_requests
        if method == "POST" and body is not None
    }


def calls_body(filters: dict, **fields) -> dict:
    """A Call History export request body over FIRST..LAST in UTC, with these filters and other fields."""
    date_filter = {"absoluteRange": {"fromDate": FIRST.isoformat(), "toDate": LAST.isoformat()}}
    request_filter = {"dateFilter": date_filter, "timezone": "UTC", **filters}
    return {"input": {"reportName": "CALLS_HISTORY", "filter": request_filter, **fields}}


def post_export(sim, body: dict) -> requests.Response:
    return requests.post(
        f"{sim.api_url}/v1/analytics/report/export", json=body, auth=tuple(CREDENTIALS.values()), timeout=30
    )


def test_the_documented_keys_are_the_clients_eighteen_filters_and_three_options():
    assert sorted(FILTER_SHAPES) == sorted(EVERY_FILTER) and len(FILTER_SHAPES) == 18
    assert sorted(OPTION_SHAPES) == sorted(EVERY_OPTION)


def test_a_sync_sends_filters_stream_filters_report_options_and_the_export_name_as_the_client_does(simulator, run_tap):
    sim = simulator(rate_limit=100_000, calls_per_day=200)
    config = config_for(
        sim,
        user_ids=[101, 102, 103, 104, 105, 106, 107, 108],
        filters={"withVoicemail": False, "callTypes": ["outbound"]},
        stream_filters={
            "user_status_history": {"withVoicemail": None, "callTypes": None, "userStatuses": ["in_call", "away"]},
            "user_activity_calls_handled": {"withVoicemail": None, "callTypes": None, "teamIDs": [2]},
        },
        report_options={"slaTimeToAnswerInSeconds": 20},
        stream_report_options={
            "user_activity_calls_handled": {"slaIncludedCallUnansweredReasons": ["short_abandoned"]}
        },
        export_name="nightly load",
    )
    run = run_tap(config, streams=["calls_history", "user_status_history", "user_activity_calls_handled"])
    bodies = export_bodies(sim)
    calls, statuses, handled = bodies["CALLS_HISTORY"], bodies["USER_STATUS_HISTORY"], bodies[HANDLED.api_name]
    assert calls["filter"]["withVoicemail"] is False and calls["filter"]["callTypes"] == ["outbound"]
    assert calls["filter"]["userIDs"] == [101, 102, 103, 104, 105, 106, 107, 108]  # the shortcut, still sent
    assert calls["options"] == {"slaTimeToAnswerInSeconds": 20}
    assert calls["exportOptions"] == {"format": "CSV", "exportName": "nightly load"}
    assert "withVoicemail" not in statuses["filter"] and statuses["filter"]["userStatuses"] == ["in_call", "away"]
    assert handled["filter"]["teamIDs"] == [2] and "callTypes" not in handled["filter"]
    assert handled["options"] == {
        "dateBreakdown": "DAILY",
        "slaTimeToAnswerInSeconds": 20,
        "slaIncludedCallUnansweredReasons": ["short_abandoned"],
    }
    # The simulator applied them.
    records = run.records
    assert records["calls_history"] and {r["direction"] for r in records["calls_history"]} == {"outbound"}
    assert not any(r["voicemail"] for r in records["calls_history"])
    assert {r["status"] for r in records["user_status_history"]} == {"in_call", "away"}
    assert {r["team"] for r in records["user_activity_calls_handled"]} == {"Support"}


def test_the_simulator_accepts_every_documented_key_and_echoes_the_export_name(simulator):
    sim = simulator()
    body = calls_body(EVERY_FILTER, options=EVERY_OPTION, exportOptions={"format": "CSV", "exportName": "every key"})
    answer = post_export(sim, body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["exportName"] == "every key"
    polled = requests.get(
        f"{sim.api_url}/v1/analytics/report/export/{answer.json()['exportID']}",
        auth=tuple(CREDENTIALS.values()),
        timeout=30,
    )
    assert polled.json()["exportName"] == "every key"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("withVoicemail", [False], "input.filter.withVoicemail must be true or false, not [false]"),
        ("userIDs", 101, "input.filter.userIDs must be an array of integers (a list, even for one value), not 101"),
        ("callTypes", ["inbound", 3], "input.filter.callTypes must be an array of texts"),
        ("queueIDs", [1], "Unknown filter key: queueIDs"),
    ],
)
def test_the_simulator_refuses_a_filter_of_another_shape(simulator, key, value, message):
    answer = post_export(simulator(), calls_body({key: value}))
    assert answer.status_code == 400 and message in answer.json()["message"]


def settings_of(**config) -> Settings:
    return Settings.from_config({**CREDENTIALS, "start_date": "2026-01-01", **config})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"filters": {"userIDs": 101}}, "filters.userIDs must be an array of integers (a list, even for one value)"),
        ({"filters": {"withVoicemail": "no"}}, 'filters.withVoicemail must be true or false, not "no"'),
        ({"filters": {"teamIDs": [True]}}, "filters.teamIDs must be an array of integers, not [true]"),
        ({"filters": {"dateFilter": {}}}, "filters.dateFilter: the tap sets dateFilter itself"),
        ({"filters": [1]}, "filters must be an object of the API's keys"),
        ({"stream_filters": {"calls": {}}}, "stream_filters names the stream 'calls', which is not a stream"),
        (
            {"stream_filters": {"calls_history": {"ivrBranches": "Sales"}}},
            "stream_filters.calls_history.ivrBranches must be an array of texts",
        ),
        (
            {"report_options": {"slaTimeToAnswerInSeconds": "20"}},
            "slaTimeToAnswerInSeconds must be a number of seconds",
        ),
        (
            {"stream_report_options": {"calls_history": {"slaIncludedCallUnansweredReasons": "x"}}},
            "stream_report_options.calls_history.slaIncludedCallUnansweredReasons must be an array of texts",
        ),
        ({"export_name": 3}, "export_name must be a text"),
        ({"export_name": "x" * 201}, "export_name is 201 characters long"),
    ],
)
def test_a_filter_or_option_of_the_wrong_shape_is_one_line(config, message):
    with pytest.raises(ConfigError) as error:
        settings_of(**config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_key_is_sent_as_given_with_one_warning(simulator, run_tap):
    settings = settings_of(filters={"queueIDs": [7]}, stream_filters={"calls_history": {"queueIDs": [8]}})
    (warning,) = settings.request.warnings
    assert "filters.queueIDs, stream_filters.calls_history.queueIDs" in warning
    body = export_request_body(CALLS, FIRST, LAST, "UTC", request_filters=settings.request.filters_for("calls_history"))
    assert body["input"]["filter"]["queueIDs"] == [8]
    plan = run_tap(
        {**config_for(simulator()), "filters": {"queueIDs": [7]}, "plan_only": True}, streams=["calls_history"]
    )
    warnings = [line for line in plan.stderr.splitlines() if "queueIDs" in line]
    assert len(warnings) == 1 and "sent as given: filters.queueIDs" in warnings[0]


def test_today_holds_nothing_after_the_moment_of_the_request(simulator):
    now = dt.datetime.combine(TODAY, dt.time(6, 43), dt.timezone.utc)
    sim = simulator(now=now.isoformat(), calls_per_day=400)
    later = simulator(now=(now + dt.timedelta(hours=12)).isoformat(), calls_per_day=400)
    for report in (CALLS, STATUSES, REPORTS_BY_API_NAME["USER_ACTIVITY_RINGING_ATTEMPTS"]):
        labels, rows = sim.expected_rows(report.api_name, TODAY, TODAY, "UTC")
        _, later_rows = later.expected_rows(report.api_name, TODAY, TODAY, "UTC")
        times = [column for column in report.columns if column.kind.value == "timestamp"]
        moments = [row[labels.index(column.label)] for row in rows for column in times]
        assert rows, report.api_name
        assert max(moment for moment in moments if moment) <= now.strftime("%Y-%m-%d %H:%M:%S"), report.api_name
        assert len(later_rows) > len(rows), report.api_name  # the day goes on
    labels, rows = sim.expected_rows(HANDLED.api_name, TODAY, TODAY + dt.timedelta(days=1), "UTC")
    assert rows and {row[labels.index("Date")] for row in rows} == {TODAY.isoformat()}


def test_a_sync_of_today_emits_no_call_after_now(simulator, run_tap):
    now = dt.datetime.combine(TODAY, dt.time(6, 43), dt.timezone.utc)
    sim = simulator(now=now.isoformat(), calls_per_day=400, rate_limit=100_000)
    config = tap_config(sim, start_date=TODAY.isoformat(), timezone="UTC")
    records = run_tap(config, streams=["calls_history"]).records["calls_history"]
    ends = [dt.datetime.fromisoformat(record["ended_at"]) for record in records]
    assert ends and max(ends) <= now
