"""The orchestrators of orchestration/, for real: their schedules run `meltano run aircall-to-duckdb`.

Each orchestrator has its own environment (orchestration/<name>/requirements.txt), built once
into .cache/venvs/<name> and reused while its requirements are unchanged; the Meltano project
and its plugins are the repository's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from helpers import expected_counts, export_starts

from conftest import MELTANO, ROOT, TODAY, Meltano, _env, requirements_venv
from tap_aircall_analytics.config.catalogue import REPORTS

ORCHESTRATION = ROOT / "orchestration"
FIRST = TODAY - dt.timedelta(days=2)
# The tap's one line for an export that fails for good, as the orchestrator's logs must show it.
TAP_ERROR = re.compile(
    r"tap-aircall-analytics: user_status_history \d{4}-\d\d-\d\d: the export failed twice, even for one day: \S"
)


def orchestrator_venv(name: str) -> Path:
    """The virtual environment of orchestration/<name>, built when missing or out of date."""
    return requirements_venv(name, ORCHESTRATION / name / "requirements.txt")


def table_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        return {
            report.stream_name: db.execute(f"select count(*) from aircall.{report.stream_name}").fetchone()[0]
            for report in REPORTS
        }


def meltano_for_orchestrator(tmp_path: Path, sim) -> Meltano:
    """A Meltano project on the simulator from two days ago: the first run backfills, the next is incremental."""
    return Meltano(tmp_path, sim, tap__start_date=FIRST)


def failing_meltano(tmp_path: Path, simulator) -> Meltano:
    """A Meltano project whose one selected stream, user_status_history, fails for good: the tap stops in one line."""
    meltano = meltano_for_orchestrator(tmp_path, simulator(fail_report="USER_STATUS_HISTORY", rate_limit=100_000))
    meltano.settings["TAP_AIRCALL_ANALYTICS__SELECT"] = '["user_status_history.*"]'
    return meltano


# --- Dagster ---------------------------------------------------------------------------------

DAGSTER_PROJECT = ORCHESTRATION / "dagster"
SCHEDULE = "aircall_daily_schedule"
# Evaluated in the Dagster environment: the schedule's cron, timezone and the job of its tick.
SCHEDULE_TICK = f"""
import datetime as dt, json
import dagster as dg
from aircall_dagster import defs
schedule = defs.resolve_schedule_def({SCHEDULE!r})
tick = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=dt.datetime.now(dt.timezone.utc)))
print(json.dumps({{
    "cron": schedule.cron_schedule,
    "timezone": schedule.execution_timezone,
    "jobs": [request.job_name or schedule.job_name for request in tick.run_requests],
}}))
"""


@pytest.fixture(scope="session")
def dagster_venv() -> Path:
    return orchestrator_venv("dagster")


def dagster(venv: Path, environment: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a command of the Dagster environment in the Dagster project, with Meltano's settings."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {**environment, "DAGSTER_HOME": str(home), "MELTANO_EXECUTABLE": MELTANO}
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=DAGSTER_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def dagster_job(dagster_venv, tmp_path_factory) -> str:
    """The job the daily schedule runs, from one evaluated tick (the same for every test here)."""
    result = dagster(dagster_venv, _env({}), tmp_path_factory.mktemp("tick"), "python", "-c", SCHEDULE_TICK)
    assert result.returncode == 0, result.stderr[-3000:]
    schedule = json.loads(result.stdout.splitlines()[-1])
    assert (schedule["cron"], schedule["timezone"]) == ("15 4 * * *", "UTC")
    (job,) = schedule["jobs"]
    return job


def execute(venv: Path, meltano: Meltano, tmp_path: Path, job: str) -> subprocess.CompletedProcess:
    return dagster(
        venv, meltano.environment(), tmp_path, "dagster", "job", "execute", "-m", "aircall_dagster", "-j", job
    )


def test_dagster_daily_schedule_loads_duckdb_and_stays_incremental(
    installed_plugins, dagster_venv, dagster_job, simulator, tmp_path
):
    sim = simulator(rate_limit=100_000)
    meltano = meltano_for_orchestrator(tmp_path, sim)
    expected = expected_counts(sim, FIRST, TODAY)

    first = execute(dagster_venv, meltano, tmp_path, dagster_job)
    assert first.returncode == 0, first.stderr[-5000:]
    assert "RUN_SUCCESS" in first.stderr
    assert table_counts(tmp_path / "warehouse.duckdb") == expected and all(expected.values())

    # The next scheduled run reads its state from Meltano: only the recent days are exported again.
    sim.api_requests.clear()
    second = execute(dagster_venv, meltano, tmp_path, dagster_job)
    assert second.returncode == 0, second.stderr[-5000:]
    assert set(export_starts(sim, "CALLS_HISTORY")) == {(TODAY - dt.timedelta(days=1)).isoformat()}
    assert table_counts(tmp_path / "warehouse.duckdb") == expected  # re-read rows merged on their keys


def test_dagster_run_fails_with_the_taps_one_line_error(
    installed_plugins, dagster_venv, dagster_job, simulator, tmp_path
):
    run = execute(dagster_venv, failing_meltano(tmp_path, simulator), tmp_path, dagster_job)
    assert run.returncode != 0
    assert "STEP_FAILURE" in run.stderr and "RUN_FAILURE" in run.stderr
    failure = "dagster._core.definitions.events.Failure: "
    failures = [line for line in run.stderr.splitlines() if line.startswith(failure)]
    assert failures and all(TAP_ERROR.search(line) for line in failures), run.stderr[-5000:]


# --- Airflow ---------------------------------------------------------------------------------

DAG_ID = "aircall_analytics"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The Airflow environment and a migrated Airflow home whose DAG folder is orchestration/airflow/dags."""
    venv = orchestrator_venv("airflow")
    home = tmp_path_factory.mktemp("airflow_home")
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ORCHESTRATION / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    }
    # The migrated metadata database is kept beside the venv, made once per venv: a copy each session.
    cached = venv / "migrated-airflow.db"
    if not cached.exists():
        migrated = subprocess.run(
            [str(venv / "bin" / "airflow"), "db", "migrate"],
            env={**os.environ, **settings},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        # Whole or not at all: a worker that finds the cache copies a finished database.
        partial = cached.with_name(f"{cached.name}.{os.getpid()}")
        shutil.copyfile(home / "airflow.db", partial)
        partial.replace(cached)
    else:
        shutil.copyfile(cached, home / "airflow.db")
    return venv, settings


def airflow_dags_test(airflow_home, meltano: Meltano) -> subprocess.CompletedProcess:
    venv, settings = airflow_home
    return subprocess.run(
        [str(venv / "bin" / "airflow"), "dags", "test", DAG_ID],
        env={**meltano.environment(), **settings, "MELTANO_EXECUTABLE": MELTANO},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_airflow_dag_loads_duckdb(installed_plugins, airflow_home, simulator, tmp_path):
    # Incremental runs are Meltano's state, whoever starts them: the Dagster test runs twice.
    sim = simulator(rate_limit=100_000)
    meltano = meltano_for_orchestrator(tmp_path, sim)
    expected = expected_counts(sim, FIRST, TODAY)
    run = airflow_dags_test(airflow_home, meltano)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert "meltano_run" in run.stdout + run.stderr
    assert table_counts(tmp_path / "warehouse.duckdb") == expected and all(expected.values())


def test_airflow_task_fails_with_the_taps_one_line_error(installed_plugins, airflow_home, simulator, tmp_path):
    run = airflow_dags_test(airflow_home, failing_meltano(tmp_path, simulator))
    assert run.returncode != 0
    assert TAP_ERROR.search(run.stdout + run.stderr), (run.stdout + run.stderr)[-5000:]
