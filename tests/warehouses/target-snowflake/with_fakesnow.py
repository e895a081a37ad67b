"""Run target-snowflake in-process with fakesnow standing in for Snowflake, then print what it made.

`python with_fakesnow.py DB_FOLDER --config CONFIG`: the loader's own command line, its Snowflake
connections answered by fakesnow (DuckDB files in DB_FOLDER). The loader is not changed. After
it stops (it fails once it stages files: fakesnow has no stage), the last line printed on stdout
is JSON: {"exit": its exit code, "columns": {"TABLE.COLUMN": "DATA_TYPE", ...}, "rows": {"table":
[{"column": value}]}}, read from the emulated INFORMATION_SCHEMA and tables, as a Snowflake user
would query them, and "stage_errors". The loader's messages go to stderr. `--insert` or
`--stage-errors` first: see below.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import sys
from pathlib import Path

import fakesnow
import snowflake.connector
from singer_sdk.sql import SQLSink
from target_snowflake.connector import SnowflakeConnector
from target_snowflake.sinks import SnowflakeSink
from target_snowflake.target import TargetSnowflake

# The loader writes its STATE lines on stdout; stdout keeps only the final JSON line.
REPORT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def plain(value: object) -> object:
    """A value read from fakesnow, as JSON."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value))


STAGE_STEPS = ("put_batches_to_stage", "merge_from_stage", "copy_from_stage", "remove_staged_files", "drop_file_format")
stage_errors: dict[str, str] = {}


def recording(step: str):  # type: ignore[no-untyped-def]
    """The connector's `step`, its error written down and passed over so that the next step runs."""
    method = getattr(SnowflakeConnector, step)

    def run(*arguments, **keywords):  # type: ignore[no-untyped-def]
        try:
            return method(*arguments, **keywords)
        except Exception as error:
            stage_errors.setdefault(step, " ".join(str(error).splitlines()[:2]))
            return 0

    return run


def insert_instead_of_stage(sink: SnowflakeSink, full_table_name, schema: dict, records) -> int | None:  # type: ignore[no-untyped-def]
    as_json = [
        {name: json.dumps(value) if isinstance(value, (dict, list)) else value for name, value in record.items()}
        for record in records
    ]
    return SQLSink.bulk_insert_records(sink, full_table_name, schema, as_json)


if __name__ == "__main__":
    folder, arguments = sys.argv[1], sys.argv[2:]
    if arguments[0] == "--insert":
        # The loader's records go in by the SDK's generic INSERT instead of its PUT to a stage then
        # MERGE or COPY, which fakesnow cannot run: everything else (tables, types, the conforming
        # of each record) is the loader's own. Arrays and objects go as the JSON text its staged
        # files hold (the connector binds no dict: "Binding data in type (dict) is not supported").
        arguments = arguments[1:]
        SnowflakeSink.bulk_insert_records = insert_instead_of_stage  # type: ignore[method-assign]
    elif arguments[0] == "--stage-errors":
        # Each step of the loader's stage path is run, and its fakesnow error written down.
        arguments = arguments[1:]
        for step in STAGE_STEPS:
            setattr(SnowflakeConnector, step, recording(step))
    config = json.loads(Path(arguments[arguments.index("--config") + 1]).read_text())
    with fakesnow.patch(db_path=folder):
        try:
            TargetSnowflake.cli(arguments, standalone_mode=False)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except Exception as error:  # the loader's failure, reported by the test
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            code = 1
        with snowflake.connector.connect(database=config["database"], schema=config["default_target_schema"]) as db:
            cursor = db.cursor()
            columns = cursor.execute(
                "select table_name, column_name, data_type from information_schema.columns "
                "where table_schema = %s order by table_name, ordinal_position",
                (config["default_target_schema"].upper(),),
            ).fetchall()
            tables = {}
            for table in sorted({table for table, _, _ in columns}):
                cursor.execute(f"select * from {table}")
                names = [column[0].lower() for column in cursor.description]
                tables[table.lower()] = [dict(zip(names, row)) for row in cursor.fetchall()]
    report = {
        "exit": code,
        "columns": {f"{t}.{c}": kind for t, c, kind in columns},
        "rows": tables,
        "stage_errors": stage_errors,
    }
    REPORT.write(json.dumps(report, default=plain) + "\n")
