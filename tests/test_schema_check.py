"""check_schema explains a file and never stops on its header: repeated labels, a missing key."""

from __future__ import annotations

import datetime as dt
import json
import re

from conftest import TODAY, tap_config

FIRST = TODAY - dt.timedelta(days=3)


def setting_of(stderr: str) -> dict:
    (command,) = [line.strip() for line in stderr.splitlines() if "meltano config" in line]
    return json.loads(re.fullmatch(r"meltano config tap-aircall-analytics set column_types '(.*)'", command).group(1))


def test_a_label_that_comes_twice_is_reported_not_a_traceback(simulator, run_tap):
    sim = simulator(extra_column="Queue", typed_column="Queue:integer", rate_limit=100_000)
    run = run_tap(
        {**tap_config(sim, start_date=FIRST.isoformat()), "check_schema": True}, streams=["calls_history"], check=False
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "new column 'Queue'; new column 'Queue (2)'" in run.stderr
    assert setting_of(run.stderr) == {
        "calls_history": [{"label": "Queue", "type": "integer"}, {"label": "Queue (2)", "type": "string"}]
    }


def test_a_missing_key_column_is_reported_and_the_other_streams_checked(simulator, run_tap):
    sim = simulator(drop_column="Call ID", rate_limit=100_000)
    run = run_tap(
        {**tap_config(sim, start_date=FIRST.isoformat()), "check_schema": True},
        streams=["calls_history", "user_activity_calls_handled"],
        check=False,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert any(
        line.startswith("calls_history: the file of")
        and "no 'Call ID' column, which is part of the primary key" in line
        for line in lines
    )
    assert any(line.startswith("user_activity_calls_handled: the header of") for line in lines)


def test_a_column_under_two_spellings_is_read_once_and_reported(simulator, run_tap):
    sim = simulator(extra_column="call_id", rate_limit=100_000)  # a second 'Call ID', spelled otherwise
    run = run_tap(
        {**tap_config(sim, start_date=FIRST.isoformat()), "check_schema": True}, streams=["calls_history"], check=False
    )
    assert "Traceback" not in run.stderr
    assert "column 'call_id' matches 'Call ID' like a column before it" in run.stderr
    records = run_tap(tap_config(sim, start_date=FIRST.isoformat()), streams=["calls_history"])
    rows = records.records["calls_history"]
    assert rows and all(isinstance(row["call_id"], int) and set(row["_extra_columns"]) == {"call_id"} for row in rows)
    assert records.stderr.count("matches 'Call ID' like a column before it") == 1
