"""Date windows, where a run starts, and where the bookmark goes."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_aircall_analytics.config.catalogue import REPORTS_BY_API_NAME, export_request_body, subtract_months
from tap_aircall_analytics.planning.windows import Window, next_bookmark, plan_windows, sync_range

D = dt.date
CALLS = REPORTS_BY_API_NAME["CALLS_HISTORY"]
STATUS = REPORTS_BY_API_NAME["USER_STATUS_HISTORY"]
HANDLED = REPORTS_BY_API_NAME["USER_ACTIVITY_CALLS_HANDLED"]


def test_windows_cover_the_range_once_in_order():
    windows = plan_windows(D(2026, 1, 1), D(2026, 1, 17), 7)
    assert windows == [
        Window(D(2026, 1, 1), D(2026, 1, 7)),
        Window(D(2026, 1, 8), D(2026, 1, 14)),
        Window(D(2026, 1, 15), D(2026, 1, 17)),
    ]
    assert plan_windows(D(2026, 1, 2), D(2026, 1, 1), 7) == []
    assert plan_windows(D(2026, 1, 1), D(2026, 1, 1), 1) == [Window(D(2026, 1, 1), D(2026, 1, 1))]


def test_split_halves_cover_the_window():
    assert Window(D(2026, 1, 1), D(2026, 1, 7)).split() == (
        Window(D(2026, 1, 1), D(2026, 1, 4)),
        Window(D(2026, 1, 5), D(2026, 1, 7)),
    )
    assert Window(D(2026, 1, 1), D(2026, 1, 2)).split() == (
        Window(D(2026, 1, 1), D(2026, 1, 1)),
        Window(D(2026, 1, 2), D(2026, 1, 2)),
    )
    with pytest.raises(ValueError, match="one-day"):
        Window(D(2026, 1, 1), D(2026, 1, 1)).split()


def test_first_run_starts_at_start_date_and_later_runs_at_bookmark_minus_lookback():
    args = {"start_date": D(2026, 1, 1), "end_date": D(2026, 2, 1), "today": D(2026, 2, 1)}
    assert sync_range(HANDLED, bookmark=None, lookback_days=1, **args).first == D(2026, 1, 1)
    assert sync_range(HANDLED, bookmark=D(2026, 1, 20), lookback_days=2, **args).first == D(2026, 1, 18)
    assert sync_range(HANDLED, bookmark=D(2026, 1, 20), lookback_days=0, **args).first == D(2026, 1, 20)
    assert sync_range(HANDLED, bookmark=D(2026, 1, 2), lookback_days=5, **args).first == D(2026, 1, 1)


def test_a_start_before_retention_is_moved_to_the_limit():
    today = D(2026, 11, 28)
    days = sync_range(STATUS, start_date=D(2026, 1, 1), end_date=today, today=today, bookmark=None, lookback_days=1)
    assert (days.first, days.clamped_from) == (D(2026, 11, 21), D(2026, 1, 1))
    days = sync_range(CALLS, start_date=D(2026, 1, 1), end_date=today, today=today, bookmark=None, lookback_days=1)
    assert days.first == D(2026, 5, 28)
    unlimited = sync_range(
        HANDLED, start_date=D(2020, 1, 1), end_date=today, today=today, bookmark=None, lookback_days=1
    )
    assert unlimited.first == D(2020, 1, 1) and unlimited.clamped_from is None


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2026, 8, 31), 6, D(2026, 2, 28)),
        (D(2026, 3, 15), 6, D(2025, 9, 15)),
        (D(2028, 8, 31), 6, D(2028, 2, 29)),
        (D(2026, 12, 31), 12, D(2025, 12, 31)),
    ],
)
def test_months_back_clamp_to_the_end_of_shorter_months(day, months, expected):
    assert subtract_months(day, months) == expected


def test_bookmark_never_passes_today():
    today = D(2026, 3, 10)
    assert next_bookmark(Window(D(2026, 3, 1), D(2026, 3, 7)), today) == D(2026, 3, 8)
    assert next_bookmark(Window(D(2026, 3, 8), D(2026, 3, 14)), today) == today
    assert next_bookmark(Window(D(2026, 3, 10), D(2026, 3, 10)), today) == today


def test_request_body_holds_dates_timezone_breakdown_and_accepted_filters():
    filters = {"userIDs": [1], "lineIDs": [9]}
    calls = export_request_body(CALLS, D(2026, 5, 1), D(2026, 5, 7), "Europe/Paris", filters)
    assert calls == {
        "input": {
            "reportName": "CALLS_HISTORY",
            "filter": {
                "dateFilter": {"absoluteRange": {"fromDate": "2026-05-01", "toDate": "2026-05-07"}},
                "timezone": "Europe/Paris",
                "userIDs": [1],
                "lineIDs": [9],
            },
            "exportOptions": {"format": "CSV"},
        }
    }
    handled = export_request_body(HANDLED, D(2026, 5, 1), D(2026, 5, 1), "UTC", filters)["input"]
    assert handled["options"] == {"dateBreakdown": "DAILY"} and "lineIDs" not in handled["filter"]
