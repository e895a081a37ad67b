"""One injectable today, read by the tap and the simulator alike."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import zoneinfo

import pytest
import requests

from conftest import CREDENTIALS, ROOT, TAP, TODAY
from tap_aircall_analytics import clock
from tap_aircall_analytics.config.catalogue import EXPORTS_PATH
from tap_aircall_analytics.config.settings import Settings

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
KIRITIMATI = zoneinfo.ZoneInfo("Pacific/Kiritimati")  # UTC+14: often a day ahead of UTC


def test_without_an_injected_today_the_real_date_in_the_zone_is_today(monkeypatch):
    monkeypatch.delenv(clock.TODAY_VARIABLE, raising=False)
    before = dt.datetime.now(KIRITIMATI).date()
    today = clock.today(KIRITIMATI)
    assert before <= today <= dt.datetime.now(KIRITIMATI).date()


def test_an_injected_today_is_today_in_every_zone_and_for_the_settings(monkeypatch):
    monkeypatch.setenv(clock.TODAY_VARIABLE, "2031-02-28")
    assert clock.today(PARIS) == clock.today(KIRITIMATI) == clock.today(dt.timezone.utc) == dt.date(2031, 2, 28)
    settings = Settings.from_config({**CREDENTIALS, "start_date": "2031-01-01", "timezone": "Europe/Paris"})
    assert settings.today() == settings.last_day() == dt.date(2031, 2, 28)


def tap_plan(tmp_path, today: str) -> subprocess.CompletedProcess:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**CREDENTIALS, "start_date": "2031-01-01", "plan_only": True}))
    env = {**os.environ, clock.TODAY_VARIABLE: today}
    return subprocess.run([*TAP, "--config", str(config)], capture_output=True, text=True, env=env, timeout=120)


def test_the_tap_run_as_a_command_reads_the_injected_today(tmp_path):
    plan = tap_plan(tmp_path, "2031-02-28")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "today 2031-02-28" in plan.stderr + plan.stdout


def test_a_mistyped_injected_today_stops_the_tap_in_one_line(tmp_path):
    plan = tap_plan(tmp_path, "28/02/2031")
    assert plan.returncode != 0
    assert "Traceback" not in plan.stderr
    assert f"{clock.TODAY_VARIABLE} must be a date as YYYY-MM-DD, not '28/02/2031'" in plan.stderr


@pytest.mark.parametrize(("today", "earliest"), [("2031-02-28", None), ("2031-03-05", "2031-02-26")])
def test_the_simulator_applies_retention_as_of_the_injected_today(simulator, monkeypatch, today, earliest):
    """User Status History keeps 7 days: 2031-02-22 is inside them on 2031-02-28, outside on 2031-03-05."""
    monkeypatch.setenv(clock.TODAY_VARIABLE, today)
    sim = simulator()
    request_filter = {
        "dateFilter": {"absoluteRange": {"fromDate": "2031-02-22", "toDate": "2031-02-23"}},
        "timezone": "Europe/Paris",
    }
    response = requests.post(
        sim.api_url + EXPORTS_PATH,
        json={"input": {"reportName": "USER_STATUS_HISTORY", "filter": request_filter}},
        auth=(CREDENTIALS["api_id"], CREDENTIALS["api_token"]),
        timeout=10,
    )
    if earliest is None:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 422 and f"the earliest date is {earliest}" in response.text


# The tests whose dates follow today: retention limits, bookmarks at today, days not yet over,
# and two that set a day of their own (a clock change) to show they need no real date at all.
DATE_DEPENDENT = [
    "tests/test_simulator.py",
    "tests/test_operations.py::test_plan_mode_lists_windows_from_the_state_and_exports_nothing",
    "tests/test_sync.py::test_every_record_of_a_multi_window_range_is_emitted_exactly_once",
    "tests/test_sync.py::test_every_field_has_its_declared_type_dst_days_included",
    "tests/test_sync.py::test_state_round_trip_resumes_at_bookmark_minus_lookback",
    "tests/test_sync.py::test_a_day_not_yet_over_is_exported_again_by_the_next_run",
    "tests/test_sync.py::test_a_start_before_retention_is_clamped_with_a_warning",
    "tests/test_sync.py::test_a_rejected_request_quotes_the_api_message_and_the_window",
    "tests/test_run_wide_exports.py::test_each_window_is_bookmarked_after_its_records_in_window_order",
    "tests/test_batches.py::test_each_batch_is_followed_by_the_state_of_its_window",
]


def test_the_date_dependent_tests_pass_a_year_ahead():
    """The whole suite passes with AIRCALL_ANALYTICS_TODAY a year ahead (see docs/development.md); this runs
    the tests whose dates depend on today that way, so a date fixed by mistake fails here, today."""
    ahead = TODAY + dt.timedelta(days=366)
    env = {**os.environ, clock.TODAY_VARIABLE: ahead.isoformat()}
    # In one process: the suite around it may already run on every core (pytest-xdist's workers).
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *DATE_DEPENDENT]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in .*", summary), summary
