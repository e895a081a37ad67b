"""Each loader of meltano.yml that runs here, end to end: what landed against what the tap emitted.

One drifting export (an unknown column with commas, quotes, line breaks and non-ASCII text; bad
cells; tags) goes through `meltano run` into each target. Every row is compared by its primary
key with the record the tap emitted for it: tags, `_extra_columns`, `_unparsed_values`,
timestamps (UTC), dates and every other value. docs/destinations.md quotes these tests.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
from helpers import DRIFT, Row, assert_landed, emitted_in, instant

from conftest import POSTGRES, TODAY, Meltano, TapRun, pg_column_types
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

FIRST, LAST = TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1)
# The SDK's flattening, one level deep: arrays and objects without declared properties (tags,
# _extra_columns, _unparsed_values) become JSON text, and the schema says string.
JSON_TEXT = {"tap__flattening_enabled": "true", "tap__flattening_max_depth": "1"}


def emitted_by(meltano: Meltano) -> TapRun:
    """The tap's messages, run through Meltano with the same settings as the pipeline."""
    return emitted_in(meltano("invoke", "tap-aircall-analytics").stdout)


@pytest.fixture(scope="module")
def drifting_simulator() -> Iterator[Simulator]:
    """One drifting simulator for the module: its data depends only on its settings and the days."""
    with Simulator(SimulatorConfig(**DRIFT)) as sim:
        yield sim


@pytest.fixture(scope="module")
def emitted(installed_plugins, drifting_simulator, tmp_path_factory) -> TapRun:
    """What the tap emits from the drifting simulator, read once for every loader."""
    emitted = emitted_by(drifting_meltano(tmp_path_factory.mktemp("emitted"), drifting_simulator))
    calls = emitted.records["calls_history"]
    # The export holds every value these tests exist for.
    assert len(emitted.records) == 12 and all(emitted.records.values())
    assert any(record["tags"] for record in calls)
    assert any("\n" in (record["_extra_columns"] or {}).get("Zoë Label", "") for record in calls)
    assert any(record["_unparsed_values"] for record in calls)
    assert any("\n" in (record["line_name"] or "") for record in calls)
    return emitted


def drifting_meltano(folder: Path, sim: Simulator) -> Meltano:
    return Meltano(folder, sim, tap__start_date=FIRST, tap__end_date=LAST)


@pytest.fixture
def drifting(emitted, drifting_simulator, tmp_path) -> tuple[Meltano, TapRun]:
    """A Meltano project of its own pointed at the drifting simulator, and what the tap emits from it."""
    return drifting_meltano(tmp_path, drifting_simulator), emitted


def postgres_rows(schema: str, streams: list[str]) -> dict[str, list[Row]]:
    with psycopg.connect(POSTGRES) as db, db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return {stream: cursor.execute(f'select * from "{schema}"."{stream}"').fetchall() for stream in streams}


def test_meltanolabs_postgres_holds_every_value_the_tap_emitted(drifting, pg_schema):
    meltano, emitted = drifting
    meltano.set(postgres__database="test", postgres__default_target_schema=pg_schema, postgres__password="unused")
    meltano("run", "tap-aircall-analytics", "target-postgres")
    assert_landed(emitted, postgres_rows(pg_schema, list(emitted.records)))
    types = pg_column_types(pg_schema)
    assert types["calls_history.tags"] == "ARRAY"  # text[]
    assert types["calls_history._extra_columns"] == types["calls_history._unparsed_values"] == "jsonb"
    assert types["calls_history.started_at"] == "timestamp without time zone"  # holding UTC
    assert types["user_activity_calls_handled.date"] == "date"


