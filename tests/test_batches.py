"""BATCH mode: DuckDB-written files hold exactly the records RECORD mode emits."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import psycopg
import pytest
from helpers import batch_records, batch_settings, canonical
from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from conftest import POSTGRES, Meltano, TapRun, run_tap_in, tap_config
from tap_aircall_analytics import clock
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME
from tap_aircall_analytics.emit.batch_sql import utc_offsets
from tap_aircall_analytics.emit.batches import BatchFileWriter
from tap_aircall_analytics.files.records import FileFormatError, RecordReader, json_schema
from tap_aircall_analytics.planning.windows import Window
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig
from tap_aircall_analytics.simulator.data import ReportData

FIRST, LAST = dt.date(2026, 10, 23), dt.date(2026, 10, 27)  # clocks go back in Paris on the 25th


@pytest.fixture(autouse=True)
def _today_after_the_range(as_of):
    """Every test here runs as of the day after LAST: the range, clock change included, is inside
    every report's retention (User Status History keeps 7 days), whatever the real date."""
    as_of(LAST + dt.timedelta(days=1))


FAULTS = {
    "zipped": True,
    "bom": True,
    "crlf": True,
    "shuffle_columns": True,
    "rate_limit": 100_000,
    "calls_per_day": 150,
}


@pytest.fixture(scope="module")
def record_mode(catalog, tmp_path_factory) -> Iterator[tuple[dict, TapRun]]:
    """A simulator with file faults, and what RECORD mode emits from it: read once for every batch format."""
    with Simulator(SimulatorConfig(**FAULTS)) as sim:
        config = tap_config(
            sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), timezone="Europe/Paris", window_days=2
        )
        with pytest.MonkeyPatch.context() as patch:  # as `_today_after_the_range`, which a module's fixture precedes
            patch.setenv(clock.TODAY_VARIABLE, (LAST + dt.timedelta(days=1)).isoformat())
            records = run_tap_in(tmp_path_factory.mktemp("records"), catalog, config)
        yield config, records


@pytest.mark.parametrize(("fmt", "compression"), [("jsonl", "gzip"), ("parquet", "none")])
def test_batch_files_hold_exactly_the_record_mode_records(record_mode, run_tap, tmp_path, fmt, compression):
    config, records = record_mode
    batched = run_tap({**config, **batch_settings(tmp_path / "batches", fmt, compression)})
    assert "RECORD" not in {json.loads(line)["type"] for line in batched.stdout.splitlines()}
    found = batch_records(batched, fmt)
    every_stream = {report.stream_name for report in REPORTS}
    assert set(found) == set(records.records) == every_stream
    for stream, emitted in records.records.items():
        assert emitted and canonical(found[stream]) == canonical(emitted), stream
    assert batched.state["bookmarks"] == records.state["bookmarks"]  # the tap's own key holds timings


def test_parquet_batches_have_native_types(simulator, run_tap, tmp_path):
    sim = simulator(rate_limit=100_000)
    run = run_tap(
        {
            **tap_config(sim, start_date=FIRST.isoformat(), end_date=FIRST.isoformat()),
            **batch_settings(tmp_path / "b", "parquet", "gzip"),
        },
        streams=["calls_history", "user_activity_calls_handled"],
    )
    types = {}
    for line in run.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "BATCH":
            relation = duckdb.sql(f"select * from read_parquet('{message['manifest'][0].removeprefix('file://')}')")
            types.update({f"{message['stream']}.{c}": str(t) for c, t in zip(relation.columns, relation.types)})
    assert types["calls_history.started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["calls_history.call_id"] == "BIGINT"
    assert types["calls_history.answered"] == "BOOLEAN"
    assert types["calls_history.tags"] == "VARCHAR[]"
    assert types["user_activity_calls_handled.date"] == "DATE"


def test_each_batch_is_followed_by_the_state_of_its_window(simulator, run_tap, tmp_path):
    sim = simulator(rate_limit=100_000)
    run = run_tap(
        {
            **tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), window_days=2),
            **batch_settings(tmp_path / "b"),
        },
        streams=["user_activity_calls_handled"],
    )
    kinds = [
        (
            m["type"],
            m.get("value", {}).get("bookmarks", {}).get("user_activity_calls_handled", {}).get("replication_key_value"),
        )
        for m in map(json.loads, run.stdout.splitlines())
        if m["type"] in ("BATCH", "STATE")
    ]
    batches_then_states = [kind for kind in kinds if kind[0] == "BATCH" or kind[1]]
    assert batches_then_states == [
        ("BATCH", None),
        ("STATE", "2026-10-25"),
        ("BATCH", None),
        ("STATE", "2026-10-27"),
        ("BATCH", None),
        ("STATE", "2026-10-28"),
    ]


def test_deselected_properties_are_left_out_of_batches(simulator, run_tap, tmp_path):
    sim = simulator(rate_limit=100_000)
    run = run_tap(
        {**tap_config(sim, start_date=FIRST.isoformat(), end_date=FIRST.isoformat()), **batch_settings(tmp_path / "b")},
        streams=["calls_history"],
        deselect=("customer_number",),
    )
    rows = batch_records(run, "jsonl")["calls_history"]
    assert rows and all("customer_number" not in row and "call_id" in row for row in rows)


