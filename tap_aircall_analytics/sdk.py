"""Where the tap leans on parts of singer-sdk that are private, final or undocumented.

Everything else the tap uses is the SDK's public API. Each entry of SDK_PARTS names the SDK
part, where the tap uses it, and why; `tests/test_sdk_parts.py` checks each one still exists
in the installed SDK with the parameters the tap relies on, and fails with the entry's reason
when an upgrade changes it. Read this list before moving the `singer-sdk` pin. Below it, the
helpers that read a stream's stream maps and selection, for streams.py.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from singer_sdk.batch import Batcher
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.mapper import SameRecordTransform

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.mapper import StreamMap
    from singer_sdk.streams import Stream


@dataclass(frozen=True)
class SdkPart:
    """One part of singer-sdk the tap depends on beyond the public API."""

    name: str  # "module:Class.attribute", or "tap." / "stream." for an attribute of a live object
    used_in: str
    reason: str
    parameters: tuple[str, ...] | None = None  # the parameter names the tap calls or overrides it with


SDK_PARTS: tuple[SdkPart, ...] = (
    SdkPart(
        "singer_sdk:Tap.sync_all",
        "tap.py TapAircallAnalytics.sync_all",
        "final in the SDK; overridden to plan every selected stream's exports before the streams sync, "
        "to run plan_only and check_schema instead of a sync, and to stop with one line on a known failure; "
        "the SDK's own sync_all, called from it, syncs the selected streams in the order of tap.streams, "
        "the order the run's exports are planned and their files handed back in",
        ("self",),
    ),
    SdkPart(
        "singer_sdk:Tap.run_connection_test",
        "tap.py TapAircallAnalytics.run_connection_test",
        "final in the SDK; overridden so that `--test` checks the settings first and stops with one line on a "
        "known failure, as a sync does",
        ("self",),
    ),
    SdkPart(
        "singer_sdk:Tap.invoke",
        "tap.py TapAircallAnalytics.invoke",
        "the command line hands the --state file to invoke, which parses it before any tap code runs: "
        "overridden to stop in one line on a state file that is empty, not JSON or of the wrong shape",
        ("about", "about_format", "config", "state", "catalog"),
    ),
    SdkPart(
        "singer_sdk:Tap._validate_config",
        "tap.py TapAircallAnalytics._validate_config",
        "number settings given as text (environment variables, Meltano) are read as numbers before validation",
        ("self", "raise_errors"),
    ),
    SdkPart(
        "singer_sdk:Tap._handle_termination",
        "tap.py TapAircallAnalytics._handle_termination",
        "SIGTERM/SIGINT: keep messages whole, emit the state of the finished windows, exit 128 + signal",
        ("self", "signum", "frame"),
    ),
    SdkPart("tap._config", "tap.py TapAircallAnalytics._validate_config", "the config dict read before validation"),
    SdkPart(
        "singer_sdk.streams:Stream._sync_records",
        "streams.py ReportStream._sync_records",
        "flushes the message buffer however the sync ends, and lets get_records write records directly when "
        "the SDK would change nothing of them",
        ("self", "context", "write_messages"),
    ),
    SdkPart(
        "singer_sdk.streams:Stream._process_record",
        "streams.py ReportStream._process_record",
        "no per-record work: report streams have no partitions and no child streams",
        ("self", "record", "child_context", "partition_context"),
    ),
    SdkPart(
        "singer_sdk.streams:Stream._increment_stream_state",
        "streams.py ReportStream._increment_stream_state",
        "records never move the bookmark: finished windows do (no public 'checkpoint now', SDK issue 1750)",
        ("self", "latest_record", "context"),
    ),
    SdkPart(
        "singer_sdk.streams:Stream._write_state_message",
        "streams.py ReportStream._checkpoint",
        "writes a STATE after the last record of each window",
        ("self",),
    ),
    SdkPart("stream.state_manager.is_flushed", "streams.py ReportStream._checkpoint", "marks the state as changed"),
    SdkPart(
        "singer_sdk.helpers._batch:BaseBatchFileEncoding",
        "streams.py, batches.py",
        "the encoding of batch_config, read to write batch files with DuckDB",
    ),
    SdkPart(
        "singer_sdk.helpers._batch:BatchConfig",
        "streams.py ReportStream.get_batches, run.py Run.batch_writer",
        "the batch_config",
    ),
    SdkPart("singer_sdk.helpers._batch:StorageTarget", "batches.py BatchFileWriter", "where batch files go"),
    SdkPart(
        "singer_sdk.helpers._catalog:pop_deselected_record_properties",
        "sdk.py mapped_batches",
        "removes deselected properties from records batched in Python, as RECORD messages do",
        ("record", "schema", "mask", "breadcrumb"),
    ),
    SdkPart(
        "singer_sdk.singerlib.encoding.base:GenericSingerWriter",
        "messages.py BufferedMessageWriter",
        "the base of the tap's msgspec message writer (serialize_message, write_message)",
    ),
    SdkPart(
        "tap.state_writer",
        "tap.py TapAircallAnalytics._handle_termination",
        "public, but the tap writes the last STATE with it itself, on a signal",
    ),
    SdkPart(
        "singer_sdk.mapper:SameRecordTransform",
        "sdk.py maps_pass_through",
        "records are written without the SDK only when the stream's one map is the SDK's identity map "
        "(unaliased, unflattened): the tap reads the map's type, stream_alias and flattening_enabled",
    ),
    SdkPart(
        "stream.stream_maps",
        "sdk.py maps_pass_through, streams.py ReportStream._mapped_batches",
        "the maps inspected above",
    ),
    SdkPart(
        "singer_sdk.streams:Stream.ABORT_AT_RECORD_COUNT",
        "streams.py ReportStream._sync_records",
        "the record limit of the SDK's connection test (--test, meltano config test): when it is set, "
        "the tap leaves records to the SDK, which stops at it",
    ),
    SdkPart(
        "singer_sdk.singerlib:RecordMessage.to_dict",
        "messages.py BufferedMessageWriter.write_records",
        "the RECORD envelope is built by hand there, byte for byte as the SDK's RecordMessage gives it",
    ),
)


def selected_properties(stream: Stream) -> list[str]:
    """The properties of `stream`'s schema that its catalog selects, in the schema's order."""
    mask = stream.mask
    return [name for name in stream.schema["properties"] if mask.get(("properties", name), True)]


def maps_pass_through(stream: Stream) -> bool:
    """True when `stream`'s stream maps are the SDK's identity map, without flattening."""
    maps = stream.stream_maps
    return (
        len(maps) == 1
        and type(maps[0]) is SameRecordTransform
        and maps[0].stream_alias == stream.name
        and not maps[0].flattening_enabled
    )


def nothing_to_map(stream: Stream) -> bool:
    """True when no stream map, no flattening and no deselected property alters `stream`'s records."""
    return maps_pass_through(stream) and len(selected_properties(stream)) == len(stream.schema["properties"])


def mapped_batches(
    stream: Stream, stream_map: StreamMap, batch_config: BatchConfig, records: t.Iterable[dict]
) -> t.Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
    """The SDK's batcher, fed `records` as a RECORD message would carry them: deselected properties
    removed, then `stream_map` applied. (The SDK's own `get_batches` batches records before both: its
    SCHEMA would say what the map makes, a hashed phone number, JSON text, its files hold raw values.)"""

    def mapped() -> t.Iterator[dict]:
        for record in records:
            pop_deselected_record_properties(record, stream.schema, stream.mask)
            transformed = stream_map.transform(record)
            if transformed is not None:  # a `__filter__` map left it out
                yield transformed

    batcher = Batcher(tap_name=stream.tap_name, stream_name=stream.name, batch_config=batch_config)
    for manifest in batcher.get_batches(records=mapped()):
        yield batch_config.encoding, manifest
