"""The package's layout: modules import downwards only, and no import circle.

The imports are read from the source (every `import` and `from ... import`, those under
`if TYPE_CHECKING:` included), not from a running interpreter, so a circle that only the
type checker sees counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tap_aircall_analytics

PACKAGE = "tap_aircall_analytics"
ROOT = Path(tap_aircall_analytics.__file__).parent

#: From the top down: a module may import from its own layer (without a circle) and from the
#: layers below it, never from a layer above. A name is a module or a folder of the package.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__", "tap"),  # the SDK's Tap: command line, discovery, signals
    ("streams", "preflight"),  # the SDK's streams, and what runs instead of a sync
    ("run", "errors"),  # one run's services; the errors that end it
    ("emit",),  # Singer messages and batch files out
    ("exports",),  # the run's exports, every stream's
    ("api", "files.records", "planning"),  # the API, one file's records, which days to export
    ("config.settings",),  # the checked settings
    ("config.spellings",),  # every spelling a value may be written in
    ("config.catalogue", "clock", "redaction", "sdk"),  # Aircall's facts, today, secrets, SDK notes
)
#: The simulator stands beside the tap: it may read the catalogue and the clock, and the tap never imports it.
SIMULATOR = "simulator"
SIMULATOR_READS = ("config.catalogue", "clock")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports, by name relative to the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = (
                submodules if any(name.removeprefix(PACKAGE + ".") in known for name in submodules) else [node.module]
            )
        else:
            continue
        for name in names:
            if name.startswith(PACKAGE + "."):
                relative = name.removeprefix(PACKAGE + ".")
                if relative in known:
                    found.add(relative)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    edges = {name: imports(path, known) - {name} for name, path in found.items() if name}
    folders = {name for name, path in found.items() if path.name == "__init__.py" and not edges.get(name)}
    return {name: targets for name, targets in edges.items() if name not in folders}  # a folder's docstring


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for number, names in enumerate(LAYERS):
        for name in names:
            matches = module == name or module.startswith(name + ".")
            if matches and (best is None or len(name) > best[0]):
                best = (len(name), number)
    return None if best is None else best[1]


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import circle of `edges`, as the modules along it, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_cycle_finder_finds_the_circle_the_tap_once_had():
    old = {"tap": {"preflight", "streams"}, "preflight": {"streams"}, "streams": {"tap"}}
    assert cycle(old) == ["preflight", "streams", "tap", "preflight"]
    assert cycle({"tap": {"streams"}, "streams": {"run"}, "run": set()}) == []


def test_the_package_has_no_import_circle():
    assert cycle(graph()) == []


def test_every_module_of_the_tap_has_a_layer():
    unplaced = [name for name in graph() if not name.startswith(SIMULATOR) and layer_of(name) is None]
    assert unplaced == [], "add these modules to a layer of LAYERS"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if not module.startswith(SIMULATOR)
        for target in sorted(targets)
        if target.startswith(SIMULATOR) or (layer_of(target) or 0) < (layer_of(module) or 0)
    ]
    assert upward == []


def test_the_simulator_reads_only_the_catalogue_and_the_clock():
    reads = {
        target
        for module, targets in graph().items()
        if module.startswith(SIMULATOR)
        for target in targets
        if not target.startswith(SIMULATOR)
    }
    assert reads <= set(SIMULATOR_READS)


def test_the_stream_is_sdk_glue_that_never_reaches_the_tap():
    stream = graph()["streams"]
    assert "tap" not in stream
    assert {"api.client", "api.polls", "api.budget"}.isdisjoint(stream)  # the run builds clients and exporters
    assert "_tap" not in (ROOT / "streams.py").read_text(encoding="utf-8")
