"""Helpers shared by several test files: expected and emitted keys, a tap process read step by
step, an exporter of its own, the records of BATCH files, a tap's peak RSS and CPU time, what a
destination landed against what the tap emitted.

Test files import these from here, never from each other (fixtures live in conftest.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import os
import subprocess
import threading
import zoneinfo
from collections.abc import Callable
from pathlib import Path

import duckdb

from conftest import TAP, TODAY, TapRun, parse_messages, selected_catalog, tap_config
from tap_aircall_analytics import clock
from tap_aircall_analytics.api.client import AircallClient
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME, export_request_body
from tap_aircall_analytics.config.settings import Settings
from tap_aircall_analytics.exports.pipeline import ExportPipeline, PollPolicy, ReportExporter
from tap_aircall_analytics.planning.windows import Window


def expected_keys(sim, report, first, last, timezone="UTC"):
    labels, rows = sim.expected_rows(report.api_name, first, last, timezone)
    columns = [labels.index(report.column(name).label) for name in report.primary_key]
    return [tuple(row[i] for i in columns) for row in rows]


def expected_counts(sim, first: dt.date, last: dt.date, timezone: str = "UTC") -> dict[str, int]:
    """Each stream's rows in the simulator from `first` to `last`, from each report's earliest day on."""
    counts = {}
    today = clock.today(zoneinfo.ZoneInfo(timezone))
    for report in REPORTS:
        earliest = report.earliest_day(today)
        start = max(first, earliest) if earliest else first
        counts[report.stream_name] = (
            len(sim.expected_rows(report.api_name, start, last, timezone)[1]) if start <= last else 0
        )
    return counts


def emitted_keys(report, records, timezone="UTC"):
    """Keys as text, comparable with the simulator's rows (timestamps back to wall-clock time in `timezone`)."""
    zone = zoneinfo.ZoneInfo(timezone)

    def text(value):
        if isinstance(value, str) and value.endswith("+00:00"):
            return dt.datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        return str(value)

    return [tuple(text(record[name]) for name in report.primary_key) for record in records]


def assert_leftovers_removed(tmp: Path) -> None:
    assert [p.name for p in tmp.iterdir() if p.name.startswith("tap-aircall-analytics-")] == []


def exporter_for(sim, report_name="CALLS_HISTORY"):
    settings = Settings.from_config(tap_config(sim, start_date=TODAY.isoformat()))
    report = REPORTS_BY_API_NAME[report_name]
    messages: list[str] = []
    client = AircallClient(settings.api_url, settings.authorization)
    exporter = ReportExporter(
        client,
        report,
        lambda w: export_request_body(report, w.first, w.last, "UTC"),
        poll=PollPolicy(0.05, 0.2, 30),
        progress=messages.append,
    )
    return exporter, messages


def exported_windows(exporter, windows, max_concurrent=2) -> list[Window]:
    """Run `windows` through a pipeline of their own; the windows of the files, in the order read."""
    pipeline = ExportPipeline(max_concurrent=max_concurrent, max_disk_bytes=1e12, stop=exporter.client.stop)
    pipeline.add(exporter, windows)
    with pipeline:
        return [file.window for file in pipeline.files(exporter.stream)]


