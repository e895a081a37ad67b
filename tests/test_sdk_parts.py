"""Every private or final part of singer-sdk the tap relies on is still there, as the tap uses it."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import re
import subprocess
from collections import Counter

import pytest
from singer_sdk import Tap
from singer_sdk.mapper import SameRecordTransform

from conftest import CREDENTIALS, TAP, TODAY, tap_config
from tap_aircall_analytics import sdk
from tap_aircall_analytics.config.catalogue import REPORTS
from tap_aircall_analytics.sdk import SDK_PARTS, SdkPart
from tap_aircall_analytics.streams import ReportStream
from tap_aircall_analytics.tap import TapAircallAnalytics


def resolve(part: SdkPart) -> object:
    """The SDK object an entry names: from its module, or from a live tap and stream."""
    if ":" in part.name:
        module, _, path = part.name.partition(":")
        found: object = importlib.import_module(module)
    else:
        tap = TapAircallAnalytics(config={**CREDENTIALS, "start_date": TODAY.isoformat()}, validate_config=False)
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


def calls_history(**config: object) -> ReportStream:
    """The calls_history stream of a tap built with these settings."""
    tap = TapAircallAnalytics(config={**CREDENTIALS, "start_date": TODAY.isoformat(), **config}, validate_config=False)
    return tap.streams["calls_history"]


def test_the_identity_map_lets_records_be_written_directly_and_any_other_map_does_not():
    plain = calls_history()
    assert isinstance(plain.stream_maps[0], SameRecordTransform) and sdk.maps_pass_through(plain)
    hashed = {"stream_maps": {"calls_history": {"customer_number": "md5(customer_number)"}}}
    assert not sdk.maps_pass_through(calls_history(**hashed))
    assert not sdk.maps_pass_through(calls_history(stream_maps={"calls_history": {"__alias__": "calls"}}))
    assert not sdk.maps_pass_through(calls_history(flattening_enabled=True, flattening_max_depth=1))


def test_the_sdk_connection_test_stops_each_stream_at_its_first_record(simulator, tmp_path):
    """The SDK's record limit reaches the tap: records go through the SDK, which stops at one."""
    sim = simulator(rate_limit=100_000)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tap_config(sim, start_date=(TODAY - dt.timedelta(days=1)).isoformat())))
    result = subprocess.run([*TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = Counter(json.loads(line)["stream"] for line in result.stdout.splitlines() if '"RECORD"' in line)
    assert records == {report.stream_name: 1 for report in REPORTS}


def test_the_sdk_syncs_the_selected_streams_in_the_order_of_tap_streams(monkeypatch):
    tap = TapAircallAnalytics(config={**CREDENTIALS, "start_date": TODAY.isoformat()}, validate_config=False)
    chosen = {"user_status_history", "calls_history", "user_activity_calls_handled"}
    for name, stream in tap.streams.items():
        stream.selected = name in chosen
    synced: list[str] = []
    monkeypatch.setattr(ReportStream, "sync", lambda stream, context=None: synced.append(stream.name))
    Tap.sync_all(tap)  # the SDK's own loop, which the tap's sync_all calls once the exports are planned
    assert synced == [name for name in tap.streams if name in chosen]


def record_lines(sim, capfd, *, through_the_sdk: bool) -> list[str]:
    """The RECORD lines of one in-process run of calls_history, the time of extraction masked."""
    day = (TODAY - dt.timedelta(days=1)).isoformat()
    tap = TapAircallAnalytics(config=tap_config(sim, start_date=day, end_date=day), validate_config=True)
    for name, stream in tap.streams.items():
        stream.selected = name == "calls_history"
    if through_the_sdk:  # a record limit no run reaches: the SDK writes every record itself
        tap.streams["calls_history"].ABORT_AT_RECORD_COUNT = 10**9
    capfd.readouterr()
    tap.sync_all()
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith('{"type":"RECORD"')]
    stamps = {re.search(r',"time_extracted":"([^"]+)"}$', line).group(1) for line in lines}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", stamp) for stamp in stamps), stamps
    return [re.sub(r',"time_extracted":"[^"]+"}$', ',"time_extracted":"T"}', line) for line in lines]


def test_the_direct_record_path_and_the_sdk_path_write_identical_messages(simulator, capfd):
    sim = simulator(rate_limit=100_000, calls_per_day=200)
    direct = record_lines(sim, capfd, through_the_sdk=False)
    through_the_sdk = record_lines(sim, capfd, through_the_sdk=True)
    yesterday = TODAY - dt.timedelta(days=1)
    assert len(direct) == len(sim.expected_rows("CALLS_HISTORY", yesterday, yesterday)[1]) > 100
    assert direct == through_the_sdk
