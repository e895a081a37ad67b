"""What a person running the tap sees and controls: progress, PII maps, plan mode, schema check."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys

from conftest import TODAY, tap_config
from tap_aircall_analytics import tap
from tap_aircall_analytics.config.catalogue import EXPORTS_PATH, PROBE_EXPORT_ID
from tap_aircall_analytics.preflight.plan import EXPECTED_REQUESTS_PER_EXPORT

# Inside Call History's retention, not inside User Status History's.
SIXTY_DAYS_AGO = (TODAY - dt.timedelta(days=60)).isoformat()
DAYS = {
    "start_date": (TODAY - dt.timedelta(days=4)).isoformat(),
    "end_date": (TODAY - dt.timedelta(days=1)).isoformat(),
}


def test_progress_goes_to_stderr_and_stdout_holds_only_singer_messages(simulator, run_tap):
    sim = simulator(export_seconds=0.3)
    run = run_tap(tap_config(sim, **DAYS, window_days=2), streams=["calls_history"])
    assert all(json.loads(line)["type"] in {"SCHEMA", "RECORD", "STATE"} for line in run.stdout.splitlines())
    window = f"{TODAY - dt.timedelta(days=4)}..{TODAY - dt.timedelta(days=3)}"
    for step in ("requested", "ready after", "downloaded", "rows emitted in"):
        assert any(f"calls_history {window}: " in line and step in line for line in run.stderr.splitlines()), step
    summary = [line for line in run.stderr.splitlines() if "  calls_history " in line]
    assert summary, "no run summary"
    fields = summary[-1].split("|")[-1].split()
    assert fields[:4] == ["calls_history", "2", "2", "0"]
    assert int(fields[4].replace(",", "")) == len(run.records["calls_history"])
    assert "METRIC" in run.stderr  # the SDK's own metrics are still there


PII_MAPS = {
    "calls_history": {
        "customer_number": "md5(config['hash_salt'] + customer_number) if customer_number else None",
        "user_name": "__NULL__",
    },
    "user_status_history": {"user_name": "__NULL__"},
}


def test_pii_recipe_hashes_customer_numbers_and_drops_user_names(simulator, run_tap):
    sim = simulator()
    config = tap_config(sim, **DAYS)
    plain = run_tap(config, streams=["calls_history"])
    # The SDK refuses a map for a stream that is not selected: the recipe maps selected streams only.
    masked = run_tap(
        {**config, "stream_maps": PII_MAPS, "stream_map_config": {"hash_salt": "pepper-1"}},
        streams=["calls_history", "user_status_history"],
    )
    assert masked.records["user_status_history"]
    assert all("user_name" not in record for record in masked.records["user_status_history"])
    assert "user_name" not in masked.schemas["calls_history"]["properties"]
    assert len(masked.records["calls_history"]) == len(plain.records["calls_history"])
    for before, after in zip(plain.records["calls_history"], masked.records["calls_history"]):
        assert "user_name" not in after
        assert after["customer_number"] == hashlib.md5(f"pepper-1{before['customer_number']}".encode()).hexdigest()
        assert {k: v for k, v in after.items() if k != "customer_number"} == {
            k: v for k, v in before.items() if k not in ("customer_number", "user_name")
        }
    assert "+33 6" not in masked.stdout


def test_schema_flattening_turns_tag_lists_into_json_text(simulator, run_tap):
    sim = simulator()
    run = run_tap(
        {**tap_config(sim, **DAYS), "flattening_enabled": True, "flattening_max_depth": 1}, streams=["calls_history"]
    )
    assert run.schemas["calls_history"]["properties"]["tags"]["type"] == ["string", "null"]
    tagged = [record for record in run.records["calls_history"] if record["tags"]]
    assert tagged and all(isinstance(json.loads(record["tags"]), list) for record in tagged)


def test_plan_mode_lists_windows_from_the_state_and_exports_nothing(simulator, run_tap):
    sim = simulator()
    bookmark = (TODAY - dt.timedelta(days=10)).isoformat()
    state = {"bookmarks": {"calls_history": {"replication_key": "started_at", "replication_key_value": bookmark}}}
    run = run_tap(
        {**tap_config(sim, start_date=SIXTY_DAYS_AGO), "window_days": 5, "lookback_days": 2, "plan_only": True},
        streams=["calls_history", "user_status_history"],
        state=state,
    )
    assert run.stdout == "" and not sim.exports_created
    assert sim.api_requests == [("GET", f"{EXPORTS_PATH}/{PROBE_EXPORT_ID}", None)]  # one request, for the limit
    lines = run.stderr.splitlines()
    calls = next(line for line in lines if line.startswith("calls_history "))
    first = TODAY - dt.timedelta(days=12)
    requests = f"{3 * EXPECTED_REQUESTS_PER_EXPORT:.0f}"  # a request and its polls, as the polls expect them
    assert calls.split()[1:8] == [first.isoformat(), TODAY.isoformat(), "5", "3", requests, "0.1", bookmark]
    assert any(line.strip().startswith(f"{first}..{first + dt.timedelta(days=4)}, ") for line in lines)
    status = next(line for line in lines if line.startswith("user_status_history "))
    assert status.split()[1] == (TODAY - dt.timedelta(days=7)).isoformat()  # the retention limit
    assert any(line.startswith("Total: 5 exports, about 11 API requests") for line in lines)
    assert any(
        line.startswith("Budget: the company's rate limit is 120 requests a minute (X-AircallApi-Limit)")
        and "leaves 24 of them to the others" in line
        and "takes at most 96 a minute" in line
        for line in lines
    )
    assert any(
        line.startswith("Run-wide: up to 12 exports in flight at once") and "about 1 export(s) in a row" in line
        for line in lines
    )


def test_schema_check_reports_new_missing_and_renamed_columns(simulator, run_tap):
    sim = simulator(extra_column="Country code", drop_column="Country")
    run = run_tap(
        {**tap_config(sim, start_date=SIXTY_DAYS_AGO), "check_schema": True},
        streams=["calls_history", "user_activity_calls_handled"],
        check=False,
    )
    assert run.returncode == 1 and run.stdout == ""
    lines = run.stderr.splitlines()
    assert any(
        line.startswith("calls_history: the header of") and "renamed? 'Country' -> 'Country code'" in line
        for line in lines
    )
    assert any(
        line.startswith("user_activity_calls_handled: ") and "new column 'Country code'" in line for line in lines
    )
    assert "2 report(s) differ" in run.stderr
    assert sim.exports_created == {"CALLS_HISTORY": 1, "USER_ACTIVITY_CALLS_HANDLED": 1}


def test_schema_check_passes_when_headers_match(simulator, run_tap):
    sim = simulator(shuffle_columns=True)
    run = run_tap({**tap_config(sim, start_date=SIXTY_DAYS_AGO), "check_schema": True}, streams=["user_status_history"])
    assert "user_status_history: the header of" in run.stderr and "matches the catalogue (9 columns)" in run.stderr


class _Writes:
    """A stream that keeps each write call apart, as a terminal would receive them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_each_line_of_a_plan_or_schema_check_is_one_write_so_no_log_line_lands_inside_it(monkeypatch):
    # A log line from another thread can only land between two writes: a line and its end of
    # line written apart is how one once landed inside the printed column_types command.
    stream = _Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    command = """  meltano config set tap-aircall-analytics column_types '{"calls_history": []}'"""
    tap._to_stderr(command)
    tap._to_stderr("Total: 53 exports, about 124 API requests")
    assert stream.calls == [command + "\n", "Total: 53 exports, about 124 API requests\n"]
