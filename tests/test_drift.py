"""What the real API may send that the catalogue does not know: it all reaches the target.

The simulator's drift modes serve an unknown column, a new typed column, a renamed and
a missing column, bad cells and an unknown report; the tap runs in RECORD and BATCH mode.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import psycopg
import pytest
from helpers import batch_records, batch_settings, canonical

from conftest import POSTGRES, TODAY, Meltano, pg_column_types, tap_config
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME, Kind
from tap_aircall_analytics.simulator.data import (
    BAD_CELL,
    bad_cell_column,
    extra_text,
    has_bad_cell,
    queue_report,
    typed_text,
)

FIRST, LAST = TODAY - dt.timedelta(days=6), TODAY - dt.timedelta(days=2)
QUEUES = "USER_ACTIVITY_QUEUES"
DRIFT = {
    "extra_column": "Queue",
    "typed_column": "Queue size:integer",
    "bad_cells_every": 5,
    "drop_column": "Country",
    "extra_report": QUEUES,
    "rate_limit": 100_000,
    "shuffle_columns": True,
}
COLUMN_TYPES = {
    "calls_history": [{"label": "Queue size", "type": "integer"}],
    "user_activity_queues": [
        {"label": "Date", "type": "date", "key": True},
        {"label": "User ID", "type": "integer", "key": True},
        {"label": "Queue wait time", "name": "wait_seconds", "type": "duration"},
    ],
}
STREAMS = ["calls_history", "user_activity_calls_handled", "user_activity_queues"]
CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]


def drift_config(sim, **settings) -> dict:
    return tap_config(
        sim,
        start_date=FIRST.isoformat(),
        end_date=LAST.isoformat(),
        timezone="Europe/Paris",
        window_days=2,
        extra_reports=[QUEUES],
        column_types=COLUMN_TYPES,
        **settings,
    )


def contract_rows(sim, report) -> list[list[str]]:
    labels, rows = sim.expected_rows(report.api_name, FIRST, LAST, "Europe/Paris")
    assert labels == [column.label for column in report.columns]
    return rows


def test_drift_reaches_every_record_typed_where_declared(simulator, run_tap, catalog):
    sim = simulator(**DRIFT)
    run = run_tap(drift_config(sim), streams=STREAMS, catalog_config=drift_config(sim))

    # Call History: the new column as text, the declared one typed, bad cells kept, the missing one null.
    bad = bad_cell_column(CALLS)
    rows = {int(row[0]): row for row in contract_rows(sim, CALLS)}
    records = run.records["calls_history"]
    assert sorted(record["call_id"] for record in records) == sorted(rows)
    spoiled = 0
    for record in records:
        row = rows[record["call_id"]]
        assert record["_extra_columns"] == {"Queue": extra_text(row)}
        assert record["queue_size"] == int(typed_text(Kind.INTEGER, row))
        assert record["country"] is None
        if has_bad_cell(row, DRIFT["bad_cells_every"]):
            spoiled += 1
            assert record[bad.name] is None and record["_unparsed_values"] == {bad.name: BAD_CELL}
        else:
            assert record["_unparsed_values"] is None
            assert record[bad.name] == (row[CALLS.columns.index(bad)] == "Yes")
        assert record["duration"] is not None and record["started_at"].endswith("+00:00")  # known ones unchanged
    assert 0 < spoiled < len(records)
    assert any("\n" in value or '"' in value for record in records for value in record["_extra_columns"].values())

    # The unknown report: declared columns typed and keyed, the rest as text.
    queue = queue_report(QUEUES)
    expected = contract_rows(sim, queue)
    found = run.records["user_activity_queues"]
    assert len(found) == len(expected) > 0
    by_key = {(record["date"], record["user_id"]): record for record in found}
    for row in expected:
        record = by_key[(row[0], int(row[1]))]
        assert record["wait_seconds"] == sum(int(part) * 60**i for i, part in enumerate(reversed(row[5].split(":"))))
        rate = BAD_CELL if has_bad_cell(row, DRIFT["bad_cells_every"]) else row[6]  # text: never unparsed
        assert record["_extra_columns"] == {
            "User name": row[2],
            "Team": row[3],
            "Queue calls": row[4],
            "Queue answer rate": rate,
            "Queue": extra_text(row),
            "Queue size": typed_text(Kind.INTEGER, row),
        }
        assert record["_unparsed_values"] is None
    assert run.schemas["user_activity_queues"]["properties"]["wait_seconds"]["type"] == ["integer", "null"]
    assert run.bookmark("user_activity_queues") == (LAST + dt.timedelta(days=1)).isoformat()

    # One warning per stream and column, and the count in the run summary.
    assert "user_activity_calls_handled: column(s) 'Queue size', 'Queue' are not in the catalogue" in run.stderr
    assert run.stderr.count("calls_history: column(s) 'Queue' are not in the catalogue") == 1
    assert run.stderr.count("column 'Country' of CALLS_HISTORY is missing from the file") == 1
    assert run.stderr.count(f"calls_history: column '{bad.label}' holds values that do not parse") == 1
    assert f"calls_history: cells kept as text in _unparsed_values, by column: '{bad.label}' {spoiled:,}" in run.stderr


@pytest.mark.parametrize(("fmt", "compression"), [("jsonl", "gzip"), ("parquet", "none")])
def test_batch_mode_gives_the_same_drifted_records(simulator, run_tap, tmp_path, fmt, compression):
    sim = simulator(**DRIFT)
    config = drift_config(sim)
    records = run_tap(config, streams=STREAMS, catalog_config=config)
    batched = run_tap(
        {**config, **batch_settings(tmp_path / "b", fmt, compression)}, streams=STREAMS, catalog_config=config
    )
    found = batch_records(batched, fmt)
    assert set(found) == set(STREAMS)
    for stream in STREAMS:
        assert canonical(found[stream]) == canonical(records.records[stream]), stream
    summary = re.findall(r"cells kept as text in _unparsed_values, by column: .*", records.stderr)
    assert summary and summary == re.findall(r"cells kept as text in _unparsed_values, by column: .*", batched.stderr)
    assert batched.state["bookmarks"] == records.state["bookmarks"]  # the tap's own key holds timings


@pytest.mark.parametrize("batch", [False, True])
def test_strict_values_stops_at_the_first_bad_cell_and_bookmarks_nothing_after(simulator, run_tap, tmp_path, batch):
    sim = simulator(bad_cells_every=5, rate_limit=100_000)
    config = drift_config(sim, strict_values=True, **(batch_settings(tmp_path / "b") if batch else {}))
    run = run_tap(config, streams=["calls_history"], check=False)
    assert run.returncode != 0
    bad = bad_cell_column(CALLS)
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("tap-aircall-analytics: ")]
    assert re.search(
        rf"calls_history {FIRST}..{FIRST + dt.timedelta(days=1)}: row \d+, column '{bad.label}': "
        rf"'{BAD_CELL}' is not a boolean",
        line,
    ), line
    assert run.bookmark("calls_history") is None  # the first window failed: nothing is marked done


def test_check_schema_prints_the_setting_that_loads_the_new_columns(simulator, run_tap):
    sim = simulator(
        extra_column="Queue",
        typed_column="Queue size:integer",
        rename_column="Country=Country code",
        bad_cells_every=5,
        rate_limit=100_000,
    )
    config = tap_config(sim, start_date=(TODAY - dt.timedelta(days=3)).isoformat())
    run = run_tap({**config, "check_schema": True}, streams=["calls_history"], check=False)
    assert run.returncode == 1 and run.stdout == ""
    assert "renamed? 'Country' -> 'Country code'" in run.stderr
    assert re.search(rf"calls_history: \d+ of \d+ values of column '{bad_cell_column(CALLS).label}'", run.stderr)
    (command,) = [line.strip() for line in run.stderr.splitlines() if "meltano config" in line]
    setting = json.loads(
        re.fullmatch(r"meltano config set tap-aircall-analytics column_types '(.*)'", command).group(1)
    )
    assert setting == {
        "calls_history": [
            {"label": "Country code", "name": "country", "type": "string"},
            {"label": "Queue size", "type": "integer"},
            {"label": "Queue", "type": "string"},
        ]
    }

    # Pasted as it is, the setting loads the renamed column where it was and the new ones typed.
    pasted = {**config, "column_types": setting, "end_date": TODAY.isoformat()}
    records = run_tap(pasted, streams=["calls_history"], catalog_config=pasted).records["calls_history"]
    assert records and all(record["country"] for record in records)
    assert all(isinstance(record["queue_size"], int) and record["_extra_columns"] is None for record in records)


def test_a_mistake_in_column_types_is_one_line_at_discovery(run_tap, tmp_path):
    import subprocess
    import sys

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"column_types": {"calls_history": [{"label": "Queue", "type": "text"}]}}))
    result = subprocess.run(
        [sys.executable, "-m", "tap_aircall_analytics", "--config", str(config), "--discover"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "tap-aircall-analytics: column_types.calls_history: 'Queue' has type 'text'; use one of boolean, date, "
        "date-time, duration, integer, list, number, percent, string, timestamp"
    )


def test_drift_lands_in_postgres_queryable(installed_plugins, simulator, tmp_path, pg_schema):
    sim = simulator(**DRIFT)
    meltano = Meltano(
        tmp_path,
        sim,
        tap__start_date=FIRST,
        tap__end_date=LAST,
        tap__timezone="Europe/Paris",
        tap__window_days=2,
        tap__extra_reports=json.dumps([QUEUES]),
        tap__column_types=json.dumps(COLUMN_TYPES),
    )
    meltano.settings["TAP_AIRCALL_ANALYTICS__SELECT"] = json.dumps([f"{stream}.*" for stream in STREAMS])
    meltano.set(postgres__database="test", postgres__default_target_schema=pg_schema, postgres__password="unused")
    meltano("run", "tap-aircall-analytics", "target-postgres")

    bad = bad_cell_column(CALLS)
    rows = contract_rows(sim, CALLS)
    with psycopg.connect(POSTGRES) as db:
        stored = {
            call_id: rest
            for call_id, *rest in db.execute(
                f"select call_id, _extra_columns->>'Queue', queue_size, {bad.name}, _unparsed_values->>'{bad.name}', "
                f"duration from {pg_schema}.calls_history"
            ).fetchall()
        }
        queues = db.execute(
            f"select count(*), count(distinct (date, user_id)), min(_extra_columns->>'Queue calls') "
            f"from {pg_schema}.user_activity_queues"
        ).fetchone()
    assert len(stored) == len(rows)
    for row in rows:
        queue, size, flag, raw, duration = stored[int(row[0])]
        assert queue == extra_text(row) and size == int(typed_text(Kind.INTEGER, row)) and duration is not None
        assert (flag, raw) == (
            (None, BAD_CELL)
            if has_bad_cell(row, DRIFT["bad_cells_every"])
            else (row[CALLS.columns.index(bad)] == "Yes", None)
        )
    types = pg_column_types(pg_schema)
    assert types["calls_history.queue_size"] == "bigint"
    assert types["calls_history._extra_columns"] == "jsonb" and types["calls_history._unparsed_values"] == "jsonb"
    assert types["user_activity_queues.wait_seconds"] == "bigint"
    assert queues[0] == queues[1] == len(contract_rows(sim, queue_report(QUEUES))) and queues[2] is not None
