"""ReportStream: the SDK's side of one report: it asks its Run for files and records, and checkpoints windows."""

from __future__ import annotations

import datetime as dt
import time
import typing as t

from singer_sdk import Tap, metrics
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import Stream
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import redaction, sdk
from tap_aircall_analytics.config.catalogue import Report
from tap_aircall_analytics.config.settings import ConfigError
from tap_aircall_analytics.emit.batches import supported
from tap_aircall_analytics.files.records import json_schema
from tap_aircall_analytics.planning.bookmarks import stored_bookmark
from tap_aircall_analytics.planning.plan import PlannedStream, plan_stream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_aircall_analytics.exports.pipeline import ExportedFile
    from tap_aircall_analytics.run import Run


class ReportStream(Stream):
    """The rows of one Analytics+ report, exported window by window.

    State is kept per window, not per record: the bookmark (`replication_key_value`)
    is the first day not yet exported, in the account timezone. It moves after the
    last record of each finished window, empty windows included, and never past today.
    """

    is_sorted = False
    # Records leave records.py as the exact JSON types of the schema: nothing to conform.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, run: Run, report: Report) -> None:
        self.report = report
        self.run = run
        super().__init__(tap, schema=json_schema(report), name=report.stream_name)
        redaction.scrub_loggers(self.logger)
        self.primary_keys = list(report.primary_key)
        self.replication_key = report.replication_key or None  # a report of extra_reports has none
        self._write_directly = False
        self._record_counter: metrics.Counter | None = None

    @property
    @override
    def replication_method(self) -> str:
        """Always incremental: a full refresh is a state reset (see docs/state-and-backfills.md)."""
        return "INCREMENTAL"

    def plan(self, context: Context | None = None) -> PlannedStream:
        """The windows this stream exports in this run, from the settings and the state's bookmark."""
        return plan_stream(
            self.name, self.report, self.run.settings, self._stored_bookmark(context), self.logger.warning
        )

    def _stored_bookmark(self, context: Context | None) -> dt.date | None:
        """The state's bookmark (checked when loaded), read without writing: streams are planned before any STATE."""
        bookmarks = self.tap_state.get("bookmarks", {})
        state = bookmarks.get(self.name, {}) if context is None else self.get_context_state(context)
        return stored_bookmark(self.name, state) if state.get("replication_key") == self.replication_key else None

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Export each window and yield its records, or write them (see `_sync_records`); checkpoint each."""
        reader = self.run.record_reader(self.report, self.logger.warning)
        for file in self._finished_windows(context):
            started, rows = time.monotonic(), 0
            where = str(file.window)
            if self._write_directly:
                records = reader.records(file.path, zipped=file.zipped, where=where)
                rows = self.run.writer.write_records(self.name, records)
                if self._record_counter is not None:
                    self._record_counter.increment(rows)
            else:
                dicts = reader.read(file.path, zipped=file.zipped, where=where)
                for rows, record in enumerate(dicts, 1):  # noqa: B007 - the last count is the window's rows
                    yield record
            self.run.emitted(self.logger, self.name, file.window, rows, time.monotonic() - started)

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Export each window and convert its file to batch files with DuckDB; through the SDK's
        batcher (records built in Python) when stream maps, flattening or an encoding DuckDB does not
        write are in play."""
        if not (sdk.maps_pass_through(self) and supported(batch_config.encoding)):
            yield from self._mapped_batches(batch_config, context)
            return
        writer = self.run.batch_writer(
            self.tap_name, self.report, sdk.selected_properties(self), batch_config, self.logger.warning
        )
        for file in self._finished_windows(context):
            started = time.monotonic()
            urls = writer.write(file.path, zipped=file.zipped, window=file.window, workdir=file.path.parent)
            seconds = time.monotonic() - started
            self.run.emitted(self.logger, self.name, file.window, writer.rows_written, seconds, len(urls))
            yield batch_config.encoding, urls

    def _mapped_batches(
        self, batch_config: BatchConfig, context: Context | None
    ) -> t.Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
        """Records mapped as RECORD messages are, batched by the SDK; a map may not rename the stream."""
        maps = self.stream_maps
        if len(maps) != 1 or maps[0].stream_alias != self.name:
            raise ConfigError(
                f"stream_maps: {self.name} is mapped to {', '.join(m.stream_alias for m in maps) or 'nothing'}; "
                "with batch_config a map may change a stream's properties but not rename, split or drop it"
            )
        records = self._sync_records(context, write_messages=False)
        yield from sdk.mapped_batches(self, maps[0], batch_config, records)

    def _finished_windows(self, context: Context | None) -> t.Iterator[ExportedFile]:
        """Yield each window's file from the run; once emitted, checkpoint the window."""
        planned = self.run.planned(self.name) or self.plan(context)
        if not planned.windows:
            self.logger.info("%s: nothing to export (the bookmark or the retention limit is past end_date)", self.name)
            return
        bookmark = planned.bookmark
        for file in self.run.files(planned):
            yield file
            self.run.in_flight.emitted(self.name, file.window.last)
            bookmark = planned.bookmark_after(file.window, bookmark)
            self._checkpoint(context, bookmark)

    def _checkpoint(self, context: Context | None, bookmark: dt.date) -> None:
        """Write a STATE message saying every day before `bookmark` is emitted."""
        state = self.get_context_state(context)
        if self.replication_key:
            state["replication_key"] = self.replication_key
        state["replication_key_value"] = bookmark.isoformat()
        self.run.carry_state(t.cast("dict[str, t.Any]", self.tap_state))  # the SDK's type knows only "bookmarks"
        self.state_manager.is_flushed = False
        self._write_state_message()

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's record loop, the message buffer flushed however it ends. When the SDK would change
        nothing of a record (no stream map, flattening, deselected property or record limit), `get_records`
        writes the records itself, without the SDK's per-record work: the hot path of every RECORD run."""
        self._write_directly = (
            write_messages and self.selected and self.ABORT_AT_RECORD_COUNT is None and sdk.nothing_to_map(self)
        )
        try:
            yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            self.run.writer.flush()

    @override
    def get_record_counter(self, **kwargs: t.Any) -> metrics.Counter:
        """The SDK's record counter, kept: records written directly are counted on it too."""
        self._record_counter = super().get_record_counter(**kwargs)
        return self._record_counter

    @override
    def _process_record(
        self, record: dict, child_context: Context | None = None, partition_context: Context | None = None
    ) -> None:
        """Nothing to do per record: report streams have no partitions and no child streams."""

    @override
    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """Records do not move the bookmark: finished windows do (see `_checkpoint`)."""
