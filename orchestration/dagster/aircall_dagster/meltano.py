"""A Dagster resource that runs `meltano run` in a Meltano project and reports what failed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable

import dagster as dg

#: Meltano's exit-code keys, and the side of the pipeline whose lines carry them.
_FAILED_SIDE = {"extractors": "producer", "loaders": "consumer", "mappers": "mapper"}


class MeltanoProject(dg.ConfigurableResource):
    """A Meltano project on disk and the `meltano` executable of its environment."""

    project_dir: str
    executable: str = "meltano"
    environment: str | None = None

    def run(self, context: dg.AssetExecutionContext | dg.OpExecutionContext, *blocks: str) -> None:
        """Run `meltano run BLOCKS...`; every plugin line goes to the Dagster log.

        A failing run raises `dagster.Failure` whose description is the last line of each
        failed plugin: a tap or target that ends with one line saying what went wrong (as
        tap-aircall-analytics does) shows that line in Dagster, not "exit code 1".
        """
        command = [self.executable, "--log-format=json"]
        if self.environment:
            command += ["--environment", self.environment]
        command += ["run", *blocks]
        context.log.info("running %s in %s", " ".join(command), self.project_dir)
        with subprocess.Popen(
            command,
            cwd=self.project_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # `meltano run` writes nothing there; its logs go to stderr
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stderr is not None
            summary = _follow(context, process.stderr)
            returncode = process.wait()
        if returncode != 0:
            raise dg.Failure(
                description=summary.failure() or f"meltano run exited {returncode}",
                metadata={"exit code": returncode, "command": " ".join(command)},
            )


class _RunSummary:
    """The last line of each plugin, and which plugins Meltano says failed."""

    def __init__(self) -> None:
        self.last_lines: dict[tuple[str, str], str] = {}
        self.failed_sides: list[str] = []

    def failure(self) -> str:
        lines = [
            line if line.startswith(f"{name}:") else f"{name}: {line}"
            for (name, side), line in self.last_lines.items()
            if side in self.failed_sides
        ]
        return "\n".join(lines)


def _follow(context: dg.AssetExecutionContext | dg.OpExecutionContext, lines: Iterable[str]) -> _RunSummary:
    summary = _RunSummary()
    for raw in lines:
        try:
            entry = json.loads(raw)
        except ValueError:
            context.log.info(raw.rstrip())
            continue
        event = str(entry.get("event", "")).rstrip()
        name = entry.get("name")
        if entry.get("stdio") == "stderr" and name:
            side = next((side for side in ("producer", "consumer") if entry.get(side)), "mapper")
            summary.last_lines[(name, side)] = event
            context.log.info("%s: %s", name, event)
            continue
        if "exit_codes" in entry:
            summary.failed_sides = [_FAILED_SIDE[kind] for kind, code in entry["exit_codes"].items() if code]
        log = context.log.error if entry.get("level") == "error" else context.log.info
        log("meltano: %s", event)
    return summary
