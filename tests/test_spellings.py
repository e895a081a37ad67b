"""Every spelling of every kind: RECORD mode (Python) and BATCH mode (DuckDB) read the same values.

Each case is a column type (a kind, and what a declaration adds) with cells whose values
are written out by hand, cells no spelling reads, and hostile cells that one engine or the
other would read loosely. Each is read from a file whose first rows are in one spelling
(so each spelling's fast path is the column's reader once) through `RecordReader`, and
through `BatchFileWriter` into JSON lines and into Parquet.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest
from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME, Column, Kind, Report
from tap_aircall_analytics.config.spellings import ColumnType
from tap_aircall_analytics.emit.batches import BatchFileWriter
from tap_aircall_analytics.files.records import RecordReader, json_schema
from tap_aircall_analytics.planning.windows import Window

TIMEZONE = "Europe/Paris"
WINDOW = Window(dt.date(2026, 3, 28), dt.date(2026, 10, 28))  # both changes of clock in Paris
UTC = dt.timezone.utc


def unix(*moment: int) -> str:
    return str(int(dt.datetime(*moment, tzinfo=UTC).timestamp()))


EVENING = "2026-10-27T17:47:56+00:00"  # 18:47:56 in Paris (UTC+1 after the 25th)
CASES: dict[str, tuple[dict, dict[str, object], list[str]]] = {
    # name: (column_type options, cell -> value, cells no spelling reads)
    "timestamp": (
        {"kind": Kind.TIMESTAMP},
        {
            "2026-10-27 18:47:56": EVENING,
            "2026-10-27T18:47:56": EVENING,
            "2026-10-27 18:47": "2026-10-27T17:47:00+00:00",
            "2026-10-27T18:47:56.250": "2026-10-27T17:47:56.250000+00:00",
            "2026-10-27 18:47:56,5": "2026-10-27T17:47:56.500000+00:00",
            "2026-10-25 02:30:00": "2026-10-25T00:30:00+00:00",  # the repeated hour: its first occurrence
            "2026-07-01 10:00:00": "2026-07-01T08:00:00+00:00",  # summer time
            "2026-10-27T17:47:56Z": EVENING,
            "2026-10-27T17:47:56.000Z": EVENING,
            "2026-10-27T17:47:56.123456789Z": "2026-10-27T17:47:56.123456+00:00",
            "2026-10-27 17:47:56 UTC": EVENING,
            "2026-10-27T20:47:56+03:00": EVENING,
            "2026-10-27T12:47:56-05:00": EVENING,
            "2026-10-27T18:47:56+0100": EVENING,
            "2026-10-27T18:47:56.500+01:00": "2026-10-27T17:47:56.500000+00:00",
            unix(2026, 10, 27, 17, 47, 56): EVENING,
            unix(2026, 10, 27, 17, 47, 56) + ".25": "2026-10-27T17:47:56.250000+00:00",
            unix(2026, 10, 27, 17, 47, 56) + "000": EVENING,  # Unix milliseconds
            unix(2026, 10, 27, 17, 47, 56) + "250": "2026-10-27T17:47:56.250000+00:00",
            unix(2026, 10, 27, 17, 47, 56) + "000000": EVENING,  # Unix microseconds
            unix(2026, 10, 27, 17, 47, 56) + "000250": "2026-10-27T17:47:56.000250+00:00",
            "946684800000": "2000-01-01T00:00:00+00:00",  # twelve digits of milliseconds
        },
        [
            "2026-10-27 24:00:00",
            "2026-02-30 10:00:00",
            "2026-10-27 18:47:60",
            "27/10/2026 18:47",
            " 2026-10-27 18:47:56",
            "2026-10-27 18:47:56 ",
            "2026-10-27T18:47:56+25:00",
            "2026-10-27T18:47:56Z+01:00",
            "2026-10-27",
            "0000-01-01 00:00:00",
            "\u0661\u0667\u0669\u0663\u0661\u0662\u0663\u0662\u0667\u0666",  # Arabic-Indic digits
            "17931232761234",
            "17931232761",  # eleven digits: seconds after 2286 or milliseconds of 1970, a unit must say
            "17931232761234567",
            unix(2026, 10, 27, 17, 47, 56) + "000.5",
            "NaN",
        ],
    ),
    "timestamp, declared milliseconds": (
        {"kind": Kind.TIMESTAMP, "epoch": "milliseconds"},
        {
            "17931232761": "1970-07-27T12:53:52.761000+00:00",
            unix(2026, 10, 27, 17, 47, 56) + "000": EVENING,
            unix(2026, 10, 27, 17, 47, 56) + "000.5": "2026-10-27T17:47:56.000500+00:00",
            "0": "1970-01-01T00:00:00+00:00",
            "2026-10-27 18:47:56": EVENING,
        },
        ["999999999999999", "-5", "1e3", " 17931232761"],
    ),
    "timestamp, declared format": (
        {"kind": Kind.TIMESTAMP, "format": "%d/%m/%Y %H:%M"},
        {
            "27/10/2026 18:47": "2026-10-27T17:47:00+00:00",
            "3/4/2026 09:05": "2026-04-03T07:05:00+00:00",
            "29/03/2026 01:59": "2026-03-29T00:59:00+00:00",  # the last minute before clocks go forward
        },
        [" 27/10/2026 18:47", "27/10/26 18:47", "2026-10-27 18:47:56", "31/02/2026 10:00", "27/10/2026 25:00"],
    ),
    "duration": (
        {"kind": Kind.DURATION},
        {
            "0:12:34": 754,
            "27:03:10": 97390,
            "0:12:34.5": 755,
            "754": 754,
            "754.4": 754,
            "754.5": 755,
            "0": 0,
        },
        ["1:2", "0:75:00", "-5", "12:34", "1e3", "\u0663", "1_000", " 754", "754 ", "9999999999999", "754,5"],
    ),
    "duration in minutes": (
        {"kind": Kind.DURATION, "unit": "minutes"},
        {"2": 120, "1.5": 90, "0.01": 1, "0:01:00": 60},
        ["two", "1.5.1"],
    ),
    "duration, decimal comma": (
        {"kind": Kind.DURATION, "decimal": ","},
        {"754,5": 755, "754": 754, "0:12:34": 754},
        ["754,5,1"],
    ),
    "boolean": (
        {"kind": Kind.BOOLEAN},
        {
            "Yes": True,
            "No": False,
            "YES": True,
            "no": False,
            "yEs": True,
            "true": True,
            "False": False,
            "TRUE": True,
            "1": True,
            "0": False,
            "y": True,
            "N": False,
            "t": True,
            "F": False,
            "on": True,
            "OFF": False,
        },
        ["maybe", "yes ", "ye", "2", "\u017fes", "Y\u0130", "-1", "1.0"],
    ),
    "date": (
        {"kind": Kind.DATE},
        {
            "2026-10-27": "2026-10-27",
            "2026-10-27 00:00:00": "2026-10-27",
            "2026-10-27T00:00:00Z": "2026-10-27",
            "2026-10-27 00:00": "2026-10-27",
            "2026-10-27T00:00:00.000": "2026-10-27",
        },
        ["2026-10-27 10:00:00", "2026-02-30", "27/10/2026", "2026-1-5", " 2026-10-27"],
    ),
    "date, declared format": (
        {"kind": Kind.DATE, "format": "%d/%m/%Y"},
        {"27/10/2026": "2026-10-27", "3/4/2026": "2026-04-03"},
        ["2026-10-27", "31/02/2026"],
    ),
    "integer": (
        {"kind": Kind.INTEGER},
        {"12": 12, "-12": -12, "12.0": 12, "007": 7, "12.00": 12, "999999999999999999": 999999999999999999},
        ["12.5", "1_000", " 12", "+5", "0x10", "1e3", "\u0661\u0662", "9" * 19, "12,0"],
    ),
    "number": (
        {"kind": Kind.NUMBER},
        {"1.5": 1.5, "-2": -2.0, ".5": 0.5, "1e3": 1000.0, "1E-2": 0.01, "0.1": 0.1, "+3": 3.0},
        ["inf", "nan", "1_0", " 1", "1e999", "1,5", "0x1p3"],
    ),
    "number, decimal comma": (
        {"kind": Kind.NUMBER, "decimal": ","},
        {"1,5": 1.5, "-2": -2.0},
        ["1,5,1"],
    ),
    "percent": (
        {"kind": Kind.PERCENT},
        {"12.5%": 12.5, "12.5": 12.5, "0%": 0.0, "100 %": 100.0},
        ["%", "12.5%%", "abc", "-"],
    ),
}

REPORT_COLUMNS = (Column("Row", Kind.INTEGER),)


def report_of(options: dict) -> Report:
    kind = options["kind"]
    cell = Column(
        "Cell",
        kind,
        format=options.get("format", ""),
        unit=options.get("unit", "") or options.get("epoch", ""),
        decimal=options.get("decimal", ""),
    )
    return Report("SPELLINGS", (*REPORT_COLUMNS, cell), primary_key=("row",), replication_key="row")


def cells_first_in(
    spelling: spellings.Spelling | None, values: dict[str, object], column_type: ColumnType
) -> list[str]:
    """The file's cells: those in `spelling` first (so its fast path reads the column), then all."""
    first = [
        cell
        for cell in values
        if spelling is not None and spelling.compiled.fullmatch(spellings.normal(cell, column_type))
    ]
    return first * 30 + list(values)