def writer_for(tmp_path: Path, report_name: str, *, strict: bool = False) -> BatchFileWriter:
    report = REPORTS_BY_API_NAME[report_name]
    (tmp_path / "out").mkdir(exist_ok=True)
    return BatchFileWriter(
        RecordReader(report, "UTC", lambda message: None, strict=strict),
        list(json_schema(report)["properties"]),
        BaseBatchFileEncoding(format="jsonl", compression="gzip"),
        StorageTarget(root=(tmp_path / "out").as_uri()),
        "test",
    )


def test_a_bad_cell_in_batch_mode_is_null_with_its_text_kept_and_counted(tmp_path):
    header = "Date,User ID,User name,Team,Inbound calls answered,Outbound calls answered,Missed calls,Calls handled"
    rows = ["2026-07-01,7,Ann,Support,1,2,many,6", "2026-07-01,8,Bo,Support,,2,3,6", "2026-07-01,9,Cy,S,1,x,lots,6"]
    path = tmp_path / "export.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    writer = writer_for(tmp_path, "USER_ACTIVITY_CALLS_HANDLED")
    urls = writer.write(path, zipped=False, window=Window(dt.date(2026, 7, 1), dt.date(2026, 7, 1)), workdir=tmp_path)
    found = {}
    for url in urls:
        with gzip.open(url.removeprefix("file://"), "rt") as lines:
            found.update({row["user_id"]: row for row in map(json.loads, lines)})
    assert found[7]["missed_calls"] is None and found[7]["_unparsed_values"] == {"missed_calls": "many"}
    assert found[8]["inbound_calls_answered"] is None and found[8]["_unparsed_values"] is None  # empty is null
    assert found[9]["_unparsed_values"] == {"outbound_calls_answered": "x", "missed_calls": "lots"}
    assert writer.reader.unparsed == {"Missed calls": 2, "Outbound calls answered": 1}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Duration", "1:2", "row 2, column 'Duration': '1:2' is not a duration"),
        ("Answered", "maybe", "row 2, column 'Answered': 'maybe' is not a boolean"),
        ("Started at", "2026-07-01", "row 2, column 'Started at': '2026-07-01' is not a timestamp"),
        ("Call ID", "", "row 2, column 'Call ID': key column is empty"),
        ("Call ID", "C-1", "row 2, column 'Call ID': 'C-1' is not an integer"),
    ],
)
def test_strict_batch_mode_names_the_row_column_and_value(tmp_path, field, value, message):
    labels = [column.label for column in REPORTS_BY_API_NAME["CALLS_HISTORY"].columns]
    row = {label: "" for label in labels}
    row.update({"Call ID": "1", "Started at": "2026-07-01 10:00:00"})
    row[field] = value
    path = tmp_path / "export.csv"
    path.write_text(",".join(labels) + "\n" + ",".join(row.values()) + "\n")
    writer = writer_for(tmp_path, "CALLS_HISTORY", strict=True)
    with pytest.raises(FileFormatError, match=message) as error:
        writer.write(path, zipped=False, window=Window(dt.date(2026, 7, 1), dt.date(2026, 7, 1)), workdir=tmp_path)
    assert "\n" not in str(error.value)


def test_offsets_follow_zoneinfo_on_both_daylight_saving_changes():
    changes = utc_offsets("Europe/Paris", Window(dt.date(2026, 10, 24), dt.date(2026, 10, 26)))
    assert changes == [(None, 7200), (dt.datetime(2026, 10, 25, 3, 0), 3600)]
    spring = utc_offsets("Europe/Paris", Window(dt.date(2026, 3, 29), dt.date(2026, 3, 29)))
    assert spring == [(None, 3600), (dt.datetime(2026, 3, 29, 3, 0), 7200)]


def test_jsonl_gz_batches_load_into_postgres_like_record_mode(installed_plugins, simulator, tmp_path):
    sim = simulator(rate_limit=100_000)
    suffix = uuid.uuid4().hex[:8]  # unique across concurrent runs, as pg_schema is
    schemas = {"record": f"e2e_record_{suffix}", "batch": f"e2e_batch_{suffix}"}
    columns = ", ".join(column.name for column in REPORTS_BY_API_NAME["CALLS_HISTORY"].columns)

    def load(mode: str, schema: str) -> None:
        meltano = Meltano(tmp_path / mode, sim, tap__start_date=FIRST, tap__end_date=LAST, tap__timezone="Europe/Paris")
        meltano.settings["TAP_AIRCALL_ANALYTICS__SELECT"] = '["calls_history.*"]'
        meltano.set(postgres__database="test", postgres__default_target_schema=schema, postgres__password="unused")
        if mode == "batch":
            meltano.set(tap__batch_config=json.dumps(batch_settings(tmp_path / "batches")["batch_config"]))
        meltano("run", "tap-aircall-analytics", "target-postgres")

    try:
        with ThreadPoolExecutor(len(schemas)) as pool:  # each waits on Meltano and its plugins most of its time
            list(pool.map(load, schemas, schemas.values()))
        assert any((tmp_path / "batches").iterdir())
        with psycopg.connect(POSTGRES) as db:
            tables = [
                db.execute(f"select {columns} from {schema}.calls_history order by call_id").fetchall()
                for schema in schemas.values()
            ]
        assert tables[0] == tables[1] and len(tables[0]) == len(
            sim.expected_rows("CALLS_HISTORY", FIRST, LAST, "Europe/Paris")[1]
        )
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as db:
            for schema in schemas.values():
                db.execute(f"drop schema if exists {schema} cascade")


