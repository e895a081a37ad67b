"""The tap as others get it: its plugin definition, its wheel, and a fresh clone of the repository."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from conftest import CREDENTIALS, MELTANO, ROOT, TAP, TODAY, _env

PLUGIN = yaml.safe_load((ROOT / "plugin.yml").read_text())
YESTERDAY = (TODAY - dt.timedelta(days=1)).isoformat()  # inside every report's retention
KINDS = {"integer": "integer", "boolean": "boolean", "array": "array", "object": "object", "string": "string"}


@pytest.fixture(scope="module")
def about() -> dict:
    output = subprocess.run([*TAP, "--about", "--format=json"], capture_output=True, text=True, check=True)
    return json.loads(output.stdout)


def test_plugin_yml_is_generated_from_the_current_settings():
    result = subprocess.run(
        [sys.executable, "scripts/plugin_definition.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_plugin_definition_holds_every_setting_of_the_tap_as_about_describes_it(about):
    properties = about["settings"]["properties"]
    settings = {setting["name"]: setting for setting in PLUGIN["settings"]}
    assert list(settings) == list(properties)
    for name, schema in properties.items():
        setting = settings[name]
        assert setting["label"] == schema["title"], name
        assert setting["description"] == " ".join(schema["description"].split()), name
        assert setting.get("sensitive", False) == schema.get("secret", False), name
        types = [kind for kind in schema["type"] if kind != "null"]
        expected = "date_iso8601" if schema.get("format") == "date" else KINDS.get(types[0])
        assert setting.get("kind") == expected, name  # numbers have no kind: Meltano 4 cannot pass decimals
        if schema.get("default") is not None:
            assert setting["value"] == schema["default"], name
    assert {"api_token", "access_token"} == {name for name, s in settings.items() if s.get("sensitive")}
    assert PLUGIN["namespace"] == "tap_aircall_analytics" and PLUGIN["executable"] == about["name"]
    assert set(PLUGIN["capabilities"]) >= {"catalog", "discover", "state", "about", "batch"}
    assert PLUGIN["settings_group_validation"] == [
        ["api_id", "api_token", "start_date"],
        ["access_token", "start_date"],
    ]


#: What a user's `meltano config set` and `meltano select` add to the extractor: theirs, not the definition's.
USER_KEYS = {"config", "select", "metadata", "schema", "select_filter"}


def _extractor(project_file: Path) -> dict:
    project = yaml.safe_load(project_file.read_text())
    (extractor,) = [entry for entry in project["plugins"]["extractors"] if entry["name"] == PLUGIN["name"]]
    return extractor


def _holds_the_definition(extractor: dict) -> None:
    hub_only = {"variant", "keywords", "pip_url"}
    assert {key: value for key, value in extractor.items() if key not in {"pip_url", *USER_KEYS}} == {
        key: value for key, value in PLUGIN.items() if key not in hub_only
    }
    assert extractor["pip_url"] == "-e ."


def test_the_projects_extractor_is_the_plugin_definition():
    _holds_the_definition(_extractor(ROOT / "meltano.yml"))


def test_configuring_the_project_as_the_readme_says_keeps_its_extractor_the_plugin_definition(tmp_path):
    # The README's `meltano config set` and `meltano select` steps, in a copy of the project.
    shutil.copyfile(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    for args in (
        ("config", "set", "tap-aircall-analytics", "api_id", "YOUR_API_ID"),
        ("config", "set", "tap-aircall-analytics", "start_date", "2026-06-01"),
        ("config", "set", "tap-aircall-analytics", "timezone", "Europe/Paris"),
        ("select", "tap-aircall-analytics", "calls_history", "*"),
    ):
        _meltano(tmp_path, *args, env={"MELTANO_ENVIRONMENT": ""})
    extractor = _extractor(tmp_path / "meltano.yml")
    assert extractor["config"] == {"api_id": "YOUR_API_ID", "start_date": "2026-06-01", "timezone": "Europe/Paris"}
    assert extractor["select"] == ["calls_history.*"]
    _holds_the_definition(extractor)


def test_the_version_lives_in_pyproject_alone(about):
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert about["version"] == version
    releases = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert releases[0] == "## Unreleased" or releases[0].startswith(f"## {version} ")
    assert next(line for line in releases if line != "## Unreleased").startswith(f"## {version} ")
    hard_coded = [path.name for path in (ROOT / "tap_aircall_analytics").rglob("*.py") if version in path.read_text()]
    assert hard_coded == []


@contextlib.contextmanager
def _simulator(bin_dir: Path) -> Iterator[str]:
    """Run the simulator command of an installed package; give the API URL it serves."""
    with subprocess.Popen(
        [str(bin_dir / "aircall-analytics-simulator"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            yield process.stdout.readline().strip()
        finally:
            process.terminate()
            process.wait(timeout=30)


def _run_config(tmp_path: Path, api_url: str) -> Path:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                **CREDENTIALS,
                "api_url": api_url,
                "start_date": YESTERDAY,
                "end_date": YESTERDAY,
                "poll_interval_seconds": 0.05,
                "max_poll_interval_seconds": 0.2,
            }
        )
    )
    return config


#: uv installs as pip does, from the same metadata, in seconds; Meltano installs plugins with it too.
UV = str(Path(sys.executable).with_name("uv"))


def test_the_wheel_installs_into_a_clean_venv_and_syncs(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--installer", "uv", "--sdist", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "tap_aircall_analytics/simulator/server.py" in names and not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist) as archive:
        assert {"plugin.yml", "CHANGELOG.md", "README.md"} <= {Path(n).name for n in archive.getnames()}

    venv.create(tmp_path / "venv")
    bin_dir = tmp_path / "venv" / "bin"
    subprocess.run(
        [UV, "pip", "install", "--quiet", "--python", str(bin_dir / "python"), str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    installed = subprocess.run(
        [str(bin_dir / "python"), "-c", "import tap_aircall_analytics; print(tap_aircall_analytics.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert str(tmp_path / "venv") in installed  # the wheel, not this checkout
    tap = str(bin_dir / "tap-aircall-analytics")
    about = json.loads(
        subprocess.run(
            [tap, "--about", "--format=json"], capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout
    )
    assert about["name"] == "tap-aircall-analytics"
    catalog = subprocess.run([tap, "--discover"], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert len(json.loads(catalog)["streams"]) == 12
    (tmp_path / "catalog.json").write_text(catalog)
    with _simulator(bin_dir) as api_url:
        run = subprocess.run(
            [tap, "--config", str(_run_config(tmp_path, api_url)), "--catalog", str(tmp_path / "catalog.json")],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    streams = {json.loads(line)["stream"] for line in run.stdout.splitlines() if '"type":"RECORD"' in line}
    assert len(streams) == 12


def _meltano(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [MELTANO, *args], cwd=project, env=_env(env or {}), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"meltano {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


def test_meltano_add_from_the_plugin_definition_in_an_empty_project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "meltano.yml").write_text(
        "project_id: try-aircall\ndefault_environment: dev\nenvironments:\n- name: dev\n"
    )
    reference = tmp_path / "plugin.yml"
    reference.write_text(
        (ROOT / "plugin.yml").read_text().replace("pip_url: tap-aircall-analytics", f"pip_url: {ROOT}")
    )
    _meltano(project, "add", "--plugin-type", "extractor", "tap-aircall-analytics", "--from-ref", str(reference))
    added = yaml.safe_load((project / "meltano.yml").read_text())["plugins"]
    assert list(added) == ["extractors"] and [p["name"] for p in added["extractors"]] == ["tap-aircall-analytics"]
    with _simulator(Path(sys.executable).parent) as api_url:
        settings = {
            "TAP_AIRCALL_ANALYTICS_API_URL": api_url,
            "TAP_AIRCALL_ANALYTICS_START_DATE": YESTERDAY,
            "TAP_AIRCALL_ANALYTICS_END_DATE": YESTERDAY,
            "TAP_AIRCALL_ANALYTICS_API_ID": "demo-api-id",
            "TAP_AIRCALL_ANALYTICS_API_TOKEN": "demo-api-token",
            "TAP_AIRCALL_ANALYTICS__SELECT": '["calls_history.*"]',
        }
        output = _meltano(project, "invoke", "tap-aircall-analytics", env=settings).stdout
    assert sum('"type":"RECORD"' in line for line in output.splitlines()) > 0


def test_the_demo_pipeline_runs_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    _meltano(clone, "install", "tap-aircall-analytics", "target-duckdb")
    with _simulator(Path(sys.executable).parent) as api_url:
        _meltano(
            clone,
            "run",
            "tap-aircall-analytics",
            "target-duckdb",
            env={
                "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
                "TAP_AIRCALL_ANALYTICS_API_URL": api_url,
                "TAP_AIRCALL_ANALYTICS_API_ID": "demo-api-id",
                "TAP_AIRCALL_ANALYTICS_API_TOKEN": "demo-api-token",
                "TAP_AIRCALL_ANALYTICS_START_DATE": YESTERDAY,
                "TAP_AIRCALL_ANALYTICS_END_DATE": YESTERDAY,
                "TAP_AIRCALL_ANALYTICS__SELECT": '["calls_history.*"]',
            },
        )
    with duckdb.connect(str(clone / "output" / "warehouse.duckdb"), read_only=True) as db:
        assert db.execute("select count(*) from aircall.calls_history").fetchone()[0] > 0
    assert os.listdir(clone / "output") != []
