"""Discovery from the account (`discover_columns`): the catalog lists the columns the files really hold.

The simulator's drift options stand for an account whose files differ from the catalogue:
an extra typed column, an extra text column, a renamed column. Discovery exports one day of
each report, types every column, caches the result with its requests; a sync then fills
every column, with nothing left in `_extra_columns`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from conftest import TODAY, run_in_process, tap_config
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME, Column, Kind
from tap_aircall_analytics.preflight.discovery import columns_of
from tap_aircall_analytics.simulator.data import EXTRA_TEXTS

FIRST, LAST = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2)
DRIFT = {"typed_column": "Queue size:duration", "rename_column": "Waiting time=Wait time", "extra_column": "Queue"}
CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]


def discover(tmp_path: Path, config: dict) -> tuple[dict[str, dict], str]:
    """Run --discover; return each stream's catalog entry and the tap's stderr."""
    path = tmp_path / "discover-config.json"
    path.write_text(json.dumps(config))
    code, stdout, stderr = run_in_process(["--config", str(path), "--discover"])
    assert code == 0, stderr[-3000:]
    return {entry["tap_stream_id"]: entry for entry in json.loads(stdout)["streams"]}, stderr


def exports_requested(sim) -> int:
    return sum(1 for method, _, _ in sim.api_requests if method == "POST")


def discovery_config(sim, tmp_path: Path, **settings) -> dict:
    return tap_config(
        sim,
        start_date=FIRST.isoformat(),
        end_date=LAST.isoformat(),
        timezone="Europe/Paris",
        discover_columns=True,
        discovery_cache_file=str(tmp_path / "cache" / "columns.json"),
        **settings,
    )


def test_discovery_types_the_accounts_columns_and_a_sync_fills_them(simulator, run_tap, tmp_path):
    sim = simulator(rate_limit=100_000, calls_per_day=60, **DRIFT)
    config = discovery_config(sim, tmp_path)
    streams, _ = discover(tmp_path, config)
    assert exports_requested(sim) == len(REPORTS)  # one day of each report
    calls = streams["calls_history"]["schema"]["properties"]
    assert calls["queue_size"]["type"] == ["integer", "null"]  # a duration, read as seconds
    assert calls["queue"]["type"] == ["string", "null"]
    assert calls["waiting_time"]["type"] == ["integer", "null"]  # renamed in the file: its property is kept
    assert calls["started_at"]["format"] == "date-time" and "wait_time" not in calls
    handled = streams["user_activity_calls_handled"]["schema"]["properties"]
    assert handled["queue_size"]["type"] == ["integer", "null"] and handled["missed_calls"]["type"] == [
        "integer",
        "null",
    ]

    cache = json.loads((tmp_path / "cache" / "columns.json").read_text())
    request = cache["requests"]["calls_history"]["input"]
    day = (TODAY - dt.timedelta(days=1)).isoformat()
    assert request["reportName"] == "CALLS_HISTORY"
    assert request["filter"]["dateFilter"] == {"absoluteRange": {"fromDate": day, "toDate": day}}
    assert {"label": "Wait time", "kind": "duration", "name": "waiting_time"} in cache["streams"]["calls_history"]

    again, _ = discover(tmp_path, config)
    assert again == streams and exports_requested(sim) == len(REPORTS)  # from the cache: no request

    run = run_tap(config, streams=["calls_history", "user_activity_calls_handled"], catalog_config=config)
    for stream in ("calls_history", "user_activity_calls_handled"):
        records = run.records[stream]
        assert records, stream
        assert all(record["_extra_columns"] is None and record["_unparsed_values"] is None for record in records)
        assert all(isinstance(record["queue_size"], int) for record in records), stream
        queues = {record["queue"] for record in records}
        assert queues - {None} and queues <= {None, *EXTRA_TEXTS}, stream
    assert all(isinstance(record["waiting_time"], int) for record in run.records["calls_history"])
    default = run_tap(
        tap_config(simulator(rate_limit=100_000, calls_per_day=60), **_range()), streams=["calls_history"]
    )
    assert [record["waiting_time"] for record in run.records["calls_history"]] == [
        record["waiting_time"] for record in default.records["calls_history"]
    ]


def _range() -> dict:
    return {"start_date": FIRST.isoformat(), "end_date": LAST.isoformat(), "timezone": "Europe/Paris"}


def test_a_cache_older_than_the_setting_is_discovered_again(simulator, tmp_path):
    sim = simulator(rate_limit=100_000, **DRIFT)
    config = discovery_config(sim, tmp_path, discovery_cache_hours=1)
    discover(tmp_path, config)
    path = tmp_path / "cache" / "columns.json"
    cache = json.loads(path.read_text())
    cache["made_at"] -= 2 * 3600  # made two hours ago
    path.write_text(json.dumps(cache))
    discover(tmp_path, config)
    assert exports_requested(sim) == 2 * len(REPORTS)
    other = simulator(rate_limit=100_000)  # another API: the cache is not its own
    discover(tmp_path, {**config, "api_url": other.api_url})
    assert exports_requested(other) == len(REPORTS)


def test_a_failing_discovery_falls_back_to_the_catalogue_with_one_warning(simulator, tmp_path):
    builtin, _ = discover(tmp_path, {"start_date": FIRST.isoformat()})
    sim = simulator(analytics_plus=False)
    streams, stderr = discover(tmp_path, discovery_config(sim, tmp_path))
    assert streams == builtin
    warnings = [line for line in stderr.splitlines() if "discover_columns" in line]
    assert len(warnings) == 1 and "the built-in catalogue is used" in warnings[0]
    assert "403" in warnings[0] or "Analytics+" in warnings[0]
    no_credentials, stderr = discover(tmp_path, {"start_date": FIRST.isoformat(), "discover_columns": True})
    assert no_credentials == builtin and "no credentials" in stderr


def test_columns_of_a_file_known_respelled_renamed_and_new():
    header = ["call_id", "Started at", "Wait time", "Queue", "Queue size", "Picked up at", "Call ID", "Rate"]
    sample = [
        ["1", "2026-07-01 10:00:00", "0:00:12", "Sales", "12", "1782900000000", "1", "12.5%"],
        ["2", "2026-07-01 11:00:00", "0:01:02", "", "3", "1782900060000", "2", "50%"],
    ]
    found = columns_of(CALLS, header, sample)
    columns = {column.name: column for column in found}
    assert [column.name for column in found] == [
        "call_id",
        "started_at",
        "waiting_time",
        "queue",
        "queue_size",
        "picked_up_at",
        "rate",
    ]  # the file's order; the second header of Call ID stays in _extra_columns; absent columns are left out
    assert columns["call_id"] == CALLS.column("call_id")  # known, under another spelling of its label
    assert columns["waiting_time"] == Column("Wait time", Kind.DURATION, "waiting_time")  # renamed
    assert columns["queue"] == Column("Queue", Kind.STRING)
    assert columns["queue_size"] == Column("Queue size", Kind.INTEGER)
    assert columns["picked_up_at"] == Column("Picked up at", Kind.TIMESTAMP)  # Unix milliseconds, named a time
    assert columns["rate"] == Column("Rate", Kind.PERCENT)
    names = [column.name for column in columns_of(CALLS, ["Duration"], [])]
    assert names == ["duration", "call_id", "started_at"]  # the key and the replication key stay
