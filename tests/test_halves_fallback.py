"""A large file read on two cores when the second half's process cannot do its part: a script without
a main guard, a process that stops, bad cells counted over the whole file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import textwrap

import pytest
from helpers import CALLS, calls_file, emitted_keys, expected_keys, messages

from conftest import TODAY, TapRun, parse_messages, tap_config
from tap_aircall_analytics import halves
from tap_aircall_analytics.records import RecordReader
from tap_aircall_analytics.reports import REPORTS_BY_STREAM
from tap_aircall_analytics.simulator.data import FileOptions
from tap_aircall_analytics.windows import Window

YESTERDAY = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))


# --- A large file read on two cores ----------------------------------------------------


def test_a_script_without_a_main_guard_syncs_once_with_a_large_file_on_two_cores(simulator, tmp_path):
    sim = simulator(export_seconds=0, calls_per_day=500, rate_limit=100_000)
    config = tap_config(sim, start_date=YESTERDAY.first.isoformat(), end_date=YESTERDAY.last.isoformat())
    script = tmp_path / "sync.py"
    script.write_text(
        textwrap.dedent(f"""
            import sys
            from tap_aircall_analytics import halves
            from tap_aircall_analytics.tap import TapAircallAnalytics

            halves.SPLIT_BYTES = 1000  # every file is read on two cores
            print("the script runs", file=sys.stderr)
            tap = TapAircallAnalytics(config={config!r})
            for name, stream in tap.streams.items():
                stream.selected = name == "calls_history"
            tap.sync_all()
        """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("the script runs") == 1  # the second half's process did not run the script again
    assert "one core" not in result.stderr  # and it did read its half
    run = parse_messages(result.stdout, TapRun(0, result.stdout, result.stderr))
    report = REPORTS_BY_STREAM["calls_history"]
    keys = emitted_keys(report, run.records["calls_history"])
    assert sorted(keys) == sorted(expected_keys(sim, report, YESTERDAY.first, YESTERDAY.last)) and len(keys) > 400
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()].count("SCHEMA") == 1


@pytest.mark.parametrize(
    "child",
    [
        "import sys; sys.exit(3)",  # stops before it reads its part
        "import sys; sys.stdin.buffer.read(); sys.exit(3)",  # stops after
        "import sys; sys.stdin.buffer.read(); print('not an answer')",  # answers what the tap cannot read
    ],
)
def test_a_second_half_process_that_stops_costs_speed_not_the_window(child, tmp_path, monkeypatch, caplog):
    path = calls_file(tmp_path)
    reader = RecordReader(CALLS, "UTC", lambda message: None)
    whole, _ = messages(reader, path, two_cores=False, monkeypatch=monkeypatch)
    started = []
    monkeypatch.setattr(halves, "_one_core", halves._OneCore())
    monkeypatch.setattr(halves, "child_command", lambda: started.append(child) or [sys.executable, "-c", child])
    with caplog.at_level(logging.WARNING, logger="tap_aircall_analytics"):
        for _ in range(2):  # two large files of one run
            records, count = messages(
                RecordReader(CALLS, "UTC", lambda message: None), path, two_cores=True, monkeypatch=monkeypatch
            )
            assert records == whole and count == len(whole)
    assert len(started) == 1  # the second file went to one core at once
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "the process reading the second half stopped" in warning and "read on one core" in warning
    assert not list(tmp_path.glob("*.second-half"))


def test_bad_cells_counted_by_the_tap_itself_after_a_fallback_are_those_of_the_whole_file(tmp_path, monkeypatch):
    path = calls_file(tmp_path, FileOptions(bad_cells_every=7))
    whole_reader = RecordReader(CALLS, "UTC", lambda message: None)
    whole, _ = messages(whole_reader, path, two_cores=False, monkeypatch=monkeypatch)
    monkeypatch.setattr(halves, "_one_core", halves._OneCore())
    monkeypatch.setattr(halves, "child_command", lambda: [sys.executable, "-c", "import sys; sys.exit(1)"])
    reader = RecordReader(CALLS, "UTC", lambda message: None)
    records, _ = messages(reader, path, two_cores=True, monkeypatch=monkeypatch)
    assert records == whole and reader.unparsed == whole_reader.unparsed and sum(reader.unparsed.values()) > 10
