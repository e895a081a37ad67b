"""One injectable today, read by the tap and the simulator alike."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import zoneinfo

import pytest
import requests

from conftest import CREDENTIALS, TAP
from tap_aircall_analytics import clock
from tap_aircall_analytics.reports import EXPORTS_PATH
from tap_aircall_analytics.settings import Settings

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
