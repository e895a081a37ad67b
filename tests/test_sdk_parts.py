"""Every private or final part of singer-sdk the tap relies on is still there, as the tap uses it."""

from __future__ import annotations

import importlib
import inspect

import pytest

from conftest import CREDENTIALS
from tap_aircall_analytics.sdk import SDK_PARTS, SdkPart
from tap_aircall_analytics.tap import TapAircallAnalytics


def resolve(part: SdkPart) -> object:
    """The SDK object an entry names: from its module, or from a live tap and stream."""
    if ":" in part.name:
        module, _, path = part.name.partition(":")
        found: object = importlib.import_module(module)
    else:
        tap = TapAircallAnalytics(config={**CREDENTIALS, "start_date": "2026-01-01"}, validate_config=False)
        owner, _, path = part.name.partition(".")
        found = {"tap": tap, "stream": tap.streams["calls_history"]}[owner]
    for attribute in path.split("."):
        found = getattr(found, attribute)
    return found


@pytest.mark.parametrize("part", SDK_PARTS, ids=[part.name for part in SDK_PARTS])
def test_the_sdk_part_is_there_as_the_tap_uses_it(part):
    try:
        found = resolve(part)
    except (AttributeError, ImportError) as error:
        pytest.fail(f"singer-sdk no longer has {part.name} ({error}), which {part.used_in} needs: {part.reason}")
    if part.parameters is not None:
        parameters = tuple(inspect.signature(found).parameters)  # type: ignore[arg-type]
        assert parameters == part.parameters, (
            f"singer-sdk changed the parameters of {part.name} to {parameters}; {part.used_in} expects "
            f"{part.parameters}: {part.reason}"
        )


def test_the_list_names_every_private_sdk_import_of_the_package():
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "tap_aircall_analytics"
    listed = {part.name.partition(":")[0] for part in SDK_PARTS}
    for path in package.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if line.startswith("from singer_sdk") and any(word.startswith("_") for word in words[1].split(".")):
                assert words[1] in listed, f"{path.name} imports {words[1]}, which sdk.py does not list"
