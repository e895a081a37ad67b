"""CSV files to typed records: converters, header matching, file formats, errors."""

from __future__ import annotations

import datetime as dt
import zipfile
import zoneinfo
from pathlib import Path

import pytest

from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME, Kind, property_name
from tap_aircall_analytics.config.spellings import ColumnType
from tap_aircall_analytics.files.records import FileFormatError, RecordReader, json_schema

CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]
HANDLED = REPORTS_BY_API_NAME["USER_ACTIVITY_CALLS_HANDLED"]
PERCENTS = REPORTS_BY_API_NAME["USER_ACTIVITY_PERCENTAGE_OF_TIME_IN_EACH_STATUS"]


def read(tmp_path: Path, report, text: str, *, timezone="UTC", zipped=False, encoding="utf-8"):
    path = tmp_path / "export.csv"
    if zipped:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("report.csv", text.encode(encoding))
    else:
        path.write_bytes(text.encode(encoding))
    warnings: list[str] = []
    records = list(RecordReader(report, timezone, warnings.append).read(path, zipped=zipped))
    return records, warnings


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("In-call duration", "in_call_duration"),
        ("Call UUID", "call_uuid"),
        ("Calls with after-call work", "calls_with_after_call_work"),
        ("IVR branch", "ivr_branch"),
    ],
)
def test_property_names_are_snake_case_labels(label, name):
    assert property_name(label) == name


def test_every_report_has_unique_properties_and_its_keys_among_them():
    for report in REPORTS_BY_API_NAME.values():
        names = [column.name for column in report.columns]
        assert len(names) == len(set(names)), report.api_name
        assert set(report.primary_key) <= set(names)
        assert report.replication_key in names


def test_schema_types_follow_the_column_kinds():
    properties = json_schema(CALLS)["properties"]
    assert properties["call_id"]["type"] == ["integer"]  # a key is never null
    assert properties["call_uuid"]["type"] == ["string", "null"]
    assert properties["started_at"] == {"type": ["string", "null"], "format": "date-time"}
    assert properties["duration"]["type"] == ["integer", "null"]
    assert properties["answered"]["type"] == ["boolean", "null"]
    assert properties["tags"]["items"] == {"type": "string"}
    assert json_schema(HANDLED)["properties"]["date"]["format"] == "date"
    assert json_schema(PERCENTS)["properties"]["in_call"]["type"] == ["number", "null"]


CALL_HEADER = (
    "Call ID,Call UUID,Started at,Answered at,Ended at,Direction,Call type,Answered,"
    "Unanswered call reason,Duration,Waiting time,In-call duration,User ID,User name,Team,Line ID,"
    "Line name,Line number,Customer number,Country,Tags,Voicemail,Transferred,IVR branch"
)


def test_a_call_row_becomes_exact_json_types(tmp_path):
    row = (
        "42,abc-1,2026-07-01 10:00:05,2026-07-01 10:00:35,2026-07-02 13:03:45,inbound,standard,Yes,,"
        '27:03:40,0:00:30,27:03:10,101,"Dupont, Jean","Sales, EMEA",9001,"Paris office\n(main)",'
        '+33 1,+33 6,FR,"vip, sales",No,Yes,"Option ""2"""'
    )
    (record,), warnings = read(tmp_path, CALLS, f"{CALL_HEADER}\n{row}\n", timezone="Europe/Paris")
    assert warnings == []
    assert record == {
        "call_id": 42,
        "call_uuid": "abc-1",
        "started_at": "2026-07-01T08:00:05+00:00",
        "answered_at": "2026-07-01T08:00:35+00:00",
        "ended_at": "2026-07-02T11:03:45+00:00",
        "direction": "inbound",
        "call_type": "standard",
        "answered": True,
        "unanswered_call_reason": None,
        "duration": 27 * 3600 + 3 * 60 + 40,
        "waiting_time": 30,
        "in_call_duration": 97390,
        "user_id": 101,
        "user_name": "Dupont, Jean",
        "team": "Sales, EMEA",
        "line_id": 9001,
        "line_name": "Paris office\n(main)",
        "line_number": "+33 1",
        "customer_number": "+33 6",
        "country": "FR",
        "tags": ["vip", "sales"],
        "voicemail": False,
        "transferred": True,
        "ivr_branch": 'Option "2"',
        "_extra_columns": None,
        "_unparsed_values": None,
    }


