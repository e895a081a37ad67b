"""Daily at 04:15 UTC: `meltano run aircall-to-duckdb` in this repository's Meltano project, as one task.

Settings reach the tap as Meltano reads them: `meltano.yml`, `.env`, and the task's environment
(`TAP_AIRCALL_ANALYTICS_API_TOKEN=...`, inherited from the Airflow worker). `MELTANO_PROJECT_ROOT`
(default: this repository) and `MELTANO_EXECUTABLE` (default: the `meltano` of that project's
`.venv`) say which Meltano to run. A failed run fails the task, and the tap's one-line error is
the last tap line of the task's log.
"""

import os
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PROJECT = Path(os.environ.get("MELTANO_PROJECT_ROOT", Path(__file__).resolve().parents[3]))
MELTANO = os.environ.get("MELTANO_EXECUTABLE", str(PROJECT / ".venv" / "bin" / "meltano"))

with DAG(
    dag_id="aircall_analytics",
    schedule="15 4 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,  # the tap's state, not Airflow's data intervals, says which days each run exports
    max_active_runs=1,  # two runs at once would read the same state
    tags=["aircall", "meltano"],
):
    BashOperator(
        task_id="meltano_run",
        bash_command=f"{MELTANO} run aircall-to-duckdb",
        cwd=str(PROJECT),
    )
