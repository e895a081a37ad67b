"""BigQuery and Snowflake through the loaders users pick, on local emulators.

The tap reads the drifting simulator; its messages go to the real loader (`z3-target-bigquery`,
`meltanolabs-target-snowflake`), unmodified, in its own environment (tests/warehouses/<name>/
requirements.txt, built once into .cache/venvs); the loader writes into an emulator of the
warehouse. BigQuery: every landed row is compared by key with what the tap emitted, for both
load methods, then a second run upserts changed and new rows. Snowflake: what fakesnow can show
(the loader's tables and column types; the values, by INSERT in place of the loader's stage); its
PUT, COPY and MERGE are not emulated, and their errors are pinned. Loader
defects are pinned by tests that fail once the loader fixes them. README "Destinations" quotes
these tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import requests
import yaml
from helpers import DRIFT, Row, assert_landed, emitted_in

from conftest import CREDENTIALS, FAST_POLLING, ROOT, TODAY, TapRun, requirements_venv, run_in_process, selected_catalog
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

WAREHOUSES = Path(__file__).parent / "warehouses"
PROJECT = "aircall-test"  # the emulator's project (tests/warehouses/bqemulator/launch.py)
# A few streams, every kind of value: timestamps, booleans, an array, two objects (calls_history),
# a key holding a timestamp (user_status_history), dates and percentages (the per-user-per-day one).
BIGQUERY_STREAMS = ["calls_history", "user_status_history", "user_activity_percentage_of_time_in_each_status"]
# The first run reads three days; the second reads them with other bad cells (changed rows) and
# one more day (new rows), as a run with lookback_days re-reads days whose data changed.
FIRST_DAYS = (TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=2))
SECOND_DAYS = (TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=1))
SECOND_DRIFT = {**DRIFT, "bad_cells_every": 3}


def warehouse_venv(name: str) -> Path:
    return requirements_venv(name, WAREHOUSES / name / "requirements.txt")


def tap_messages(
    drift: dict, days: tuple[dt.date, dt.date], streams: list[str] | None, catalog: dict, folder: Path
) -> str:
    """The Singer messages of one run of the tap's command line (in this process) on a drifting simulator."""
    config = {**CREDENTIALS, **FAST_POLLING, "start_date": days[0].isoformat(), "end_date": days[1].isoformat()}
    with Simulator(SimulatorConfig(**drift)) as sim:
        (folder / "tap.json").write_text(json.dumps({**config, "api_url": sim.api_url}))
        (folder / "catalog.json").write_text(json.dumps(selected_catalog(catalog, streams)))
        code, stdout, stderr = run_in_process(
            ["--config", str(folder / "tap.json"), "--catalog", str(folder / "catalog.json")]
        )
        assert code == 0, stderr[-3000:]
        return stdout


def upserted(first: TapRun, second: TapRun) -> TapRun:
    """What a table holds after `first` then `second` were upserted on their primary keys."""
    merged = TapRun(0, "", "", schemas=second.schemas, keys=second.keys)
    for stream in first.records:
        merged.records[stream] = list({**first.by_key(stream), **second.by_key(stream)}.values())
    return merged


# --- BigQuery ----------------------------------------------------------------------------------