@pytest.mark.parametrize("text", ["27:03:10", "0:00:05", "3:10", ":03:10", "1:2:03", "x:03:10", "1:02:03:04", "5"])
def test_a_duration_reads_the_same_in_batch_and_record_mode(tmp_path, text):
    header = "Date,User ID,User name,Team,Calls with after-call work,Total after-call work time"
    path = tmp_path / "export.csv"
    path.write_text(f'{header}\n2026-07-01,7,Ann,Support,1,"{text}"\n')
    report = REPORTS_BY_API_NAME["USER_ACTIVITY_AVERAGE_AFTER_CALL_WORK_TIME_PER_USER"]
    (record,) = RecordReader(report, "UTC", lambda message: None).read(path)
    writer = writer_for(tmp_path, report.api_name)
    urls = writer.write(path, zipped=False, window=Window(dt.date(2026, 7, 1), dt.date(2026, 7, 1)), workdir=tmp_path)
    batched = []
    for url in urls:
        with gzip.open(url.removeprefix("file://"), "rt") as lines:
            batched.extend(map(json.loads, lines))
    assert batched == [record]


def test_a_large_json_lines_batch_is_written_within_duckdbs_memory_limit(tmp_path):
    """100,000 Call History rows (26 MB): more than DuckDB once held in its 48 MB when each thread wrote a file."""
    report = REPORTS_BY_API_NAME["CALLS_HISTORY"]
    day = dt.date(2026, 7, 1)
    path = tmp_path / "export.csv"
    data = ReportData(report, day, day, "UTC", seed=7, calls_per_day=100_000)
    with open(path, "w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(data.labels)
        expected = sum(1 for row in data.rows() if rows.writerow(row))
    assert path.stat().st_size > 20_000_000
    writer = BatchFileWriter(
        RecordReader(report, "UTC", lambda message: None),
        list(json_schema(report)["properties"]),
        BaseBatchFileEncoding(format="jsonl", compression="none"),
        StorageTarget(root=(tmp_path / "out").as_uri()),
        "test",
    )
    urls = writer.write(path, zipped=False, window=Window(day, day), workdir=tmp_path)
    call_ids = set()
    for url in urls:
        with open(url.removeprefix("file://")) as lines:
            call_ids.update(json.loads(line)["call_id"] for line in lines)
    assert writer.rows_written == expected == len(call_ids)


# The personal-data recipe (docs/streams.md) and the JSON-text recipe (docs/destinations.md), together.
MAPPED = {
    "stream_maps": {
        "calls_history": {
            "customer_number": "md5(customer_number) if customer_number else None",
            "user_name": "__NULL__",
        }
    },
    "flattening_enabled": True,
    "flattening_max_depth": 1,
}


def test_batch_files_hold_what_stream_maps_and_flattening_make(simulator, run_tap, tmp_path):
    # The SDK batches records before its maps run, under the SCHEMA the maps make: the tap
    # feeds the batcher mapped records, so a hashed number is hashed in the files too.
    sim = simulator(extra_column="Zoë Label", bad_cells_every=4, rate_limit=100_000)
    config = {**tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat()), **MAPPED}
    streams = ["calls_history", "user_activity_calls_handled"]
    records = run_tap(config, streams=streams)
    batched = run_tap({**config, **batch_settings(tmp_path / "batches")}, streams=streams)
    found = batch_records(batched, "jsonl")
    assert batched.schemas == records.schemas and found.keys() == records.records.keys()
    for stream in streams:
        assert canonical(found[stream]) == canonical(records.records[stream]), stream
    calls = found["calls_history"]
    assert all("user_name" not in record and "+33" not in (record["customer_number"] or "") for record in calls)
    assert any(
        isinstance(record["_extra_columns"], str) and "Zoë Label" in json.loads(record["_extra_columns"])
        for record in calls
    )


def test_a_map_that_renames_a_stream_is_refused_in_batch_mode(simulator, run_tap, tmp_path):
    sim = simulator()
    config = tap_config(sim, start_date=LAST.isoformat(), end_date=LAST.isoformat())
    maps = {"stream_maps": {"calls": {"__source__": "calls_history"}}}
    run = run_tap({**config, **maps, **batch_settings(tmp_path / "batches")}, streams=["calls_history"], check=False)
    assert run.returncode != 0 and "BATCH" not in run.stdout
    assert run.stderr.strip().splitlines()[-1] == (
        "tap-aircall-analytics: stream_maps: calls_history is mapped to calls_history, calls; with batch_config "
        "a map may change a stream's properties but not rename, split or drop it"
    )
