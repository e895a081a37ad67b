"""The Aircall pipeline in Dagster: one asset, the DuckDB warehouse, loaded daily by Meltano.

Settings reach the tap as Meltano reads them: `meltano.yml`, `.env`, and the environment of
the Dagster process (`TAP_AIRCALL_ANALYTICS_API_TOKEN=...`), which `meltano run` inherits.
`MELTANO_PROJECT_ROOT` (default: this repository) and `MELTANO_EXECUTABLE` (default: the
`meltano` of that project's `.venv`, else `meltano` on PATH) say which Meltano to run;
`MELTANO_ENVIRONMENT` (e.g. `prod`) which of its environments.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.

import os
import shutil
from pathlib import Path

import dagster as dg

from aircall_dagster.meltano import MeltanoProject

#: The Meltano job in meltano.yml: tap-aircall-analytics -> target-duckdb.
MELTANO_JOB = "aircall-to-duckdb"

_PROJECT = Path(os.environ.get("MELTANO_PROJECT_ROOT", Path(__file__).resolve().parents[3]))


def _meltano_executable() -> str:
    project_venv = _PROJECT / ".venv" / "bin" / "meltano"
    default = str(project_venv) if project_venv.exists() else (shutil.which("meltano") or "meltano")
    return os.environ.get("MELTANO_EXECUTABLE", default)


@dg.asset(
    group_name="aircall",
    kinds={"meltano", "duckdb"},
    description=f"Every Aircall Analytics+ report, loaded incrementally into DuckDB (`meltano run {MELTANO_JOB}`).",
)
def aircall_warehouse(context: dg.AssetExecutionContext, meltano: MeltanoProject) -> None:
    """Run the Meltano job; its state (in Meltano's system database) makes each run incremental."""
    meltano.run(context, MELTANO_JOB)


aircall_daily_job = dg.define_asset_job("aircall_daily", selection=[aircall_warehouse])

#: 04:15 UTC: off-peak, after Aircall has refreshed the day before.
aircall_daily_schedule = dg.ScheduleDefinition(
    name="aircall_daily_schedule",
    job=aircall_daily_job,
    cron_schedule="15 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[aircall_warehouse],
    jobs=[aircall_daily_job],
    schedules=[aircall_daily_schedule],
    resources={
        "meltano": MeltanoProject(project_dir=str(_PROJECT), executable=_meltano_executable()),
    },
)