@dataclass
class BigQuery:
    """A running bqemulator: its REST address and the service-account file the loader signs in with."""

    url: str
    credentials: Path

    def load(self, messages: str, folder: Path, **settings: object) -> subprocess.CompletedProcess:
        """Run target-bigquery on `messages` into this emulator."""
        config = {"project": PROJECT, "credentials_path": str(self.credentials), "denormalized": True, **settings}
        (folder / "target-bigquery.json").write_text(json.dumps(config))
        venv = warehouse_venv("target-bigquery")
        return subprocess.run(
            [str(venv / "bin" / "target-bigquery"), "--config", str(folder / "target-bigquery.json")],
            input=messages,
            capture_output=True,
            text=True,
            timeout=600,
            # The Python client sends its REST calls here (with the scheme), not to Google.
            env={**os.environ, "BIGQUERY_EMULATOR_HOST": self.url},
        )

    def columns(self, dataset: str, table: str) -> dict[str, str]:
        """Each column's BigQuery type as the loader created it: `TIMESTAMP`, `STRING REPEATED`."""
        url = f"{self.url}/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{table}"
        answer = requests.get(url, timeout=30)
        answer.raise_for_status()
        return {
            field["name"]: field["type"].upper() + (" REPEATED" if field.get("mode") == "REPEATED" else "")
            for field in answer.json()["schema"]["fields"]
        }

    def rows(self, dataset: str, table: str) -> list[Row]:
        """Every row of a table, as the REST API answers it, read into Python by each column's type."""
        types = self.columns(dataset, table)
        names = list(types)
        url = f"{self.url}/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{table}/data"
        rows: list[Row] = []
        page: dict[str, str] = {}
        while True:
            answer = requests.get(url, params={"formatOptions.useInt64Timestamp": "true", **page}, timeout=30)
            answer.raise_for_status()
            body = answer.json()
            for row in body.get("rows", []):
                rows.append({name: bigquery_value(cell["v"], types[name]) for name, cell in zip(names, row["f"])})
            if not body.get("pageToken"):
                return rows
            page = {"pageToken": body["pageToken"]}

    def tables(self, dataset: str, streams: list[str]) -> dict[str, list[Row]]:
        return {stream: self.rows(dataset, stream) for stream in streams}


def bigquery_value(value: object, kind: str) -> object:
    """A cell of the REST API's answer (text, or a list of {"v": ...}) as the Python value it stands for."""
    if kind.endswith(" REPEATED"):
        assert isinstance(value, list)
        return [bigquery_value(item["v"], kind.removesuffix(" REPEATED")) for item in value]
    if value is None:
        return None
    assert isinstance(value, str)
    if kind == "TIMESTAMP":  # microseconds since the epoch, UTC
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=int(value))
    if kind == "DATE":
        return dt.date.fromisoformat(value)
    if kind == "BOOLEAN":
        assert value in ("true", "false")
        return value == "true"
    if kind == "INTEGER":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "JSON":
        return json.loads(value)
    assert kind == "STRING", kind
    return value


@contextmanager
def bigquery_emulator(folder: Path, *options: str) -> Iterator[BigQuery]:
    """bqemulator on free ports, as tests/warehouses/bqemulator/launch.py starts it; stopped after."""
    venv = warehouse_venv("bqemulator")
    credentials = folder / "service-account.json"
    with (folder / "bqemulator.log").open("w") as log:
        emulator = subprocess.Popen(
            [str(venv / "bin" / "python"), str(WAREHOUSES / "bqemulator" / "launch.py"), str(credentials), *options],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            ready = emulator.stdout.readline()  # one line once it listens; nothing if it died
            assert ready, f"bqemulator did not start:\n{(folder / 'bqemulator.log').read_text()[-3000:]}"
            yield BigQuery(f"http://127.0.0.1:{json.loads(ready)['rest']}", credentials)
        finally:
            emulator.terminate()
            emulator.wait(timeout=60)
            emulator.stdout.close()


@dataclass
class BigQueryLoads:
    """Two runs of the tap loaded by each method, and what the tables held after each."""

    first: TapRun
    second: TapRun
    results: dict[str, list[subprocess.CompletedProcess]]
    landed: dict[str, list[dict[str, list[Row]]]]
    columns: dict[str, dict[str, str]]


METHODS = ("streaming_insert", "batch_job")


def load_by_method(bigquery: BigQuery, messages: str, folder: Path, method: str) -> subprocess.CompletedProcess:
    """Load `messages` with `method` into the dataset of that name, upserting on the primary keys."""
    (folder / method).mkdir(exist_ok=True)
    return bigquery.load(messages, folder / method, method=method, dataset=method, upsert=True)


@pytest.fixture(scope="module")
def tap_runs(catalog, tmp_path_factory) -> tuple[str, str]:
    """The Singer messages of the tap's two runs on the BigQuery streams."""
    folder = tmp_path_factory.mktemp("tap")
    return (
        tap_messages(DRIFT, FIRST_DAYS, BIGQUERY_STREAMS, catalog, folder),
        tap_messages(SECOND_DRIFT, SECOND_DAYS, BIGQUERY_STREAMS, catalog, folder),
    )


@pytest.fixture(scope="module")
def environments() -> None:
    """The loaders' and the emulator's environments, built at once on a fresh machine (minutes each)."""
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(warehouse_venv, ["bqemulator", "target-bigquery", "target-snowflake"]))