def write_file(path: Path, cells: list[str]) -> None:
    lines = ["Row,Cell"] + [f'{row},"{cell}"' for row, cell in enumerate(cells, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def record_values(report: Report, path: Path) -> dict[int, tuple[object, object]]:
    reader = RecordReader(report, TIMEZONE, lambda message: None)
    return {record["row"]: (record["cell"], record["_unparsed_values"]) for record in reader.read(path)}


def batch_values(report: Report, path: Path, tmp_path: Path, fmt: str) -> dict[int, tuple[object, object]]:
    out = tmp_path / f"out-{fmt}"
    out.mkdir(exist_ok=True)
    writer = BatchFileWriter(
        RecordReader(report, TIMEZONE, lambda message: None),
        list(json_schema(report)["properties"]),
        BaseBatchFileEncoding(format=fmt, compression="none"),
        StorageTarget(root=out.as_uri()),
        f"spellings-{fmt}",
    )
    found: dict[int, tuple[object, object]] = {}
    for url in writer.write(path, zipped=False, window=WINDOW, workdir=tmp_path):
        local = url.removeprefix("file://")
        if fmt == "jsonl":
            for line in Path(local).read_text().splitlines():
                row = json.loads(line)
                found[row["row"]] = (row["cell"], row["_unparsed_values"])
        else:
            relation = duckdb.sql(f"SELECT row, cell, _unparsed_values FROM read_parquet('{local}')")
            for row, cell, unparsed in relation.fetchall():
                found[row] = (_plain(cell), dict(unparsed) if unparsed else None)
    return found


def _plain(value: object) -> object:
    """A Parquet value as RECORD mode writes it."""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _spellings(options: dict) -> list[spellings.Spelling | None]:
    return [*spellings.spellings_of(ColumnType(**options)), None]


@pytest.mark.parametrize(
    ("case", "spelling"),
    [(case, spelling) for case, (options, _, _) in CASES.items() for spelling in _spellings(options)],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "name", "no sample"),
)
def test_every_spelling_reads_to_the_same_value_in_record_and_batch_mode(tmp_path, case, spelling):
    options, values, unreadable = CASES[case]
    report = report_of(options)
    column_type = ColumnType(**options, timezone=TIMEZONE)
    cells = cells_first_in(spelling, values, column_type) + unreadable
    path = tmp_path / "cells.csv"
    write_file(path, cells)
    expected = {
        row: (values[cell], None) if cell in values else (None, {"cell": cell}) for row, cell in enumerate(cells, 1)
    }
    assert record_values(report, path) == expected
    assert batch_values(report, path, tmp_path, "jsonl") == expected
    assert batch_values(report, path, tmp_path, "parquet") == expected


def test_each_quick_shape_implies_its_spelling_pattern():
    """A quick shape that let through a cell its pattern refuses would make BATCH read what RECORD does not."""
    every_cell = sorted({cell for _, values, unreadable in CASES.values() for cell in [*values, *unreadable]})
    checked = 0
    for kind, table in spellings.SPELLINGS.items():
        for spelling in table:
            if spelling.quick is None:
                continue
            shape = re.compile(spelling.quick[0])
            passed = [cell for cell in every_cell if shape.fullmatch(cell)]
            assert passed, f"{kind.value} {spelling.name}: no cell has its quick shape"
            for cell in passed:
                assert spelling.compiled.fullmatch(cell), f"{kind.value} {spelling.name}: {cell!r}"
                checked += 1
    assert checked > 5


def test_the_patterns_of_one_kind_never_overlap():
    """So a cell has one reading, whichever spelling its column is read with first."""
    for kind, table in spellings.SPELLINGS.items():
        values = [cell for _, cells, unreadable in CASES.values() for cell in [*cells, *unreadable]]
        for cell in values:
            matching = [spelling.name for spelling in table if spelling.compiled.fullmatch(cell)]
            assert len(matching) <= 1, f"{kind.value}: {cell!r} is {matching}"


def test_patterns_use_only_what_python_and_duckdb_read_alike():
    for table in spellings.SPELLINGS.values():
        for spelling in table:
            assert not re.search(r"\\[dDwWsSbB]|\(\?[=!<]|\(\?P", spelling.pattern), spelling.pattern


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type": "timestamp", "format": "%d/%m/%Y %Q"}, "uses %Q"),
        ({"type": "timestamp", "format": "%H:%M"}, "needs a year, a month and a day"),
        ({"type": "integer", "format": "%Y"}, "a format applies to timestamp and date columns"),
        ({"type": "duration", "unit": "fortnights"}, "unit 'fortnights'"),
        ({"type": "string", "unit": "minutes"}, "a unit applies to duration and timestamp columns"),
        ({"type": "timestamp", "unit": "minutes"}, "unit 'minutes' of a timestamp column is not one of seconds"),
        ({"type": "timestamp", "unit": "seconds", "format": "%d/%m/%Y %H:%M"}, "a format or a unit, not both"),
        ({"type": "boolean", "decimal": ","}, "a decimal mark applies to number"),
    ],
)
def test_a_mistaken_spelling_declaration_is_one_line_at_discovery(options, message):
    from tap_aircall_analytics.config.settings import ConfigError, catalogue

    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        catalogue({"column_types": {"calls_history": [{"label": "Queue", **options}]}})
    assert "\n" not in str(error.value)


CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]


@pytest.mark.parametrize("label", ["Call ID", "call_id", "callId", "CALL-ID", "Call  id", " call.id ", "CallID"])
def test_a_header_matches_its_column_whatever_its_case_spacing_and_separators(label):
    from tap_aircall_analytics.files.records import HeaderMatch

    match = HeaderMatch.of(CALLS, [label, "startedAt", "in_call_duration"])
    assert [(index, column.name) for index, column in match.positions] == [
        (0, "call_id"),
        (1, "started_at"),
        (2, "in_call_duration"),
    ]
    assert match.extras == ()
    respelled = [(spelled, column.label) for spelled, column in match.respelled if column.name == "call_id"]
    assert respelled == ([] if label == "Call ID" else [(label, "Call ID")])


def test_every_catalogue_label_has_an_identity_of_its_own():
    from tap_aircall_analytics.config.catalogue import REPORTS, label_key

    for report in REPORTS:
        keys = [label_key(column.label) for column in report.columns]
        assert len(set(keys)) == len(keys), report.api_name


def test_a_column_types_label_in_another_spelling_replaces_the_catalogue_column():
    from tap_aircall_analytics.config.settings import catalogue

    reports = catalogue({"column_types": {"calls_history": [{"label": "ivr_branch", "type": "integer"}]}})
    calls = next(report for report in reports if report.api_name == "CALLS_HISTORY")
    assert [column for column in calls.columns if column.name == "ivr_branch"] == [
        Column("ivr_branch", Kind.INTEGER, "ivr_branch")
    ]
    assert len(calls.columns) == len(CALLS.columns)


def test_two_headers_for_one_column_read_the_first_and_keep_the_other_with_one_warning(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("Call ID,call_id,Started at\n1,one,2026-10-27 18:47:56\n2,two,2026-10-27 18:47:57\n")
    warnings: list[str] = []
    records = list(RecordReader(CALLS, TIMEZONE, warnings.append).read(path))
    assert [(record["call_id"], record["_extra_columns"]) for record in records] == [
        (1, {"call_id": "one"}),
        (2, {"call_id": "two"}),
    ]
    assert [warning for warning in warnings if "call_id" in warning] == [
        "calls_history: column 'call_id' matches 'Call ID' like a column before it; the first is read into "
        "call_id, this one is kept as text in _extra_columns"
    ]