def start_tap(tmp_path: Path, catalog: dict, config: dict, state: dict | None, streams: list[str]):
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(selected_catalog(catalog, streams)))
    command = [*TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
    if state:
        (tmp_path / "state.json").write_text(json.dumps(state))
        command += ["--state", str(tmp_path / "state.json")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    with open(tmp_path / "stderr.log", "a") as stderr:  # a file: a chatty tap never blocks on a full pipe
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def read_until(process, stop_after_records: int) -> str:
    """Read stdout until `stop_after_records` records went by; return the lines read."""
    lines: list[str] = []
    records = 0
    for line in process.stdout:
        lines.append(line)
        records += line.startswith('{"type":"RECORD"')
        if records >= stop_after_records:
            break
    return "".join(lines)


def rest_of_output(process, timeout: float = 120) -> str:
    """The rest of stdout once the process ended, without a line cut off by a kill.

    A tap that does not end within `timeout` is killed and the test fails: the bound only
    catches a hang, no test passes by it.
    """
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    with process.stdout:
        rest = process.stdout.read()
    process.wait()
    ended_by_itself = watchdog.is_alive()
    watchdog.cancel()
    assert ended_by_itself, f"the tap did not end within {timeout} s"
    return rest[: rest.rfind("\n") + 1]


def batch_settings(root: Path, fmt: str = "jsonl", compression: str = "gzip") -> dict:
    """A batch_config writing into `root` (created here)."""
    root.mkdir(exist_ok=True)
    return {
        "batch_config": {
            "encoding": {"format": fmt, "compression": compression},
            "storage": {"root": root.as_uri(), "prefix": "run-"},
        }
    }


def canonical(records: list[dict]) -> list[str]:
    """Records as sorted JSON texts: a batch is a set of rows, in no particular order."""
    return sorted(json.dumps(record, sort_keys=True) for record in records)


def from_parquet(path: str) -> list[dict]:
    def plain(value):
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    relation = duckdb.sql(f"select * from read_parquet('{path}')")
    return [dict(zip(relation.columns, map(plain, row))) for row in relation.fetchall()]


def batch_records(run, fmt: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for line in run.stdout.splitlines():
        message = json.loads(line)
        if message["type"] != "BATCH":
            continue
        for url in message["manifest"]:
            path = url.removeprefix("file://")
            if fmt == "parquet":
                rows = from_parquet(path)
            else:
                with gzip.open(path, "rt") as handle:
                    rows = [json.loads(line) for line in handle]
            found.setdefault(message["stream"], []).extend(rows)
    return found


def export_starts(sim, report: str) -> list[str]:
    return [
        body["input"]["filter"]["dateFilter"]["absoluteRange"]["fromDate"]
        for method, _, body in sim.api_requests
        if method == "POST" and body["input"]["reportName"] == report
    ]


# --- What a destination landed, against what the tap emitted -----------------------------------

# The unknown column's label is not a valid column name anywhere: its key must land as is.
DRIFT = {"extra_column": "Zoë Label", "bad_cells_every": 4, "calls_per_day": 20, "rate_limit": 100_000}
Row = dict[str, object]


def emitted_in(messages: str) -> TapRun:
    """The records, schemas and keys of the tap's Singer messages."""
    return parse_messages(messages, TapRun(0, messages, ""))


def instant(value: object) -> dt.datetime:
    """A stored or emitted date-time as an aware UTC datetime; a naive one is read as UTC."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def as_emitted(value: object, schema: dict) -> object:
    """A stored value in the form the tap emits it, read by the property's JSON schema."""
    types = schema.get("type", [])
    if value is None:
        return None
    if schema.get("format") == "date-time":
        return instant(value).isoformat()
    if schema.get("format") == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if isinstance(value, str) and ("object" in types or "array" in types):
        return json.loads(value)  # a JSON column read back as text
    if isinstance(value, decimal.Decimal):
        return int(value) if "integer" in types else float(value)
    if "integer" in types:
        return int(value)
    return value


def canonical_row(record: Row, schema: dict) -> Row:
    """`record` with its timestamps as one UTC spelling."""
    properties = schema["properties"]
    return {name: as_emitted(value, properties[name]) for name, value in record.items()}


def assert_landed(emitted: TapRun, landed: dict[str, list[Row]], *, expected: Callable[[Row], Row] = dict) -> None:
    """Every emitted record landed once, with every value intact (after `expected`), nothing else."""
    assert set(landed) == set(emitted.records)
    for stream, rows in landed.items():
        schema = emitted.schemas[stream]
        keys = emitted.keys[stream]
        stored = {}
        for row in rows:
            value = canonical_row({name: row[name] for name in schema["properties"]}, schema)
            stored[tuple(value[key] for key in keys)] = value
        assert len(stored) == len(rows), f"{stream}: a primary key landed twice"
        wanted = {key: expected(canonical_row(record, schema)) for key, record in emitted.by_key(stream).items()}
        assert stored.keys() == wanted.keys(), stream
        for key, record in wanted.items():
            assert stored[key] == record, f"{stream} {key}"


# --- The tap's own peak RSS and CPU time -------------------------------------------------------

RSS_BOUND_MB = 300  # the tap reads every file here within this (it needs about 100 MB; DuckDB buffers add some)


#: Runs a command and writes its peak RSS (KiB) and CPU seconds to argv[1]. Linux starts a child's peak RSS at
#: that of the process it was forked from, so the tap is started from this small interpreter,
#: not from pytest (hundreds of MB late in a full run), to measure the tap alone.
PEAK_RSS = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""
