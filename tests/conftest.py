"""Shared fixtures: the simulator in a thread, and the tap run as its command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tap_aircall_analytics import clock
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig

# One today for the whole run, here and in every tap, Meltano and simulator the tests start: a run
# that crosses midnight sees one date, and AIRCALL_ANALYTICS_TODAY=YYYY-MM-DD runs it as of another day.
os.environ.setdefault(clock.TODAY_VARIABLE, dt.datetime.now(dt.timezone.utc).date().isoformat())
TODAY = clock.today(dt.timezone.utc)

ROOT = Path(__file__).resolve().parent.parent
TAP = [sys.executable, "-m", "tap_aircall_analytics"]
MELTANO = str(Path(sys.executable).with_name("meltano"))
POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=test"
CREDENTIALS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
FAST_POLLING = {"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2}


#: The files that take longest (Meltano pipelines, orchestrators, hostile files, warehouse emulators, a
#: fresh clone), longest first, as measured: when the suite runs in several processes (scripts/test), each
#: process takes the next file as it finishes one, and none is left for the end.
SLOWEST_FIRST = (
    "test_destinations.py",
    "test_hostile_files.py",
    "test_orchestration.py",
    "test_faults.py",
    "test_packaging.py",
    "test_hostile_api.py",
    "test_warehouses.py",
    "test_meltano_runs.py",
    "test_docs.py",
    "test_batches.py",
    "test_dialects.py",
    "test_drift.py",
    "test_clock.py",
    "test_run_wide_exports.py",
    "test_discovery.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@dataclass
class TapRun:
    """What one run of the tap wrote."""

    returncode: int
    stdout: str
    stderr: str
    records: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    schemas: dict[str, dict] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)  # each stream's key_properties
    states: list[dict] = field(default_factory=list)

    @property
    def state(self) -> dict:
        """The last STATE the run emitted ({} if none)."""
        return self.states[-1] if self.states else {}

    def bookmark(self, stream: str) -> str | None:
        """The bookmark of `stream` in the last STATE."""
        return self.state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")

    def by_key(self, stream: str) -> dict[tuple, dict]:
        """The records of `stream` by primary key; fails if a key was emitted twice."""
        rows = {tuple(record[key] for key in self.keys[stream]): record for record in self.records[stream]}
        assert len(rows) == len(self.records[stream]), f"{stream}: the tap emitted a primary key twice"
        return rows


def parse_messages(stdout: str, run: TapRun) -> TapRun:
    """Fill `run` from Singer messages on stdout."""
    for line in stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records[message["stream"]].append(message["record"])
        elif message["type"] == "SCHEMA":
            run.schemas[message["stream"]] = message["schema"]
            run.keys[message["stream"]] = message["key_properties"]
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    return run


@pytest.fixture(scope="session")
def catalog() -> dict:
    """The tap's discovered catalog."""
    code, output, errors = run_in_process(["--discover"])
    assert code == 0, errors[-2000:]
    return json.loads(output)


