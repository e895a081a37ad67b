"""Write plugin.yml, the extractor's Meltano plugin definition, from the tap's own `--about`.

    .venv/bin/python scripts/plugin_definition.py          # rewrite plugin.yml
    .venv/bin/python scripts/plugin_definition.py --check  # exit 1 if plugin.yml is out of date

plugin.yml is the file a Meltano Hub entry is made from, and what `meltano add --plugin-type
extractor tap-aircall-analytics --from-ref plugin.yml` reads. The settings are the tap's
(settings.py and the SDK's), so this file is generated, never edited by hand. The same run
writes the definition into the extractor of this repository's meltano.yml (all but its
pip_url, which installs this checkout). Tests hold both equal to `--about`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FILE = ROOT / "plugin.yml"
PROJECT_FILE = ROOT / "meltano.yml"
#: What the project's own extractor keeps of its own: it installs this checkout.
PROJECT_ONLY = ("pip_url",)
#: What a Hub entry has and a project's inline plugin does not.
HUB_ONLY = ("variant", "keywords", "pip_url")
PIP_URL = "tap-aircall-analytics"

#: Meltano's capabilities for what the tap does (the SDK's names, and the ones Meltano adds).
CAPABILITIES = ["catalog", "discover", "state", "about", "stream-maps", "schema-flattening", "batch", "test"]
#: Settings that are enough on their own, one set per way to authenticate.
GROUPS = [["api_id", "api_token", "start_date"], ["access_token", "start_date"]]


def kind(schema: dict) -> str | None:
    """Meltano's kind for a JSON schema. Numbers get none: Meltano 4 cannot pass a decimal by environment."""
    types = [name for name in schema.get("type", []) if name != "null"]
    if schema.get("format") == "date":
        return "date_iso8601"
    return {"integer": "integer", "boolean": "boolean", "array": "array", "object": "object", "string": "string"}.get(
        types[0] if types else ""
    )


def setting(name: str, schema: dict) -> dict:
    entry: dict = {"name": name, "label": schema.get("title") or name.replace("_", " ").capitalize()}
    if kind(schema):
        entry["kind"] = kind(schema)
    if "default" in schema and schema["default"] is not None:
        entry["value"] = schema["default"]
    entry["description"] = " ".join(str(schema.get("description", "")).split())
    if schema.get("secret"):
        entry["sensitive"] = True
    return entry


def definition() -> dict:
    """The plugin definition, from `tap-aircall-analytics --about --format=json`."""
    about = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tap_aircall_analytics", "--about", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return {
        "name": about["name"],
        "variant": "tap-aircall-analytics",
        "label": "Aircall Analytics",
        "description": about["description"],
        "namespace": "tap_aircall_analytics",
        "pip_url": PIP_URL,
        "executable": about["name"],
        "keywords": ["meltano_sdk", "aircall", "analytics", "calls"],
        "capabilities": CAPABILITIES,
        "settings_group_validation": GROUPS,
        "settings": [setting(name, schema) for name, schema in about["settings"]["properties"].items()],
    }


def render() -> str:
    header = "# Generated from `tap-aircall-analytics --about` by scripts/plugin_definition.py: do not edit.\n"
    return header + yaml.safe_dump(definition(), sort_keys=False, allow_unicode=True, width=100)


def write_project(plugin: dict) -> None:
    """Put the definition into meltano.yml's extractor, keeping the rest of the file as it is."""
    from ruamel.yaml import YAML

    project_yaml = YAML()
    project_yaml.width = 4096
    project_yaml.indent(mapping=2, sequence=2, offset=0)
    project = project_yaml.load(PROJECT_FILE.read_text())
    extractor = next(entry for entry in project["plugins"]["extractors"] if entry["name"] == plugin["name"])
    for key, value in plugin.items():
        if key not in HUB_ONLY:
            extractor[key] = value
    with PROJECT_FILE.open("w") as handle:
        project_yaml.dump(project, handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if plugin.yml is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if PLUGIN_FILE.read_text() != text:
            raise SystemExit("plugin.yml is out of date: run scripts/plugin_definition.py")
        return
    PLUGIN_FILE.write_text(text)
    write_project(yaml.safe_load(text))
    print(f"wrote {PLUGIN_FILE} and the extractor of {PROJECT_FILE}")


if __name__ == "__main__":
    main()