@pytest.fixture(scope="module")
def bigquery(environments, tmp_path_factory) -> Iterator[BigQuery]:
    """One emulator for the module (each load writes its own dataset)."""
    with bigquery_emulator(tmp_path_factory.mktemp("bqemulator")) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def bigquery_loads(bigquery, tap_runs, tmp_path_factory) -> BigQueryLoads:
    """The tap's two runs, each loaded with both methods at once (into a dataset each) with upsert."""
    folder = tmp_path_factory.mktemp("bigquery")
    results: dict[str, list[subprocess.CompletedProcess]] = {method: [] for method in METHODS}
    landed: dict[str, list[dict[str, list[Row]]]] = {method: [] for method in METHODS}
    with ThreadPoolExecutor(len(METHODS)) as pool:
        for messages in tap_runs:
            # The loader sleeps 5 s after creating each table: both methods load side by side.
            runs = pool.map(partial(load_by_method, bigquery, messages, folder), METHODS)
            for method, result in zip(METHODS, runs):
                results[method].append(result)
                landed[method].append(bigquery.tables(method, BIGQUERY_STREAMS))
    columns = {stream: bigquery.columns("batch_job", stream) for stream in BIGQUERY_STREAMS}
    return BigQueryLoads(emitted_in(tap_runs[0]), emitted_in(tap_runs[1]), results, landed, columns)


def with_empty_arrays(record: Row) -> Row:
    """BigQuery has no null array: a REPEATED column holds [] where the tap emitted null."""
    return {name: [] if value is None and name == "tags" else value for name, value in record.items()}


@pytest.mark.parametrize("method", METHODS)
def test_bigquery_holds_every_value_the_tap_emitted_and_upserts_the_second_run(bigquery_loads, method):
    loads = bigquery_loads
    for result in loads.results[method]:
        assert result.returncode == 0, result.stderr[-3000:]
    first, after_first = loads.first, loads.landed[method][0]
    assert any(record["tags"] is None for record in first.records["calls_history"])
    assert_landed(first, after_first, expected=with_empty_arrays)

    # The second run re-read the three days, some rows changed, and read a new day.
    second = loads.second
    for stream in BIGQUERY_STREAMS:
        before, again = first.by_key(stream), second.by_key(stream)
        assert before.keys() < again.keys(), stream  # new rows
    calls_before, calls_again = first.by_key("calls_history"), second.by_key("calls_history")
    assert any(calls_again[key] != record for key, record in calls_before.items())  # changed rows
    assert_landed(upserted(first, second), loads.landed[method][1], expected=with_empty_arrays)


def test_bigquery_column_types_as_the_loader_creates_them(bigquery_loads):
    calls = bigquery_loads.columns["calls_history"]
    assert calls["call_id"] == "INTEGER"
    assert calls["started_at"] == "TIMESTAMP"
    assert calls["answered"] == "BOOLEAN"
    assert calls["tags"] == "STRING REPEATED"
    assert calls["_extra_columns"] == calls["_unparsed_values"] == "JSON"
    assert calls["line_name"] == "STRING"
    percentages = bigquery_loads.columns["user_activity_percentage_of_time_in_each_status"]
    assert percentages["date"] == "DATE"
    assert "FLOAT" in percentages.values()


# --- Loader defects, each pinned: these tests fail once the loader fixes them -----------------


def only_stream(messages: str, stream: str) -> str:
    """The messages of one stream (and the STATE messages) of a run of the tap."""
    return "".join(line + "\n" for line in messages.splitlines() if json.loads(line).get("stream", stream) == stream)