def test_duckdb_holds_every_value_the_tap_emitted(drifting, tmp_path):
    meltano, emitted = drifting
    meltano("run", "tap-aircall-analytics", "target-duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        landed = {}
        for stream in emitted.records:
            cursor = db.execute(f"select * from aircall.{stream}")
            names = [column[0] for column in cursor.description]
            landed[stream] = [dict(zip(names, row)) for row in cursor.fetchall()]
        types = dict(
            db.execute(
                "select table_name || '.' || column_name, data_type from information_schema.columns "
                "where table_schema = 'aircall'"
            ).fetchall()
        )
    assert_landed(emitted, landed)
    assert types["calls_history._extra_columns"] == "JSON" and types["calls_history.tags"] == "JSON"
    assert types["calls_history.started_at"] == "TIMESTAMP"  # holding UTC


def test_pipelinewise_postgres_keeps_rows_and_objects_but_writes_line_breaks_as_backslash_n(drifting, pg_schema):
    meltano, emitted = drifting
    meltano.set(pipelinewise__dbname="test", pipelinewise__default_target_schema=pg_schema, pipelinewise__password="x")
    meltano("run", "tap-aircall-analytics", "target-postgres-pipelinewise")
    meltano("run", "tap-aircall-analytics", "target-postgres-pipelinewise")  # the same days again: upserted

    def with_its_defect(record: Row) -> Row:
        # A line break in a text column arrives as the two characters \n; inside jsonb it is kept.
        return {name: value.replace("\n", "\\n") if isinstance(value, str) else value for name, value in record.items()}

    assert_landed(emitted, postgres_rows(pg_schema, list(emitted.records)), expected=with_its_defect)
    types = pg_column_types(pg_schema)
    assert types["calls_history._extra_columns"] == "jsonb" and types["calls_history.tags"] == "jsonb"
    assert types["calls_history.call_id"] == "numeric"  # integers are numeric, not bigint


def jsonl_rows(folder: Path) -> dict[str, list[Row]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def test_jsonl_keeps_every_value_and_appends_each_run(drifting, tmp_path):
    meltano, emitted = drifting
    meltano.set(jsonl__destination_path=tmp_path / "jsonl")
    meltano("run", "tap-aircall-analytics", "target-jsonl")
    first = jsonl_rows(tmp_path / "jsonl")
    assert first == dict(emitted.records)  # byte for byte the records, in order
    assert_landed(emitted, first)

    meltano("run", "--full-refresh", "tap-aircall-analytics", "target-jsonl")
    again = jsonl_rows(tmp_path / "jsonl")
    assert again == {stream: records + records for stream, records in emitted.records.items()}  # appended


def csv_rows(folder: Path) -> dict[str, list[dict[str, str]]]:
    rows = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            rows[path.stem] = list(csv.DictReader(handle))
    return rows


def text_key(row: Row, keys: list[str], timestamps: set[str]) -> tuple:
    """The primary key of a CSV row or a record, comparable: text, timestamps as instants."""
    return tuple(instant(row[name]) if name in timestamps else str(row[name]) for name in keys)


def test_csv_writes_python_repr_for_arrays_and_objects(drifting, tmp_path):
    meltano, emitted = drifting
    meltano.set(csv__output_path=tmp_path / "csv")
    meltano("run", "tap-aircall-analytics", "target-csv")
    calls = {row["call_id"]: row for row in csv_rows(tmp_path / "csv")["calls_history"]}
    record = next(record for record in emitted.records["calls_history"] if record["tags"])
    stored = calls[str(record["call_id"])]
    assert stored["tags"] == repr(record["tags"])  # "['vip', 'sales']": not JSON
    assert stored["_extra_columns"] == repr(record["_extra_columns"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(stored["tags"])


def test_csv_gets_json_text_with_one_level_of_flattening(drifting, tmp_path):
    meltano, emitted = drifting
    meltano.set(csv__output_path=tmp_path / "csv", **JSON_TEXT)
    meltano("run", "tap-aircall-analytics", "target-csv")
    landed = csv_rows(tmp_path / "csv")
    assert set(landed) == set(emitted.records)
    objects = ("tags", "_extra_columns", "_unparsed_values")
    for stream, records in emitted.records.items():
        properties = emitted.schemas[stream]["properties"]
        timestamps = {name for name, schema in properties.items() if schema.get("format") == "date-time"}
        stored = {text_key(row, emitted.keys[stream], timestamps): row for row in landed[stream]}
        assert len(stored) == len(records) == len(landed[stream]), stream
        for record in records:
            row = stored[text_key(record, emitted.keys[stream], timestamps)]
            for name in objects:
                if name in record:
                    assert (json.loads(row[name]) if row[name] else None) == record[name], f"{stream} {name}"
            for name in timestamps:
                assert (instant(row[name]) if row[name] else None) == (instant(record[name]) if record[name] else None)


def test_json_text_recipe_makes_the_schema_say_string(drifting, tmp_path):
    meltano, _ = drifting
    meltano.set(**JSON_TEXT)
    flattened = emitted_by(meltano)
    for stream, schema in flattened.schemas.items():
        for name in ("_extra_columns", "_unparsed_values"):
            assert schema["properties"][name]["type"] == ["string", "null"], stream
    record = next(record for record in flattened.records["calls_history"] if record["_extra_columns"])
    assert isinstance(record["_extra_columns"], str) and "Zoë Label" in json.loads(record["_extra_columns"])
    assert flattened.schemas["calls_history"]["properties"]["tags"]["type"] == ["string", "null"]