@pytest.mark.parametrize(
    ("wall", "utc"),
    [
        ("2026-03-29 01:59:59", "2026-03-29T00:59:59+00:00"),  # before clocks go forward
        ("2026-03-29 03:00:00", "2026-03-29T01:00:00+00:00"),  # after
        ("2026-10-25 01:30:00", "2026-10-24T23:30:00+00:00"),  # summer time
        ("2026-10-25 02:30:00", "2026-10-25T00:30:00+00:00"),  # repeated hour: its first occurrence
        ("2026-10-25 03:30:00", "2026-10-25T02:30:00+00:00"),  # winter time
    ],
)
def test_wall_clock_times_convert_to_utc_across_daylight_saving(wall, utc):
    column_type = ColumnType(Kind.TIMESTAMP, "Europe/Paris")
    assert spellings.read(wall, column_type) == utc
    assert spellings.column_reader(column_type, [wall])(wall) == utc  # the fast reader of a whole column


def test_conversion_agrees_with_zoneinfo_for_every_quarter_hour_of_a_dst_week():
    column_type = ColumnType(Kind.TIMESTAMP, "America/New_York")
    convert = spellings.wall_clock_reader(column_type, utc=False)
    zone = zoneinfo.ZoneInfo("America/New_York")
    moment = dt.datetime(2026, 10, 29, 0, 0, 7)
    while moment < dt.datetime(2026, 11, 4):
        expected = moment.replace(tzinfo=zone, fold=0).astimezone(dt.timezone.utc).replace(tzinfo=None)
        assert convert(moment.isoformat(" ")) == expected.isoformat() + "+00:00"
        assert spellings.read(moment.isoformat(" "), column_type) == expected.isoformat() + "+00:00"
        moment += dt.timedelta(minutes=15)


def test_percentages_and_per_day_rows(tmp_path):
    text = (
        "Date,User ID,User name,Team,Available,In call,After-call work,Do not disturb,Offline\n"
        "2026-07-01,7,Ann,Support,12.5%,0%,100%,,33.3%\n"
    )
    (record,), _ = read(tmp_path, PERCENTS, text)
    assert record == {
        "date": "2026-07-01",
        "user_id": 7,
        "user_name": "Ann",
        "team": "Support",
        "available": 12.5,
        "in_call": 0.0,
        "after_call_work": 100.0,
        "do_not_disturb": None,
        "offline": 33.3,
        "_extra_columns": None,
        "_unparsed_values": None,
    }


def test_columns_are_matched_by_label_in_any_order_with_bom_crlf_and_zip(tmp_path):
    plain = (
        "Date,User ID,User name,Team,Inbound calls answered,Outbound calls answered,Missed calls,Calls handled\n"
        "2026-07-01,7,Ann,Support,1,2,3,6\n"
    )
    shuffled = (
        "\ufeffCalls handled,missed calls,User ID,Team,User name,Date,Outbound calls answered,"
        "Inbound calls answered\r\n6,3,7,Support,Ann,2026-07-01,2,1\r\n"
    )
    expected, _ = read(tmp_path, HANDLED, plain)
    assert read(tmp_path, HANDLED, shuffled)[0] == expected
    assert read(tmp_path, HANDLED, shuffled, zipped=True)[0] == expected
    assert expected[0]["calls_handled"] == 6 and expected[0]["inbound_calls_answered"] == 1


def test_unknown_column_is_kept_with_one_warning_and_missing_one_is_null(tmp_path):
    text = (
        "Date,User ID,User name,Team,Inbound calls answered,Outbound calls answered,Calls handled,Queue\n"
        "2026-07-01,7,Ann,Support,1,2,3,q1\n2026-07-02,7,Ann,Support,1,2,3,q2\n"
    )
    path = tmp_path / "a.csv"
    path.write_text(text)
    warnings: list[str] = []
    reader = RecordReader(HANDLED, "UTC", warnings.append)
    records = list(reader.read(path)) + list(reader.read(path))
    assert len(records) == 4 and all(record["missed_calls"] is None for record in records)
    assert "queue" not in records[0] and records[0]["_extra_columns"] == {"Queue": "q1"}
    assert len(warnings) == 2  # once per run, not per file
    assert any("'Queue'" in warning for warning in warnings)
    assert any("'Missed calls'" in warning for warning in warnings)


def test_a_header_alone_is_an_empty_window_without_a_word(tmp_path):
    assert read(tmp_path, CALLS, CALL_HEADER + "\n") == ([], [])