def selected_catalog(catalog: dict, streams: list[str] | None) -> dict:
    """A copy of `catalog` with only `streams` selected (all of them if None)."""
    selected = json.loads(json.dumps(catalog))
    for stream in selected["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = streams is None or stream["tap_stream_id"] in streams
    return selected


def run_tap_in(
    folder: Path,
    catalog: dict,
    config: dict,
    *,
    streams: list[str] | None = None,
    state: dict | None = None,
    timeout: float = 300,
    check: bool = True,
    deselect: tuple[str, ...] = (),
    catalog_config: dict | None = None,
    process: bool = False,
) -> TapRun:
    """Run the tap's command line with its files in `folder`; return a TapRun. (The `run_tap` fixture, for
    a fixture of module scope that several tests read.)

    `catalog_config`: discover with these settings (column_types, extra_reports), not without any.
    The tap runs in this process (`run_in_process`), unless `process`: where the process
    boundary is what a test pins; `timeout` bounds a run in a process. A run from a thread
    of the test's own is a process too: signals and stdout belong to the main thread.
    """
    process = process or threading.current_thread() is not threading.main_thread()
    config_path = folder / "config.json"
    discovered = catalog
    if catalog_config is not None:
        config_path.write_text(json.dumps(catalog_config))
        code, output, errors = run_in_process(["--config", str(config_path), "--discover"])
        assert code == 0, errors[-2000:]
        discovered = json.loads(output)
    config_path.write_text(json.dumps(config))
    catalog_path = folder / "catalog.json"
    chosen = selected_catalog(discovered, streams)
    for entry in chosen["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"][-1:] and meta["breadcrumb"][-1] in deselect:
                meta["metadata"]["selected"] = False
    catalog_path.write_text(json.dumps(chosen))
    command = [*TAP, "--config", str(config_path), "--catalog", str(catalog_path)]
    if state is not None:
        state_path = folder / "state.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    if process:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_quiet_env())
        returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    else:
        returncode, stdout, stderr = run_in_process(command[len(TAP) :])
    run = parse_messages(stdout, TapRun(returncode, stdout, stderr))
    if check and returncode != 0:
        pytest.fail(f"the tap exited {returncode}:\n{stderr[-4000:]}")
    return run


@pytest.fixture
def run_tap(tmp_path: Path, catalog: dict):
    """Run the tap's command line; return a TapRun (see `run_tap_in`)."""
    return functools.partial(run_tap_in, tmp_path, catalog)


@contextlib.contextmanager
def exclusive(lock: Path):
    """Hold an exclusive lock on the file `lock` (made if missing): one pytest process at a time, as
    the suite's workers (pytest-xdist) build or install what they all share."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def requirements_venv(name: str, requirements: Path) -> Path:
    """The virtual environment .cache/venvs/<name> with `requirements` installed: built when missing
    or out of date, then reused by every run on this machine (for programs that cannot share the
    tap's environment: orchestrators, warehouse loaders, emulators). Built by one worker at a time:
    the others wait for it, then reuse it."""
    venv = ROOT / ".cache" / "venvs" / name
    installed = venv / "requirements.txt"
    with exclusive(venv.with_name(f"{name}.lock")):
        if not (installed.exists() and installed.read_text() == requirements.read_text()):
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
                check=True,
                capture_output=True,
                timeout=1200,
            )
            shutil.copyfile(requirements, installed)
    return venv


def run_in_process(args: list[str]) -> tuple[int, str, str]:
    """The tap's command line run in this process: its exit code, stdout and stderr, as a new process
    would give them, without the second it takes to start one. What a run changes of the process
    (the environment it reads, signal handlers, stdout and stderr, the root logger's handlers, the
    hooks) is put back after it."""
    from tap_aircall_analytics.tap import TapAircallAnalytics

    environment = dict(os.environ)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    streams, hooks = (sys.stdout, sys.stderr), (sys.excepthook, threading.excepthook)
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        out = io.TextIOWrapper(out_file, encoding="utf-8", write_through=True)
        err = io.TextIOWrapper(err_file, encoding="utf-8", write_through=True)
        quiet = _quiet_env()
        os.environ.clear()
        os.environ.update(quiet)
        sys.stdout, sys.stderr = out, err
        code: int = 0
        try:
            TapAircallAnalytics.cli.main(args=args, prog_name="tap-aircall-analytics", standalone_mode=True)
        except SystemExit as ended:  # as the interpreter ends a process with it
            if isinstance(ended.code, int) or ended.code is None:
                code = ended.code or 0
            else:
                err.write(f"{ended.code}\n")
                code = 1
        except Exception:  # as an uncaught exception ends a process: through sys.excepthook
            sys.excepthook(*sys.exc_info())
            code = 1
        finally:
            out.flush()
            err.flush()
            sys.stdout, sys.stderr = streams
            sys.excepthook, threading.excepthook = hooks
            for number, handler in handlers.items():
                signal.signal(number, handler)
            root.handlers[:] = root_handlers
            root.setLevel(root_level)
            os.environ.clear()
            os.environ.update(environment)
        out_file.seek(0)
        err_file.seek(0)
        stdout, stderr = out_file.read().decode(), err_file.read().decode()
        out.detach()
        err.detach()
    return code, stdout, stderr


def _quiet_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAP_AIRCALL_ANALYTICS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def as_of(monkeypatch):
    """Run this test's taps and simulators as of a given day; for a test that needs a calendar day
    (a daylight-saving change) inside every report's retention, whatever the real date."""

    def set_today(day: dt.date) -> dt.date:
        monkeypatch.setenv(clock.TODAY_VARIABLE, day.isoformat())
        return day

    return set_today


@pytest.fixture
def pg_schema():
    """A fresh PostgreSQL schema name, dropped after the test."""
    schema = f"e2e_{uuid.uuid4().hex[:8]}"
    yield schema
    with psycopg.connect(POSTGRES, autocommit=True) as db:
        db.execute(f'drop schema if exists "{schema}" cascade')


def pg_column_types(schema: str) -> dict[str, str]:
    """`table.column` -> PostgreSQL data type, for every column of `schema`."""
    with psycopg.connect(POSTGRES) as db:
        return dict(
            db.execute(
                "select table_name || '.' || column_name, data_type from information_schema.columns "
                "where table_schema = %s",
                (schema,),
            ).fetchall()
        )


@pytest.fixture
def simulator():
    """Start simulators with the given settings; all are stopped after the test."""
    started: list[Simulator] = []

    def start(**settings) -> Simulator:
        sim = Simulator(SimulatorConfig(**settings)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def tap_config(sim: Simulator, **settings) -> dict:
    """A tap config pointed at `sim`, with fast polling."""
    return {**CREDENTIALS, **FAST_POLLING, "api_url": sim.api_url, **settings}


#: The plugins of meltano.yml that the tests run (the warehouse loaders have no warehouse here).
TESTED_PLUGINS = (
    "tap-aircall-analytics",
    "target-duckdb",
    "target-postgres",
    "target-jsonl",
    "target-csv",
    "target-postgres-pipelinewise",
)

#: `Meltano.set` prefixes: `postgres__user=...` sets TARGET_POSTGRES_USER.
SETTING_PREFIXES = {
    "tap": "TAP_AIRCALL_ANALYTICS",
    "postgres": "TARGET_POSTGRES",
    "pipelinewise": "TARGET_POSTGRES_PIPELINEWISE",
    "duckdb": "TARGET_DUCKDB",
    "jsonl": "TARGET_JSONL",
    "csv": "TARGET_CSV",
}


@pytest.fixture(scope="session")
def installed_plugins() -> None:
    """Install the tap and the loaders the tests run into Meltano's plugin environments, once per
    run: the first worker installs them, the others (pytest-xdist's, same run id) wait and reuse them."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    done = ROOT / ".cache" / "meltano-installed"
    with exclusive(ROOT / ".cache" / "meltano-install.lock"):
        if run_id and done.exists() and done.read_text() == run_id:
            return
        done.unlink(missing_ok=True)
        subprocess.run(
            [MELTANO, "install", *TESTED_PLUGINS], cwd=ROOT, env=_env({}), check=True, capture_output=True, timeout=900
        )
        if run_id:
            done.write_text(run_id)


def _env(settings: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_AIRCALL_ANALYTICS", "TARGET_", "MELTANO_"))
    }
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_ENVIRONMENT": "dev",
            **settings,
        }
    )
    return env


#: What `meltano install` puts in .meltano: shared by every test's own system folder (meltano_sys_dir).
PLUGIN_FOLDERS = ("extractors", "loaders", "mappers", "utilities", "orchestrators", "transformers", "files")


def meltano_sys_dir(tmp_path: Path) -> Path:
    """A .meltano of this test's own: Meltano writes a run's catalog and state to fixed names in
    .meltano/run/<plugin>, so two runs at once (pytest-xdist's workers, an orchestrator's) must not
    share one. The installed plugins are the repository's, linked."""
    sys_dir = tmp_path / ".meltano"
    sys_dir.mkdir(parents=True, exist_ok=True)
    for name in PLUGIN_FOLDERS:
        link, installed = sys_dir / name, ROOT / ".meltano" / name
        if installed.is_dir() and not link.exists():
            link.symlink_to(installed, target_is_directory=True)
    return sys_dir


class Meltano:
    """Runs meltano in the repository's project, with its own system database and settings."""

    def __init__(self, tmp_path: Path, sim, **tap_settings: object) -> None:
        self.settings = {
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
            "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir(tmp_path)),
            "TAP_AIRCALL_ANALYTICS_API_URL": sim.api_url,
            "TAP_AIRCALL_ANALYTICS_API_ID": CREDENTIALS["api_id"],
            "TAP_AIRCALL_ANALYTICS_API_TOKEN": CREDENTIALS["api_token"],
            "TAP_AIRCALL_ANALYTICS_POLL_INTERVAL_SECONDS": "0.05",
            "TAP_AIRCALL_ANALYTICS_MAX_POLL_INTERVAL_SECONDS": "0.2",
            "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
            # What the README's `meltano config set` and `meltano select` steps may have put in the
            # repository's meltano.yml or .env: the tests' own values, whatever a user configured.
            "TAP_AIRCALL_ANALYTICS_TIMEZONE": "UTC",
            "TAP_AIRCALL_ANALYTICS__SELECT": '["*.*"]',
            "TARGET_POSTGRES_HOST": "127.0.0.1",
            "TARGET_POSTGRES_PORT": "5432",
            "TARGET_POSTGRES_USER": "postgres",
        }
        self.set(**tap_settings)

    def set(self, **settings: object) -> None:
        """Set tap or target settings (`tap__start_date=...`, `postgres__user=...`: SETTING_PREFIXES)."""
        for name, value in settings.items():
            plugin, _, setting = name.partition("__")
            self.settings[f"{SETTING_PREFIXES[plugin]}_{setting.upper()}"] = str(value)

    def environment(self) -> dict[str, str]:
        """The environment meltano runs in: for an orchestrator that starts `meltano` itself."""
        return _env(self.settings)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [MELTANO, *args], cwd=ROOT, env=self.environment(), capture_output=True, text=True, timeout=900
        )
        if check and result.returncode != 0:
            pytest.fail(f"meltano {' '.join(args)} exited {result.returncode}:\n{result.stderr[-5000:]}")
        return result
