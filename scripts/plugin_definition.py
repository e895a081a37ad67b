"""Write plugin.yml and docs/settings.md from the tap's own `--about`.

    .venv/bin/python scripts/plugin_definition.py          # rewrite plugin.yml and docs/settings.md
    .venv/bin/python scripts/plugin_definition.py --check  # exit 1 if either is out of date

plugin.yml is the file a Meltano Hub entry is made from, and what `meltano add --plugin-type
extractor tap-aircall-analytics --from-ref plugin.yml` reads. The settings are the tap's
(settings.py and the SDK's), so this file is generated, never edited by hand. The same run
writes the definition into the extractor of this repository's meltano.yml (all but its
pip_url, which installs this checkout). docs/settings.md, the settings reference, is made from the
same settings. Tests hold all three equal to `--about`.
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
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
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


def about() -> dict:
    """`tap-aircall-analytics --about --format=json`."""
    return json.loads(
        subprocess.run(
            [sys.executable, "-m", "tap_aircall_analytics", "--about", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def definition(about: dict) -> dict:
    """The plugin definition, from `--about`."""
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


def render(about: dict) -> str:
    header = "# Generated from `tap-aircall-analytics --about` by scripts/plugin_definition.py: do not edit.\n"
    return header + yaml.safe_dump(definition(about), sort_keys=False, allow_unicode=True, width=100)


#: The first of the SDK's own settings in `--about`: the tap's come before it.
FIRST_SDK_SETTING = "stream_maps"

SETTINGS_INTRO = """\
<!-- Generated from `tap-aircall-analytics --about` by scripts/plugin_definition.py: do not edit. -->
# Settings

Set them with `meltano config set tap-aircall-analytics <setting> <value>` (secrets go to
`.env`), as `TAP_AIRCALL_ANALYTICS_<SETTING>` environment variables, or in the tap's
`config.json`. Required: `start_date`, and either `api_id` with `api_token` or `access_token`.
Settings are checked before any request; a problem stops the run with one line that says what to
fix, e.g. `tap-aircall-analytics: end_date 2026-05-01 is before start_date 2026-05-10`.
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(schema: dict) -> str:
    types = [name for name in schema.get("type", []) if name != "null"]
    name = "date" if schema.get("format") == "date" else (types[0] if types else "")
    items = schema.get("items", {}).get("type")
    if name == "array" and items:
        return f"array of {next(kind for kind in items if kind != 'null')}s"
    return name


def _default(schema: dict) -> str:
    default = schema.get("default")
    if default is None:
        return ""
    return f"`{json.dumps(default)}`"


def settings_page(about: dict) -> str:
    """docs/settings.md: the tap's settings as a table, each column_types entry's fields, the SDK's settings."""
    properties = about["settings"]["properties"]
    names = list(properties)
    own = names[: names.index(FIRST_SDK_SETTING)]
    required = set(about["settings"].get("required", []))
    secret = "**Secret**: written to `.env` by `meltano config set`. "
    lines = [SETTINGS_INTRO, "| Setting | Type | Default | Description |", "|:--|:--|:--|:--|"]
    for name in own:
        schema = properties[name]
        description = (secret if schema.get("secret") else "") + _cell(schema.get("description", ""))
        flag = " (required)" if name in required else ""
        lines.append(f"| `{name}`{flag} | {_type(schema)} | {_default(schema)} | {description} |")
    entry = properties["column_types"]["additionalProperties"]["items"]
    lines += [
        "",
        "## Each `column_types` entry",
        "",
        "| Field | Type | Required | Description |",
        "|:--|:--|:--|:--|",
    ]
    for name, schema in entry["properties"].items():
        values = ", ".join(f"`{value}`" for value in schema.get("enum", []))
        description = _cell(schema.get("description", "")) or f"One of {values}."
        if values and "One of" not in description:
            description += f" One of {values}."
        flag = "yes" if name in entry.get("required", []) else ""
        lines.append(f"| `{name}` | {_type(schema)} | {flag} | {description} |")
    lines += [
        "",
        "## The SDK's settings",
        "",
        "The Singer SDK adds these; `tap-aircall-analytics --about --format=markdown` prints them with the",
        "SDK's own descriptions.",
        "",
    ]
    for name in names[len(own) :]:
        schema = properties[name]
        lines.append(f"- `{name}` ({schema.get('title', name)}): {_cell(schema.get('description', ''))}")
    return "\n".join(lines) + "\n"


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
    described = about()
    text = render(described)
    page = settings_page(described)
    if args.check:
        stale = [path.name for path, want in ((PLUGIN_FILE, text), (SETTINGS_PAGE, page)) if path.read_text() != want]
        if stale:
            raise SystemExit(f"{' and '.join(stale)} out of date: run scripts/plugin_definition.py")
        return
    PLUGIN_FILE.write_text(text)
    SETTINGS_PAGE.write_text(page)
    write_project(yaml.safe_load(text))
    print(f"wrote {PLUGIN_FILE}, {SETTINGS_PAGE} and the extractor of {PROJECT_FILE}")


if __name__ == "__main__":
    main()
