"""The smoke part of the suite, run on every Python the package supports (see .ci/run).

Install (the command line and the console script of the installed package), discovery, a
sync in RECORD mode and the same sync in BATCH mode (JSON lines and Parquet), against the
simulator; with test_spellings.py, test_filters.py and test_discovery.py it covers the
parts where interpreters differ most (regular expressions, datetime, DuckDB, zoneinfo).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from helpers import batch_records, batch_settings, canonical

from conftest import ROOT, TAP, TODAY, tap_config
from tap_aircall_analytics.config.catalogue import REPORTS

FIRST, LAST = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2)
STREAMS = ["calls_history", "user_status_history", "user_activity_calls_handled"]


def test_the_installed_package_runs_from_its_console_script():
    script = Path(sys.executable).with_name("tap-aircall-analytics")
    about = json.loads(
        subprocess.run([str(script), "--about", "--format=json"], capture_output=True, text=True, check=True).stdout
    )
    assert about["name"] == "tap-aircall-analytics"
    assert {"start_date", "filters", "column_types", "discover_columns"} <= set(about["settings"]["properties"])


def test_discovery_lists_every_report_with_its_schema(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"start_date": FIRST.isoformat()}))
    catalog = json.loads(
        subprocess.run([*TAP, "--config", str(config), "--discover"], capture_output=True, text=True, check=True).stdout
    )
    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert set(streams) == {report.stream_name for report in REPORTS}
    assert streams["calls_history"]["schema"]["properties"]["started_at"]["format"] == "date-time"


def test_a_sync_in_record_and_batch_mode_emits_the_same_records(simulator, run_tap, tmp_path):
    sim = simulator(rate_limit=100_000, calls_per_day=60)
    config = tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), timezone="Europe/Paris")
    run = run_tap(config, streams=STREAMS)
    assert set(run.records) == set(STREAMS) and all(run.records[stream] for stream in STREAMS)
    assert run.bookmark("calls_history") == (LAST + dt.timedelta(days=1)).isoformat()  # the next day to export
    for fmt in ("jsonl", "parquet"):
        batched = batch_records(
            run_tap(
                {**config, **batch_settings(tmp_path / fmt, fmt, "gzip" if fmt == "jsonl" else "none")},
                streams=STREAMS,
            ),
            fmt,
        )
        for stream in STREAMS:
            assert canonical(batched[stream]) == canonical(run.records[stream]), f"{fmt} {stream}"


def test_the_classifiers_name_the_pythons_ci_runs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    classified = sorted(
        name.rsplit(" ", 1)[-1]
        for name in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", name)
    )
    ci = (ROOT / ".ci" / "run").read_text()
    others = re.findall(r"\.pyenv/versions/(3\.\d+)\.\d+/bin/python", ci)
    assert project["requires-python"] == ">=3.11" and classified == ["3.11", *others] == ["3.11", "3.12", "3.13"]
    assert "./scripts/test" in ci and "tests/test_smoke.py" in ci
