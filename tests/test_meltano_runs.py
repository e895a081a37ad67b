"""Meltano runs end to end: the tap into PostgreSQL and DuckDB, incremental runs, backfills, `meltano config test`."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import psycopg
from helpers import expected_counts, export_starts

from conftest import POSTGRES, TODAY, Meltano, pg_column_types
from tap_aircall_analytics import clock
from tap_aircall_analytics.config.catalogue import REPORTS


def pg_counts(schema: str) -> dict[str, int]:
    with psycopg.connect(POSTGRES) as db:
        return {
            report.stream_name: db.execute(f'select count(*) from "{schema}"."{report.stream_name}"').fetchone()[0]
            for report in REPORTS
        }


def test_postgres_types_counts_incremental_runs_and_backfill(installed_plugins, simulator, tmp_path, pg_schema):
    sim = simulator(rate_limit=100_000)
    today = clock.today(zoneinfo.ZoneInfo("Europe/Paris"))  # the account's today
    first = today - dt.timedelta(days=3)
    meltano = Meltano(tmp_path, sim, tap__start_date=first, tap__window_days=2, tap__timezone="Europe/Paris")
    # The local server trusts loopback connections; the target still wants a password set.
    meltano.set(postgres__database="test", postgres__default_target_schema=pg_schema, postgres__password="unused")
    meltano("run", "tap-aircall-analytics", "target-postgres")

    expected = expected_counts(sim, first, today, "Europe/Paris")
    assert pg_counts(pg_schema) == expected

    types = pg_column_types(pg_schema)
    with psycopg.connect(POSTGRES) as db:
        labels, rows = sim.expected_rows("CALLS_HISTORY", first, today, "Europe/Paris")
        call = rows[0]
        stored = db.execute(
            f'select started_at, duration, answered from "{pg_schema}".calls_history where call_id = %s',
            (int(call[0]),),
        ).fetchone()
    assert types["calls_history.call_id"] == "bigint"
    assert types["calls_history.started_at"] == "timestamp without time zone"
    assert types["calls_history.answered"] == "boolean"
    assert types["calls_history.duration"] == "bigint"
    assert types["user_activity_calls_handled.date"] == "date"
    assert types["user_activity_percentage_of_time_in_each_status.available"] == "numeric"
    assert types["user_status_history.started_at"] == "timestamp without time zone"
    local = dt.datetime.fromisoformat(call[labels.index("Started at")]).replace(
        tzinfo=zoneinfo.ZoneInfo("Europe/Paris")
    )
    assert stored[0] == local.astimezone(dt.timezone.utc).replace(tzinfo=None)  # UTC, as docs/destinations.md says

    # A second run reads its state from Meltano's system database: only the recent days again.
    sim.api_requests.clear()
    meltano("run", "tap-aircall-analytics", "target-postgres")
    assert set(export_starts(sim, "CALLS_HISTORY")) == {(today - dt.timedelta(days=1)).isoformat()}
    assert pg_counts(pg_schema) == expected  # re-read rows replaced themselves (load_method: upsert)
    with psycopg.connect(POSTGRES) as db:
        (distinct,) = db.execute(f'select count(distinct call_id) from "{pg_schema}".calls_history').fetchone()
    assert distinct == expected["calls_history"]

    # A backfill of earlier days, without touching the scheduled state.
    state_before = meltano("state", "get", "dev:tap-aircall-analytics-to-target-postgres").stdout
    backfill_first = today - dt.timedelta(days=8)
    meltano.set(tap__start_date=backfill_first, tap__end_date=first - dt.timedelta(days=1))
    meltano("run", "--full-refresh", "--no-state-update", "tap-aircall-analytics", "target-postgres")
    assert pg_counts(pg_schema) == expected_counts(sim, backfill_first, today, "Europe/Paris")
    assert meltano("state", "get", "dev:tap-aircall-analytics-to-target-postgres").stdout == state_before
    assert (
        json.loads(state_before)["singer_state"]["bookmarks"]["calls_history"]["replication_key_value"]
        == today.isoformat()
    )


def test_meltano_config_test_passes_against_the_simulator(installed_plugins, simulator, tmp_path):
    sim = simulator()
    meltano = Meltano(tmp_path, sim, tap__start_date=TODAY - dt.timedelta(days=1))
    result = meltano("config", "test", "tap-aircall-analytics")
    assert "Plugin configuration is valid" in result.stdout + result.stderr


def test_meltano_config_test_fails_on_bad_credentials(installed_plugins, simulator, tmp_path):
    sim = simulator()
    token = "not-the-real-token-4821"
    meltano = Meltano(tmp_path, sim, tap__start_date=TODAY - dt.timedelta(days=1), tap__api_token=token)
    result = meltano("config", "test", "tap-aircall-analytics", check=False)
    assert result.returncode != 0
    assert "check api_id and api_token" in result.stdout + result.stderr
    assert token not in result.stdout + result.stderr