BAD_CELLS = [
    ("Duration", "1:2", "a duration"),
    ("Answered", "maybe", "a boolean"),
    ("Line ID", "abc", "an integer"),
    ("Started at", "01/07/2026 10:00", "a timestamp"),  # day first or month first: only a format can say
    ("Started at", "2026-07-01", "a timestamp"),
]


def call_row(**cells: str) -> str:
    labels = CALL_HEADER.split(",")
    row = ["1"] + [""] * (len(labels) - 1)
    for label, value in cells.items():
        row[labels.index(label)] = value
    return ",".join(row)


@pytest.mark.parametrize(("field", "value", "expected"), BAD_CELLS)
def test_a_bad_cell_is_null_with_its_text_kept_and_one_warning(tmp_path, field, value, expected):
    good = call_row(**{"Call UUID": "u"})
    text = CALL_HEADER + "\n" + "\n".join([good, call_row(**{field: value}), call_row(**{field: value}), good]) + "\n"
    path = tmp_path / "export.csv"
    path.write_text(text)
    warnings: list[str] = []
    reader = RecordReader(CALLS, "UTC", warnings.append)
    records = list(reader.read(path))
    name = property_name(field)
    assert len(records) == 4
    assert [record["_unparsed_values"] for record in records] == [None, {name: value}, {name: value}, None]
    assert records[1][name] is None and records[1]["call_id"] == 1
    assert reader.unparsed == {field: 2}
    (warning,) = warnings
    assert f"column '{field}'" in warning and repr(value) in warning and expected in warning
    assert "strict_values" in warning and "\n" not in warning


@pytest.mark.parametrize(("field", "value", "expected"), [*BAD_CELLS, ("Call ID", "abc", "an integer")])
def test_a_bad_cell_stops_a_strict_run_with_the_row_column_and_value(tmp_path, field, value, expected):
    path = tmp_path / "export.csv"
    path.write_text(CALL_HEADER + "\n" + call_row() + "\n" + call_row(**{field: value}) + "\n")
    reader = RecordReader(CALLS, "UTC", lambda message: None, strict=True)
    with pytest.raises(FileFormatError) as error:
        list(reader.read(path))
    message = str(error.value)
    assert "\n" not in message and f"column '{field}'" in message and expected in message and "row 3" in message
    assert repr(value) in message


