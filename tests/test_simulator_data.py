"""The simulator's reports hold together as Aircall's do: totals add up, rates and averages are
those of their counts, durations fit in the day, and each row's times agree with each other."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import TODAY
from tap_aircall_analytics.config.catalogue import REPORTS, REPORTS_BY_API_NAME, Report
from tap_aircall_analytics.files.records import RecordReader
from tap_aircall_analytics.simulator.data import ReportData, write_csv

#: Four days ending with a change of clocks in Paris (the last Sunday of October: a 25-hour day).
LAST_SUNDAY_OF_OCTOBER = max(
    day for day in (dt.date(TODAY.year - 1, 10, 31) - dt.timedelta(days=n) for n in range(7)) if day.weekday() == 6
)
DAYS = (LAST_SUNDAY_OF_OCTOBER - dt.timedelta(days=3), LAST_SUNDAY_OF_OCTOBER)
TIMEZONE = "Europe/Paris"
PER_USER_DAY = [report for report in REPORTS if report.daily_breakdown]


def records(report: Report, tmp_path: Path, *, daily: bool = True, timezone: str = TIMEZONE) -> list[dict]:
    """The typed records of the simulator's file for `report` over DAYS in `timezone`, read by the tap.

    Events are compared in UTC: wall-clock times of the hour a fall-back day repeats are
    ambiguous in a CSV file, whoever writes it.
    """
    data = ReportData(report, *DAYS, timezone, seed=7, calls_per_day=300, daily=daily)
    path = tmp_path / f"{report.stream_name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        write_csv(data, handle)
    if not daily:  # one row per user for the range: no Date column
        columns = tuple(column for column in report.columns if column.name != "date")
        report = dataclasses.replace(report, columns=columns, primary_key=("user_id",))
    read = list(RecordReader(report, timezone, pytest.fail).read(path))
    assert read and all(record["_unparsed_values"] is None for record in read)
    return read


def seconds(first: str, last: str) -> int:
    """Seconds from one emitted timestamp to another."""
    return int((dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(first)).total_seconds())


def day_seconds(day: dt.date) -> int:
    """The length of `day` in the report timezone (23, 24 or 25 hours)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(TIMEZONE)
    start = dt.datetime.combine(day, dt.time(), zone)
    return int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).timestamp() - start.timestamp())