def test_bigquery_batch_job_exits_0_with_nothing_loaded_when_its_upload_is_refused(tap_runs, tmp_path):
    # bqemulator without the gunzip workaround answers the loader's gzip upload "400 Malformed JSON":
    # the loader retries in a worker, says nothing, and exits 0 with the tap's final state passed on.
    messages = only_stream(tap_runs[0], "calls_history")
    emitted = emitted_in(messages).records["calls_history"]
    with bigquery_emulator(tmp_path, "--refuse-gzip") as refusing:
        result = refusing.load(messages, tmp_path, method="batch_job", dataset="refused")
        landed = refusing.rows("refused", "calls_history")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(emitted) == 60 and landed == []  # the row-count check that catches it: 0 rows of 60
    assert "Loaded" not in result.stderr and "Error" not in result.stderr
    # ... and the tap's last state is passed on: the next run starts after the lost days.
    tap_state = [json.loads(line)["value"] for line in messages.splitlines() if '"type":"STATE"' in line][-1]
    assert json.loads(result.stdout.splitlines()[-1]) == tap_state


def test_bigquery_storage_write_api_fails_on_current_protobuf(bigquery, tap_runs, tmp_path):
    result = bigquery.load(
        only_stream(tap_runs[0], "calls_history"), tmp_path, method="storage_write_api", dataset="storage_write"
    )
    assert result.returncode == 1
    assert "AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'" in result.stderr