def test_a_bad_key_cell_stops_even_a_lenient_run_and_says_how_to_load_it(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(CALL_HEADER + "\n" + call_row(**{"Call ID": "C-17"}) + "\n")
    with pytest.raises(FileFormatError, match=r"'C-17' is not an integer.*column_types"):
        list(RecordReader(CALLS, "UTC", lambda message: None).read(path))


def test_unknown_columns_arrive_byte_for_byte_in_every_record(tmp_path):
    header = (
        "Date,User ID,User name,Team,Queue,Inbound calls answered,Outbound calls answered,Missed calls,"
        "Calls handled,Queue,Note"
    )
    rows = ['2026-07-01,7,Ann,Support,"a, ""b""\r\nc",1,2,3,6,second,', "2026-07-02,8,Bo,Support,,1,2,3,6,,Zoë "]
    path = tmp_path / "export.csv"
    path.write_bytes((header + "\r\n" + "\r\n".join(rows) + "\r\n").encode())
    warnings: list[str] = []
    reader = RecordReader(HANDLED, "UTC", warnings.append)
    records = list(reader.read(path)) + list(reader.read(path))
    assert [record["_extra_columns"] for record in records[:2]] == [
        {"Queue": 'a, "b"\r\nc', "Queue (2)": "second", "Note": ""},
        {"Queue": "", "Queue (2)": "", "Note": "Zoë "},
    ]
    assert records[0]["calls_handled"] == 6 and records[2:] == records[:2]
    (warning,) = warnings  # once per stream and run, naming every new column
    assert "'Queue', 'Queue (2)', 'Note'" in warning and "column_types" in warning


def test_declared_columns_become_typed_properties(tmp_path):
    from tap_aircall_analytics.config.settings import catalogue

    reports = {
        report.stream_name: report
        for report in catalogue(
            {
                "column_types": {
                    "user_activity_calls_handled": [
                        {"label": "Queue size", "type": "integer"},
                        {"label": "Queue share", "name": "share", "type": "percent"},
                        {"label": "Missed calls", "type": "string"},
                    ]
                }
            }
        )
    }
    report = reports["user_activity_calls_handled"]
    schema = json_schema(report)["properties"]
    assert schema["queue_size"]["type"] == ["integer", "null"] and schema["share"]["type"] == ["number", "null"]
    assert schema["missed_calls"]["type"] == ["string", "null"]
    text = "Date,User ID,User name,Team,Queue size,Missed calls,Queue share,Other\n2026-07-01,7,Ann,S,12,3,5.5%,x\n"
    (record,), _ = read(tmp_path, report, text)
    assert record["queue_size"] == 12 and record["share"] == 5.5 and record["missed_calls"] == "3"
    assert record["_extra_columns"] == {"Other": "x"}


@pytest.mark.parametrize(
    ("cell", "declaration"),
    [
        ("17962537410", '{"label": "Started at", "type": "timestamp", "unit": "seconds"}'),
        ("06/12/2026 08:02", '{"label": "Started at", "type": "timestamp", "format": "%d/%m/%Y %H:%M"}'),
    ],
)
def test_a_key_column_refusal_names_the_declaration_that_keeps_its_type(tmp_path, cell, declaration):
    statuses = REPORTS_BY_API_NAME["USER_STATUS_HISTORY"]
    header = ",".join(column.label for column in statuses.columns)
    row = {"User ID": "7", "Started at": cell}
    line = ",".join(row.get(column.label, "") for column in statuses.columns)
    with pytest.raises(FileFormatError) as error:
        read(tmp_path, statuses, f"{header}\n{line}\n")
    message = str(error.value)
    assert f"column 'Started at': '{cell}' is not a timestamp" in message and "\n" not in message
    assert f'in column_types: {{"user_status_history": [{declaration}]}}' in message
    assert "string" not in message


def test_unix_milliseconds_and_microseconds_in_a_key_column_need_no_declaration(tmp_path):
    statuses = REPORTS_BY_API_NAME["USER_STATUS_HISTORY"]
    header = ",".join(column.label for column in statuses.columns)
    lines = [
        ",".join({"User ID": "7", "Started at": started}.get(column.label, "") for column in statuses.columns)
        for started in ("1796253741000", "1796253741250000", "1796253741")
    ]
    records, _ = read(tmp_path, statuses, "\n".join([header, *lines]) + "\n")
    assert [record["started_at"] for record in records] == [
        "2026-12-02T23:22:21+00:00",
        "2026-12-02T23:22:21.250000+00:00",
        "2026-12-02T23:22:21+00:00",
    ]


def test_empty_key_and_missing_key_column_are_errors(tmp_path):
    with pytest.raises(FileFormatError, match="key column is empty"):
        read(tmp_path, CALLS, CALL_HEADER + "\n" + "," * 23 + "\n")
    with pytest.raises(FileFormatError, match="no 'Call ID' column"):
        read(tmp_path, CALLS, "Call UUID\nabc\n")


def test_a_ragged_row_is_an_error(tmp_path):
    with pytest.raises(FileFormatError, match="row 2 has 2 fields"):
        read(tmp_path, HANDLED, "Date,User ID,User name\n2026-07-01,7\n")


def test_kinds_cover_every_column():
    kinds = {column.kind for report in REPORTS_BY_API_NAME.values() for column in report.columns}
    assert kinds == set(Kind) - {Kind.NUMBER}  # plain numbers are for declared columns


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["12", "", "7"], Kind.INTEGER),
        (["1.5", "2"], Kind.NUMBER),
        (["12.5%", "0%"], Kind.PERCENT),
        (["Yes", "No", ""], Kind.BOOLEAN),
        (["0:01:02", "27:00:00"], Kind.DURATION),
        (["2026-07-01"], Kind.DATE),
        (["2026-07-01 10:00:00"], Kind.TIMESTAMP),
        (["12", "n/a"], Kind.STRING),
        (["", ""], Kind.STRING),
        (["nan"], Kind.STRING),
    ],
)
def test_a_sample_infers_the_narrowest_kind(values, kind):
    from tap_aircall_analytics.files.records import infer_kind

    assert infer_kind(values) == kind


def test_a_declared_format_reads_day_first_wall_clock_times_and_nothing_else():
    column_type = ColumnType(Kind.TIMESTAMP, "Europe/Paris", format="%d/%m/%Y %H:%M")
    assert spellings.read("25/10/2026 02:30", column_type) == spellings.read(
        "2026-10-25 02:30:00", ColumnType(Kind.TIMESTAMP, "Europe/Paris")
    )
    with pytest.raises(spellings.BadValue, match="%d/%m/%Y %H:%M"):
        spellings.read("2026-10-25 02:30:00", column_type)
