"""The same data in another spelling loads the same records: headers, timestamps, durations, booleans.

The simulator's `dialect` serves every file of a default run in other header styles and
value spellings; each stream's records, in RECORD and in BATCH mode, must equal the
default spelling's, with nothing in `_unparsed_values` or `_extra_columns`.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import psycopg
import pytest
from helpers import batch_records, batch_settings, canonical

from conftest import POSTGRES, TODAY, Meltano, run_tap_in, tap_config
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig
from tap_aircall_analytics.simulator.dialects import Dialect, DialectError

FIRST, LAST = TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=3)  # within every report's retention
SETTINGS = {"rate_limit": 100_000, "calls_per_day": 60}
DIALECTS = {
    "snake_case, ISO 8601 UTC with milliseconds, seconds, true/false": "snake,iso-ms-z,seconds,true-false",
    "camelCase, UTC offsets, decimal seconds, 1/0, midnight dates, 12.0, bare percentages": (
        "camel,offset,decimal-seconds,one-zero,midnight,point-zero,bare-percent"
    ),
    "upper-case, Unix seconds": "upper,unix",
    "Unix milliseconds": "unix-ms",
    "ISO 8601 with a Z": "iso-z",
    "wall clock with a T and milliseconds": "iso-ms",
}


def config_for(sim, **settings) -> dict:
    return tap_config(sim, start_date=FIRST.isoformat(), end_date=LAST.isoformat(), timezone="Europe/Paris", **settings)


@pytest.fixture(scope="module")
def default(catalog, tmp_path_factory) -> dict[str, list[dict]]:
    """Every stream's records in the default spelling, read once: what each other spelling must equal."""
    with Simulator(SimulatorConfig(**SETTINGS)) as sim:
        return dict(run_tap_in(tmp_path_factory.mktemp("default"), catalog, config_for(sim)).records)


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
def test_another_spelling_loads_the_same_records_in_record_and_batch_mode(
    simulator, run_tap, tmp_path, default, dialect
):
    sim = simulator(**SETTINGS, dialect=dialect)
    records = run_tap(config_for(sim))
    assert set(records.records) == set(default) and len(default) == 12
    for stream, emitted in default.items():
        assert emitted, f"{stream} emitted no record"
        assert records.records[stream] == emitted, stream
        assert all(record["_unparsed_values"] is None and record["_extra_columns"] is None for record in emitted)
    for fmt in ("jsonl", "parquet"):
        batched = batch_records(
            run_tap({**config_for(sim), **batch_settings(tmp_path / fmt, fmt, "gzip" if fmt == "jsonl" else "none")}),
            fmt,
        )
        for stream, emitted in default.items():
            assert canonical(batched[stream]) == canonical(emitted), f"{fmt} {stream}"


def test_check_schema_explains_a_file_in_another_spelling_without_an_error(simulator, run_tap):
    sim = simulator(**SETTINGS, dialect="snake,iso-z,seconds,true-false")
    run = run_tap({**config_for(sim), "check_schema": True}, streams=["calls_history", "user_status_history"])
    assert run.returncode == 0 and run.stdout == ""
    lines = run.stderr.splitlines()
    matched = next(line for line in lines if line.startswith("calls_history: columns matched under another spelling"))
    assert "'call_id' -> Call ID" in matched and "'in_call_duration' -> In-call duration" in matched
    spelled = next(line for line in lines if line.startswith("calls_history: values read as"))
    assert "Started at: ISO 8601 UTC" in spelled and "Duration: seconds" in spelled
    assert "Answered: true/false" in spelled and "Call ID: integer" in spelled
    assert any(
        line.startswith("user_status_history: the header of") and "matches the catalogue" in line for line in lines
    )
    assert "column_types" not in run.stderr  # nothing to declare


def test_a_day_first_timestamp_is_read_once_its_format_is_declared(simulator, run_tap, default):
    sim = simulator(**SETTINGS, dialect="day-first")
    config = config_for(sim)
    check = run_tap({**config, "check_schema": True}, streams=["calls_history"], check=False)
    assert check.returncode == 1
    assert re.search(
        r"calls_history: \d+ of \d+ values of column 'Started at' .* do not parse as timestamp", check.stderr
    )
    (command,) = [line.strip() for line in check.stderr.splitlines() if "meltano config" in line]
    setting = json.loads(
        re.fullmatch(r"meltano config set tap-aircall-analytics column_types '(.*)'", command).group(1)
    )
    assert {"label": "Started at", "type": "date-time", "format": "%d/%m/%Y %H:%M"} in setting["calls_history"]

    declared = run_tap({**config, "column_types": setting}, streams=["calls_history"], catalog_config=config)
    calls = default["calls_history"]
    by_id = {record["call_id"]: record for record in declared.records["calls_history"]}
    assert len(by_id) == len(calls)
    for record in calls:
        read = by_id[record["call_id"]]
        assert read["_unparsed_values"] is None
        for name in ("started_at", "ended_at"):  # the file holds minutes only
            assert read[name] == record[name][:16] + ":00+00:00"


def test_another_spelling_lands_in_postgres_as_the_default_one(
    installed_plugins, simulator, tmp_path, pg_schema, default
):
    sim = simulator(**SETTINGS, dialect="camel,iso-ms-z,seconds,true-false")
    meltano = Meltano(
        tmp_path, sim, tap__start_date=FIRST, tap__end_date=LAST, tap__timezone="Europe/Paris", tap__window_days=2
    )
    meltano.settings["TAP_AIRCALL_ANALYTICS__SELECT"] = json.dumps(["calls_history.*", "user_status_history.*"])
    meltano.set(postgres__database="test", postgres__default_target_schema=pg_schema, postgres__password="unused")
    meltano("run", "tap-aircall-analytics", "target-postgres")
    with psycopg.connect(POSTGRES) as db:
        calls = {
            call_id: rest
            for call_id, *rest in db.execute(
                f"select call_id, started_at, duration, answered, _unparsed_values, _extra_columns "
                f"from {pg_schema}.calls_history"
            ).fetchall()
        }
        statuses = db.execute(
            f"select count(*), count(*) filter (where _unparsed_values::text <> 'null') "  # JSON null or SQL NULL
            f"from {pg_schema}.user_status_history"
        ).fetchone()
    assert len(calls) == len(default["calls_history"])
    for record in default["calls_history"]:
        started_at, duration, answered, unparsed, extra = calls[record["call_id"]]
        assert started_at.replace(tzinfo=None) == dt.datetime.fromisoformat(record["started_at"]).replace(tzinfo=None)
        assert (duration, answered, unparsed, extra) == (record["duration"], record["answered"], None, None)
    assert statuses == (len(default["user_status_history"]), 0)


def test_a_mistaken_dialect_names_the_options():
    with pytest.raises(DialectError, match="'snail' is not one of snake, camel"):
        Dialect.parse("snail")
    with pytest.raises(DialectError, match="one option for timestamps"):
        Dialect.parse("iso-z,unix")