def rate(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def average(total: int, count: int) -> int:
    return round(total / count) if count else 0


STATUS_SHARES = ("available", "in_call", "after_call_work", "do_not_disturb", "offline")
#: Report -> the checks every one of its rows passes (r: the record, day: seconds in its day or range).
ROW_RULES = {
    "USER_ACTIVITY_AVAILABILITY_BREAKDOWN": lambda r, day: (
        r["available_time"] + r["busy_time"] + r["unavailable_time"] + r["offline_time"] == day
    ),
    "USER_ACTIVITY_AVERAGE_AFTER_CALL_WORK_TIME_PER_USER": lambda r, day: (
        r["average_after_call_work_time"] == average(r["total_after_call_work_time"], r["calls_with_after_call_work"])
        and r["total_after_call_work_time"] <= day
    ),
    "USER_ACTIVITY_AVERAGE_INBOUND_IN_CALL_TIME_PER_USER": lambda r, day: (
        r["average_inbound_in_call_time"] == average(r["total_inbound_in_call_time"], r["inbound_calls_answered"])
        and r["total_inbound_in_call_time"] <= day
    ),
    "USER_ACTIVITY_AVERAGE_OUTBOUND_IN_CALL_TIME_PER_USER": lambda r, day: (
        r["average_outbound_in_call_time"] == average(r["total_outbound_in_call_time"], r["outbound_calls"])
        and r["total_outbound_in_call_time"] <= day
    ),
    "USER_ACTIVITY_CALL_VOLUME_AND_TIME": lambda r, day: (
        r["total_calls"] == r["inbound_calls"] + r["outbound_calls"]
        and r["total_in_call_time"] == r["inbound_in_call_time"] + r["outbound_in_call_time"] <= day
        and (r["inbound_calls"] or not r["inbound_in_call_time"])
        and (r["outbound_calls"] or not r["outbound_in_call_time"])
    ),
    "USER_ACTIVITY_CALLS_HANDLED": lambda r, day: (
        r["calls_handled"] == r["inbound_calls_answered"] + r["outbound_calls_answered"]
    ),
    "USER_ACTIVITY_PERCENTAGE_OF_TIME_IN_EACH_STATUS": lambda r, day: (
        round(sum(r[name] for name in STATUS_SHARES), 1) == 100.0 and all(0 <= r[name] <= 100 for name in STATUS_SHARES)
    ),
    "USER_ACTIVITY_RINGING_ATTEMPTS_PER_USER": lambda r, day: (
        r["ringing_attempts"] == r["answered_attempts"] + r["missed_attempts"]
        and r["answer_rate"] == rate(r["answered_attempts"], r["ringing_attempts"])
    ),
    "USER_ACTIVITY_WORK_TIME_AND_AVAILABILITY": lambda r, day: (
        r["available_time"] <= r["working_time"] <= day
        and r["availability_rate"] == rate(r["available_time"], r["working_time"])
    ),
}


def test_every_per_user_day_report_has_rules():
    assert set(ROW_RULES) == {report.api_name for report in PER_USER_DAY}


@pytest.mark.parametrize("report", PER_USER_DAY, ids=lambda report: report.stream_name)
def test_each_user_day_adds_up_and_fits_in_its_day(report, tmp_path):
    rows = records(report, tmp_path)
    assert {row["date"] for row in rows} == {
        (DAYS[0] + dt.timedelta(days=n)).isoformat() for n in range((DAYS[1] - DAYS[0]).days + 1)
    }
    assert day_seconds(DAYS[1]) == 25 * 3600  # the range does hold a day of a clock change
    rule = ROW_RULES[report.api_name]
    broken = [row for row in rows if not rule(row, day_seconds(dt.date.fromisoformat(row["date"])))]
    assert not broken, broken[:3]


@pytest.mark.parametrize("report", PER_USER_DAY, ids=lambda report: report.stream_name)
def test_a_range_without_daily_breakdown_is_the_sum_of_its_days_with_rates_of_the_sums(report, tmp_path):
    days = records(report, tmp_path)
    whole = records(report, tmp_path, daily=False)
    seconds_in_range = sum(day_seconds(dt.date.fromisoformat(day)) for day in {row["date"] for row in days})
    counts = [column.name for column in report.columns[4:] if column.kind.value in ("integer", "duration")]
    for row in whole:
        user_days = [day for day in days if day["user_id"] == row["user_id"]]
        assert ROW_RULES[report.api_name](row, seconds_in_range), row
        for name in counts:
            if not name.startswith("average_"):
                assert row[name] == sum(day[name] for day in user_days), (row["user_id"], name)


def test_call_history_rows_agree_with_themselves(tmp_path):
    calls = records(REPORTS_BY_API_NAME["CALLS_HISTORY"], tmp_path, timezone="UTC")
    assert len(calls) > 1000
    for call in calls:
        assert call["duration"] == call["waiting_time"] + call["in_call_duration"]
        assert seconds(call["started_at"], call["ended_at"]) == call["duration"]
        assert (call["answered_at"] is not None) == call["answered"] == (call["user_id"] is not None)
        assert bool(call["unanswered_call_reason"]) != call["answered"]
        if call["answered"]:
            assert seconds(call["started_at"], call["answered_at"]) == call["waiting_time"]
        assert not (call["voicemail"] and call["answered"]) and not (call["transferred"] and not call["answered"])


def test_status_periods_follow_each_other_without_overlap(tmp_path):
    periods = defaultdict(list)
    for period in records(REPORTS_BY_API_NAME["USER_STATUS_HISTORY"], tmp_path, timezone="UTC"):
        assert seconds(period["started_at"], period["ended_at"]) == period["duration"] > 0
        periods[period["user_id"]].append(period)
    assert len(periods) > 1
    for user_periods in periods.values():
        user_periods.sort(key=lambda period: period["started_at"])
        for before, after in itertools.pairwise(user_periods):
            assert before["ended_at"] <= after["started_at"]
            if before["ended_at"] == after["started_at"]:
                assert before["next_status"] == after["status"]


def test_ringing_attempts_answer_a_call_at_most_once_and_only_an_answered_one(tmp_path):
    answered_calls = {
        call["call_id"] for call in records(REPORTS_BY_API_NAME["CALLS_HISTORY"], tmp_path) if call["answered"]
    }
    attempts = defaultdict(list)
    for attempt in records(REPORTS_BY_API_NAME["USER_ACTIVITY_RINGING_ATTEMPTS"], tmp_path):
        assert attempt["outcome"] in ("answered", "missed") and 0 <= attempt["ringing_duration"] <= 20 * 60
        attempts[attempt["call_id"]].append(attempt["outcome"])
    assert len(attempts) > 100
    for call_id, outcomes in attempts.items():
        assert outcomes.count("answered") <= 1
        assert "answered" not in outcomes or call_id in answered_calls
