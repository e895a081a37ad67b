"""check_schema explains a file and never stops on its header: repeated labels, a missing key."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import MELTANO, ROOT, TODAY, _env, tap_config

FIRST = TODAY - dt.timedelta(days=3)


def setting_of(stderr: str) -> dict:
    (command,) = [line.strip() for line in stderr.splitlines() if "meltano config" in line]
    return json.loads(re.fullmatch(r"meltano config set tap-aircall-analytics column_types '(.*)'", command).group(1))


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


def test_the_printed_column_types_command_sets_the_setting_when_pasted(simulator, run_tap, tmp_path):
    sim = simulator(extra_column="Queue", typed_column="Queue size:integer", rate_limit=100_000)
    run = run_tap(
        {**tap_config(sim, start_date=FIRST.isoformat()), "check_schema": True}, streams=["calls_history"], check=False
    )
    (command,) = [line.strip() for line in run.stderr.splitlines() if "meltano config" in line]
    project = tmp_path / "project"  # a copy: pasting into the repository's own project would change it
    project.mkdir()
    shutil.copyfile(ROOT / "meltano.yml", project / "meltano.yml")
    shell = {key: value for key, value in _env({}).items() if key != "MELTANO_ENVIRONMENT"}  # as a user's shell
    pasted = subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env={**shell, "PATH": f"{Path(MELTANO).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    (extractor,) = [
        plugin
        for plugin in yaml.safe_load((project / "meltano.yml").read_text())["plugins"]["extractors"]
        if plugin["name"] == "tap-aircall-analytics"
    ]
    assert (
        extractor["config"]["column_types"]
        == setting_of(run.stderr)
        == {"calls_history": [{"label": "Queue size", "type": "integer"}, {"label": "Queue", "type": "string"}]}
    )
