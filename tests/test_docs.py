"""The manual as a reader meets it: a short README, pages by topic, and every printed command run.

Every shell block of README.md and docs/*.md that runs against the simulator is run here, as a
reader would paste it into a shell at the repository's root after the README's "Try it on the
simulator" (the simulator's token exported). Two things differ, and only these: the port 8765 is
replaced by a free one (other runs may hold 8765), and `.venv/bin/` by the directory of the
Python running the suite. A block that cannot run here says so on its first line,
`# not run here: <what it needs>`; every other block is a case of `test_the_shell_block_runs`.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CREDENTIALS, ROOT, _env, meltano_sys_dir

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOPICS = [
    "settings",
    "streams",
    "state-and-backfills",
    "scheduling",
    "destinations",
    "api-budget",
    "batch-and-speed",
    "troubleshooting",
    "simulator",
    "development",
]
SHELLS = {"bash", "sh", "shell", "console", "zsh"}
NOT_RUN = "# not run here:"
BIN = str(Path(sys.executable).parent)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0].strip() if self.text.strip() else ""


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (indented fences too, as in a list item)."""
    found: list[Block] = []
    opened: tuple[int, str, str] | None = None  # line, language, indent
    body: list[str] = []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        fence = re.match(r"^(\s*)```(\S*)\s*$", line)
        if opened is None and fence:
            opened, body = (number, fence.group(2), fence.group(1)), []
        elif opened is not None and fence and fence.group(2) == "":
            found.append(Block(page, opened[0], opened[1], "\n".join(body)))
            opened = None
        elif opened is not None:
            body.append(line.removeprefix(opened[2]))
    assert opened is None, f"{page.name}: a code block opened on line {opened[0]} is never closed"
    return found


SHELL_BLOCKS = [block for page in PAGES for block in blocks(page) if block.language in SHELLS]
RUNNABLE = [block for block in SHELL_BLOCKS if not block.first_line.startswith(NOT_RUN)]


def test_the_readme_is_short_and_the_rest_is_in_pages_by_topic():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    readme, index = (ROOT / "README.md").read_text(), (ROOT / "docs" / "README.md").read_text()
    for topic in TOPICS:
        assert f"(docs/{topic}.md)" in readme, topic
    for page in (ROOT / "docs").glob("*.md"):  # every page is found from the index
        assert page.name == "README.md" or f"({page.name})" in index, page.name
    commands, simulator = readme.index("## Two commands"), readme.index("## Try it on the simulator")
    assert commands < simulator < readme.index("## Point it at your Aircall account")
    assert readme.count("\n## ", commands, simulator) == 0  # the simulator comes right after the two commands


def test_every_link_between_pages_reaches_a_file_and_an_anchor():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "<")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: link to {target}"
            if anchor:
                assert anchor in _anchors(linked), f"{page.name}: no heading #{anchor} in {linked.name}"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = [line.lstrip("#").strip() for line in page.read_text().splitlines() if re.match(r"^#{1,6} ", line)]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_the_settings_reference_is_generated_from_the_settings_schema():
    spec = importlib.util.spec_from_file_location("plugin_definition", ROOT / "scripts" / "plugin_definition.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    about = script.about()
    page = (ROOT / "docs" / "settings.md").read_text()
    assert page == script.settings_page(about), "docs/settings.md is out of date: run scripts/plugin_definition.py"
    own = list(about["settings"]["properties"])
    own = own[: own.index(script.FIRST_SDK_SETTING)]
    rows = re.findall(r"^\| `(\w+)`", page.split("## Each `column_types` entry")[0], re.MULTILINE)
    assert rows == own and "api_token" in rows and "column_types" in rows


def test_every_shell_block_is_run_or_says_what_it_needs():
    assert len(RUNNABLE) >= 4  # the README's simulator, the plan, the schema check, the simulator page
    for block in SHELL_BLOCKS:
        assert block.language == "bash", f"{block.name}: shell blocks are ```bash"
        if block not in RUNNABLE:
            assert len(block.first_line) > len(NOT_RUN) + 5, f"{block.name}: say what the block needs"
    assert any(block.page.name == "README.md" and "aircall-analytics-simulator" in block.text for block in RUNNABLE)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_the_shell_block_runs(block: Block, installed_plugins, simulator, tmp_path):
    starts_its_own = re.search(r"aircall-analytics-simulator --port 8765\b", block.text) is not None
    port = _free_port() if starts_its_own else int(simulator(rate_limit=1200).api_url.rsplit(":", 1)[1])
    script = block.text.replace(".venv/bin/", f"{BIN}/").replace("8765", str(port))
    jsonl = tmp_path / "jsonl"
    environment = _env(
        {
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
            # Meltano writes a run's catalog to fixed names in .meltano/run: a folder of this test's own.
            "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir(tmp_path)),
            # The demo environment's api_url names 8765: the same substitution, for Meltano's settings.
            "TAP_AIRCALL_ANALYTICS_API_URL": f"http://127.0.0.1:{port}",
            # What the README's block exported in the reader's shell.
            "TAP_AIRCALL_ANALYTICS_API_TOKEN": CREDENTIALS["api_token"],
            "TAP_AIRCALL_ANALYTICS_POLL_INTERVAL_SECONDS": "0.05",
            "TARGET_JSONL_DESTINATION_PATH": str(jsonl),
            "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
        }
    )
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{block.name}:\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr
    if re.search(r"meltano .*run .*target-jsonl", block.text) and "PLAN_ONLY" not in block.text:
        assert any(path.stat().st_size for path in jsonl.glob("*.jsonl")), f"{block.name}: nothing loaded"
    if "PLAN_ONLY=true" in block.text:
        assert "Plan (nothing is exported)" in result.stderr and not jsonl.exists()
    if "CHECK_SCHEMA=true" in block.text:
        assert "renamed? 'Country' -> 'Country code'" in result.stderr, f"{block.name}:\n{result.stderr[-4000:]}"
        assert "meltano config set tap-aircall-analytics column_types '" in result.stderr
