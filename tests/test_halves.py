"""A large export file read on two cores gives exactly what reading it whole gives."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME
from tap_aircall_analytics.emit import halves
from tap_aircall_analytics.emit.messages import BufferedMessageWriter
from tap_aircall_analytics.files.records import FileFormatError, RecordReader
from tap_aircall_analytics.simulator.data import FileOptions, ReportData, write_csv

CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]


def calls_file(tmp_path: Path, options: FileOptions | None = None) -> Path:
    """Three days of calls, with names, lines and tags that need quoting (line breaks too)."""
    path = tmp_path / "calls.csv"
    data = ReportData(CALLS, dt.date(2026, 10, 24), dt.date(2026, 10, 26), "Europe/Paris", seed=3, calls_per_day=700)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        write_csv(data, handle, options or FileOptions())
    return path


def messages(reader: RecordReader, path: Path, *, two_cores: bool, monkeypatch) -> tuple[list[dict], int]:
    """The records written for `path`, and their count, read whole or in two halves."""
    monkeypatch.setattr(halves, "SPLIT_BYTES", 1 if two_cores else 1 << 40)
    output = io.BytesIO()
    writer = BufferedMessageWriter(output)
    count = halves.write_records(reader, writer, path, False, "2026-10-24..2026-10-26")
    writer.flush()
    records = [json.loads(line)["record"] for line in output.getvalue().decode().splitlines()]
    return records, count


def test_the_cut_is_a_row_boundary_past_the_middle(tmp_path, monkeypatch):
    path = calls_file(tmp_path)
    monkeypatch.setattr(halves, "SPLIT_BYTES", 1)
    first, second = halves.split(path)
    data = path.read_bytes()
    assert first.end == second.start > len(data) // 2
    assert second.lines_before == data[: second.start].count(b"\n")
    with open(path, newline="", encoding="utf-8") as handle:
        whole = list(csv.reader(handle))
    head = list(csv.reader(io.StringIO(data[: second.start].decode(), newline="")))
    tail = list(csv.reader(io.StringIO(data[second.start :].decode(), newline="")))
    assert head + tail == whole and second.header == whole[0]
    assert any("\n" in field for row in whole for field in row)  # the file has quoted line breaks to cut around


def test_two_halves_give_the_records_of_the_whole_file_in_order(tmp_path, monkeypatch):
    path = calls_file(tmp_path, FileOptions(extra_column="Queue", bad_cells_every=7))
    whole_reader = RecordReader(CALLS, "Europe/Paris", lambda message: None)
    whole, whole_count = messages(whole_reader, path, two_cores=False, monkeypatch=monkeypatch)
    warnings: list[str] = []
    halves_reader = RecordReader(CALLS, "Europe/Paris", warnings.append)
    two, two_count = messages(halves_reader, path, two_cores=True, monkeypatch=monkeypatch)
    assert two == whole and two_count == whole_count == len(whole) > 2000
    assert halves_reader.unparsed == whole_reader.unparsed and sum(halves_reader.unparsed.values()) > 10
    assert len([warning for warning in warnings if "do not parse" in warning]) == 1


def test_a_bad_cell_in_the_second_half_stops_a_strict_run_with_its_row(tmp_path, monkeypatch):
    path = calls_file(tmp_path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[-1][0] = "C-99"  # a key that is not an integer: never loaded
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(FileFormatError) as whole:
        messages(
            RecordReader(CALLS, "UTC", lambda message: None, strict=True),
            path,
            two_cores=False,
            monkeypatch=monkeypatch,
        )
    with pytest.raises(FileFormatError) as two:
        messages(
            RecordReader(CALLS, "UTC", lambda message: None, strict=True), path, two_cores=True, monkeypatch=monkeypatch
        )
    assert str(two.value) == str(whole.value) and "'C-99' is not an integer" in str(two.value)
    assert not list(tmp_path.glob("*.second-half"))


def test_small_and_zipped_files_are_read_whole(tmp_path):
    path = calls_file(tmp_path)
    assert path.stat().st_size < halves.SPLIT_BYTES and halves.split(path) is None


def test_sigterm_while_the_second_half_is_read_stops_both_processes_cleanly(simulator, catalog, tmp_path):
    import signal
    import subprocess

    from test_faults import _read_until, _rest, _start_tap, assert_leftovers_removed

    from conftest import TODAY, TapRun, parse_messages, tap_config

    sim = simulator(calls_per_day=75_000, export_seconds=0, rate_limit=100_000)  # a window of ~40 MB
    last = TODAY - dt.timedelta(days=1)
    config = tap_config(sim, start_date=(last - dt.timedelta(days=1)).isoformat(), end_date=last.isoformat())
    process = _start_tap(tmp_path, catalog, config, None, ["calls_history"])
    seen = _read_until(process, 1000)
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    process.send_signal(signal.SIGTERM)
    rest = _rest(process)
    assert process.returncode == 128 + signal.SIGTERM
    assert children, "the second half was not read by a process of its own"
    # The tap ends its child before it exits: the child is gone, or a zombie waiting to be reaped.
    states = subprocess.run(["ps", "-o", "stat=", "-p", ",".join(children)], capture_output=True, text=True).stdout
    assert all(state.startswith("Z") for state in states.split()), states
    run = parse_messages(seen + rest, TapRun(process.returncode, seen + rest, ""))
    assert run.bookmark("calls_history") is None  # the window was not finished
    assert_leftovers_removed(tmp_path)


def test_where_no_process_can_start_one_core_reads_the_file(tmp_path, monkeypatch):
    path = calls_file(tmp_path)
    whole, _ = messages(
        RecordReader(CALLS, "UTC", lambda message: None), path, two_cores=False, monkeypatch=monkeypatch
    )

    def refuse(*args, **kwargs):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(halves, "_one_core", halves._OneCore())
    monkeypatch.setattr(halves.subprocess, "Popen", refuse)
    one, count = messages(
        RecordReader(CALLS, "UTC", lambda message: None), path, two_cores=True, monkeypatch=monkeypatch
    )
    assert one == whole and count == len(whole)