def test_bigquery_storage_write_api_denormalized_fails_on_an_object(bigquery, tap_runs, tmp_path):
    # With protobuf's old GetPrototype given back, the next failure: the loader hands the object
    # `_extra_columns` as a dict to a JSON column, which its protobuf message holds as a string.
    config = {"project": PROJECT, "credentials_path": str(bigquery.credentials), "dataset": "denormalized"}
    config |= {"method": "storage_write_api", "denormalized": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    venv = warehouse_venv("target-bigquery")
    result = subprocess.run(
        [str(venv / "bin" / "python"), WAREHOUSES / "target-bigquery" / "old_protobuf.py", "--config", "config.json"],
        cwd=tmp_path,
        input=only_stream(tap_runs[0], "calls_history"),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BIGQUERY_EMULATOR_HOST": bigquery.url},
    )
    assert result.returncode == 1
    message = "Failed to parse _extra_columns field: expected string or bytes-like object, got 'dict'"
    assert message in result.stderr


def test_bigquery_loader_needs_pkg_resources_from_setuptools_before_81():
    # setuptools 81 removed pkg_resources; the loader's singer-sdk 0.22 imports it (through `fs`).
    # Blocking the module is what a venv with setuptools 81 or later does.
    venv = warehouse_venv("target-bigquery")
    start = "import sys; sys.modules['pkg_resources'] = None; from target_bigquery.target import TargetBigQuery"
    result = subprocess.run([str(venv / "bin" / "python"), "-c", start], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "ModuleNotFoundError: import of pkg_resources halted" in result.stderr


# --- Snowflake -----------------------------------------------------------------------------------

SNOWFLAKE = {
    "account": "fakesnow",
    "user": "loader",
    "password": "unused",
    "role": "loader",
    "warehouse": "loading",
    "database": "AIRCALL_DB",
    "default_target_schema": "AIRCALL",
    "add_record_metadata": False,
}
# The Snowflake type of each JSON schema type, as fakesnow's INFORMATION_SCHEMA names it (FLOAT is
# Snowflake's name for its DOUBLE; VARIANT holds arrays and objects).
SNOWFLAKE_TYPES = {
    "integer": "NUMBER",
    "string": "TEXT",
    "date-time": "TIMESTAMP_NTZ",
    "date": "DATE",
    "boolean": "BOOLEAN",
    "number": "FLOAT",
    "array": "VARIANT",
    "object": "VARIANT",
}


def snowflake_type(schema: dict) -> str:
    kinds = [kind for kind in schema["type"] if kind != "null"]
    assert len(kinds) == 1, schema
    return SNOWFLAKE_TYPES[schema.get("format", kinds[0])]


def snowflake_load(messages: str, folder: Path, mode: str, load_method: str) -> dict:
    """target-snowflake on `messages` with fakesnow (tests/warehouses/target-snowflake/with_fakesnow.py)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**SNOWFLAKE, "load_method": load_method}))
    venv = warehouse_venv("target-snowflake")
    script = WAREHOUSES / "target-snowflake" / "with_fakesnow.py"
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(script), str(folder), mode, "--config", str(folder / "config.json")],
        input=messages,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and result.stdout, result.stderr[-3000:]
    return {**json.loads(result.stdout.splitlines()[-1]), "log": result.stderr}


@pytest.fixture(scope="module")
def snowflake_loads(environments, catalog, tmp_path_factory) -> tuple[TapRun, dict[str, dict]]:
    """Every stream of a drifting run, loaded three ways at once: by INSERT; by the stage path, upsert
    and append-only, each step's fakesnow error written down."""
    folder = tmp_path_factory.mktemp("snowflake")
    messages = tap_messages(DRIFT, FIRST_DAYS, None, catalog, folder)
    ways = {
        "insert": ("--insert", "upsert"),
        "upsert": ("--stage-errors", "upsert"),
        "append-only": ("--stage-errors", "append-only"),
    }
    with ThreadPoolExecutor(len(ways)) as pool:
        loads = {
            way: pool.submit(snowflake_load, messages, folder / way, mode, load_method)
            for way, (mode, load_method) in ways.items()
        }
        return emitted_in(messages), {way: load.result() for way, load in loads.items()}


def test_snowflake_creates_every_stream_with_these_column_types(snowflake_loads):
    emitted, loads = snowflake_loads
    assert len(emitted.schemas) == 12
    created = loads["upsert"]["columns"]
    wanted = {
        f"{stream.upper()}.{name.upper()}": snowflake_type(schema)
        for stream, stream_schema in emitted.schemas.items()
        for name, schema in stream_schema["properties"].items()
    }
    assert created == wanted
    assert created["CALLS_HISTORY.STARTED_AT"] == "TIMESTAMP_NTZ" and created["CALLS_HISTORY.TAGS"] == "VARIANT"
    assert loads["insert"]["columns"] == created


def test_snowflake_holds_every_value_the_tap_emitted_by_insert(snowflake_loads):
    emitted, loads = snowflake_loads
    assert loads["insert"]["exit"] == 0, loads["insert"]["log"][-3000:]
    assert len(emitted.records) == 12 and all(emitted.records.values())
    # Timestamps come back naive, holding UTC; VARIANT comes back as JSON text (read back by schema).
    assert_landed(emitted, loads["insert"]["rows"])


def test_snowflake_stage_path_is_not_emulated_by_fakesnow(snowflake_loads):
    # PUT, MERGE, COPY, REMOVE and DROP FILE FORMAT: the loader's own load path, unverified here.
    _, loads = snowflake_loads
    upsert, append = loads["upsert"]["stage_errors"], loads["append-only"]["stage_errors"]
    for errors in (upsert, append):
        assert "does not start with @" in errors["put_batches_to_stage"]  # no user stage @~
        assert 'syntax error at or near "REMOVE"' in errors["remove_staged_files"]
        assert 'syntax error at or near "FILE"' in errors["drop_file_format"]  # DROP FILE FORMAT
    assert "ProgrammingError" in upsert["merge_from_stage"] and "merge_from_stage" not in append
    # Which text depends on the stream fakesnow meets first ("Cannot perform COPY", "invalid URL prefix").
    assert "ProgrammingError" in append["copy_from_stage"] and "copy_from_stage" not in upsert
    assert all(rows == [] for rows in loads["upsert"]["rows"].values())  # nothing landed that way


def test_meltano_yml_installs_the_loaders_these_tests_run():
    loaders = yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]["loaders"]
    plugins = {loader["name"]: loader for loader in loaders}
    for name in ("target-bigquery", "target-snowflake"):
        lines = (WAREHOUSES / name / "requirements.txt").read_text().splitlines()
        tested = [line for line in lines if line and not line.startswith("#") and not line.startswith("fakesnow")]
        assert shlex.split(plugins[name]["pip_url"]) == tested, name
