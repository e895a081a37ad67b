"""ReportStream: one stream per report, driving windows -> exports -> records -> state."""

from __future__ import annotations

import datetime as dt
import threading
import time
import typing as t

from singer_sdk import metrics
from singer_sdk.batch import Batcher
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams import Stream
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import batches, halves
from tap_aircall_analytics.bookmarks import stored_bookmark
from tap_aircall_analytics.client import AircallClient
from tap_aircall_analytics.exports import ExportedFile, ExportPipeline, ExportStats, ReportExporter
from tap_aircall_analytics.polls import PollPolicy
from tap_aircall_analytics.records import RecordReader, json_schema
from tap_aircall_analytics.reports import Report, export_request_body
from tap_aircall_analytics.settings import ConfigError
from tap_aircall_analytics.windows import Window, next_bookmark, plan_windows, sync_range

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_aircall_analytics.tap import TapAircallAnalytics


class ReportStream(Stream):
    """The rows of one Analytics+ report, exported window by window.

    State is kept per window, not per record: the bookmark (`replication_key_value`)
    is the first day not yet exported, in the account timezone. It moves after the
    last record of each finished window, empty windows included, and never past today.
    """

    is_sorted = False
    # Records leave records.py as the exact JSON types of the schema: nothing to conform.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapAircallAnalytics, report: Report) -> None:
        self.report = report
        super().__init__(tap, schema=json_schema(report), name=report.stream_name)
        self.primary_keys = list(report.primary_key)
        self.replication_key = report.replication_key or None  # a report of extra_reports has none
        self.record_reader: RecordReader | None = None
        self._exporter: ReportExporter | None = None
        self._today: dt.date | None = None  # the account's today when the windows were planned
        self._write_directly = False
        self._record_counter: metrics.Counter | None = None

    @property
    @override
    def replication_method(self) -> str:
        """Always incremental: a full refresh is a state reset (see the README)."""
        return "INCREMENTAL"

    def bookmark(self, context: Context | None = None) -> dt.date | None:
        """The first day not yet exported, from state, never after today; None on a first run.

        A bookmark after today (a clock that ran ahead, a state edited by hand) is read as
        today, so the stream syncs again instead of freezing; `planned_windows` says so.
        """
        stored = self._stored_bookmark(context)
        return None if stored is None else min(stored, self._today or self.owner.settings.today())

    def _stored_bookmark(self, context: Context | None) -> dt.date | None:
        """The bookmark as the state holds it (checked when the state was loaded).

        Read without writing: the run plans every stream before the first STATE goes out.
        """
        state = (
            self.tap_state.get("bookmarks", {}).get(self.name, {})
            if context is None
            else self.get_context_state(context)
        )
        if state.get("replication_key") != self.replication_key:
            return None
        return stored_bookmark(self.name, state)

    @property
    def owner(self) -> TapAircallAnalytics:
        """The tap this stream belongs to, with its settings and its run's exports."""
        return t.cast("TapAircallAnalytics", self._tap)

    @property
    def export_stats(self) -> ExportStats | None:
        """What this stream's exports cost in this run (None before the run planned them)."""
        return self._exporter.stats if self._exporter else None

    @property
    def client(self) -> AircallClient | None:
        """The client of this stream's exports in this run."""
        return self._exporter.client if self._exporter else None

    def exporter(self, stop: threading.Event) -> ReportExporter:
        """The export flow of this stream's report, stopped with `stop`."""
        settings = self.owner.settings
        client = AircallClient(
            settings.api_url,
            settings.authorization,
            budget=self.owner.budget,
            stop=stop,
            timeout_seconds=settings.request_timeout_seconds,
        )
        self._exporter = ReportExporter(
            client,
            self.report,
            lambda window: export_request_body(
                self.report, window.first, window.last, settings.timezone, settings.filters
            ),
            poll=PollPolicy(
                settings.poll_interval_seconds, settings.max_poll_interval_seconds, settings.export_timeout_seconds
            ),
            timings=self.owner.export_timings,
            progress=self.logger.info,
            in_flight=self.owner.in_flight,
        )
        return self._exporter

    def planned_windows(self, context: Context | None = None) -> list[Window]:
        """The windows this run exports, from settings, state, lookback and retention."""
        settings = self.owner.settings
        today = self._today = settings.today()
        stored = self._stored_bookmark(context)
        if stored is not None and stored > today:
            self.logger.warning(
                "%s: the bookmark %s is after today (%s): read as today, so the stream syncs again",
                self.name,
                stored,
                today,
            )
        days = sync_range(
            self.report,
            start_date=settings.start_date,
            end_date=settings.last_day(),
            today=today,
            bookmark=self.bookmark(context),
            lookback_days=settings.lookback_days,
        )
        if days.clamped_from is not None:
            self.logger.warning(
                "%s keeps %s of data: starting at %s instead of %s",
                self.report.api_name,
                self.report.retention_text,
                days.first,
                days.clamped_from,
            )
        return plan_windows(days.first, days.last, settings.window_days_for(self.report))

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Export each window and yield its records (or write them, see `_sync_records`); checkpoint each."""
        reader = self._record_reader()
        for file in self._finished_windows(context):
            started, rows = time.monotonic(), 0
            if self._write_directly:  # a large file is read on two cores
                rows = halves.write_records(reader, self.owner.writer, file.path, file.zipped, str(file.window))
                if self._record_counter is not None:
                    self._record_counter.increment(rows)
            else:
                records = reader.read(file.path, zipped=file.zipped, where=str(file.window))
                for rows, record in enumerate(records, 1):  # noqa: B007 - the last count is the window's rows
                    yield record
            self._emitted(file, rows, time.monotonic() - started)

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Export each window and convert its file to batch files with DuckDB.

        Falls back to the SDK's batcher (records built in Python) when stream maps,
        flattening or an encoding DuckDB does not write are in play.
        """
        if not (self._maps_pass_through() and batches.supported(batch_config.encoding)):
            yield from self._mapped_batches(batch_config, context)
            return
        batches.load_duckdb_meanwhile()
        writer = batches.BatchFileWriter(
            self._record_reader(),
            self._selected_properties(),
            batch_config.encoding,
            batch_config.storage,
            batches.file_stem(self.tap_name, self.name),
            max_disk_bytes=self.owner.settings.max_disk_mb * 1e6,
        )
        for file in self._finished_windows(context):
            started = time.monotonic()
            urls = writer.write(file.path, zipped=file.zipped, window=file.window, workdir=file.path.parent)
            self._emitted(file, writer.rows_written, time.monotonic() - started, f" into {len(urls)} batch file(s)")
            yield batch_config.encoding, urls

    def _mapped_batches(
        self, batch_config: BatchConfig, context: Context | None
    ) -> t.Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
        """The SDK's batcher, fed the records a RECORD message would carry.

        The SDK's own `get_batches` batches records before deselection and stream maps: its
        SCHEMA says what the maps make (a hashed phone number, JSON text), its files would hold
        the raw values. A map that renames or splits the stream has no batch of its own name.
        """
        maps = self.stream_maps
        if len(maps) != 1 or maps[0].stream_alias != self.name:
            raise ConfigError(
                f"stream_maps: {self.name} is mapped to {', '.join(m.stream_alias for m in maps) or 'nothing'}; "
                "with batch_config a map may change a stream's properties but not rename, split or drop it"
            )
        (stream_map,) = maps

        def mapped() -> t.Iterator[dict]:
            for record in self._sync_records(context, write_messages=False):
                pop_deselected_record_properties(record, self.schema, self.mask)
                transformed = stream_map.transform(record)
                if transformed is not None:  # a `__filter__` map left it out
                    yield transformed

        batcher = Batcher(tap_name=self.tap_name, stream_name=self.name, batch_config=batch_config)
        for manifest in batcher.get_batches(records=mapped()):
            yield batch_config.encoding, manifest

    def _emitted(self, file: ExportedFile, rows: int, seconds: float, where: str = "") -> None:
        """Count a window's rows and say how fast they went out."""
        if self.export_stats is not None:
            self.export_stats.add(rows=rows)
        rate = f" ({rows / seconds:,.0f} rows/s)" if rows and seconds > 0 else ""
        self.logger.info(
            "%s %s: %s rows emitted%s in %.1f s%s", self.name, file.window, f"{rows:,}", where, seconds, rate
        )

    def _record_reader(self) -> RecordReader:
        settings = self.owner.settings
        self.record_reader = RecordReader(
            self.report,
            settings.timezone,
            self.logger.warning,
            strict=settings.strict_values,
            unzip_limit=settings.max_unzipped_mb * 1e6,
        )
        return self.record_reader

    def _finished_windows(self, context: Context | None) -> t.Iterator[ExportedFile]:
        """Yield each window's file from the run's exports; once emitted, checkpoint the window."""
        pipeline = self.owner.export_pipeline
        if pipeline is None:  # a stream synced on its own, outside the tap's sync_all
            with self.owner.plan_exports([(self, self.planned_windows(context))]) as own:
                yield from self._emitted_windows(own, context)
            return
        yield from self._emitted_windows(pipeline, context)

    def _emitted_windows(self, pipeline: ExportPipeline, context: Context | None) -> t.Iterator[ExportedFile]:
        if not pipeline.windows(self.name):
            self.logger.info("%s: nothing to export (the bookmark or the retention limit is past end_date)", self.name)
            return
        bookmark = self.bookmark(context)
        assert self._today is not None, "the windows are planned before the sync"
        for file in pipeline.files(self.name):
            yield file
            done = next_bookmark(file.window, self._today)
            if bookmark is None or done > bookmark:
                bookmark = done
            self.owner.in_flight.emitted(self.name, file.window.last)
            self._checkpoint(context, bookmark)

    def _checkpoint(self, context: Context | None, bookmark: dt.date) -> None:
        """Write a STATE message saying every day before `bookmark` is emitted."""
        state = self.get_context_state(context)
        if self.replication_key:
            state["replication_key"] = self.replication_key
        state["replication_key_value"] = bookmark.isoformat()
        self.owner.carry_state()
        self.state_manager.is_flushed = False
        self._write_state_message()

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's record loop; the message buffer is flushed when it ends, however it ends.

        When the SDK would change nothing of a record (no stream map, no flattening, no
        deselected property, no record limit), `get_records` writes the records itself
        and the SDK's per-record work is skipped: the hot path of every RECORD run.
        """
        self._write_directly = (
            write_messages and self.selected and self.ABORT_AT_RECORD_COUNT is None and self._nothing_to_map()
        )
        try:
            yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            self.owner.writer.flush()

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

    def _nothing_to_map(self) -> bool:
        """True when no stream map, no flattening and no deselected property alters records."""
        return self._maps_pass_through() and len(self._selected_properties()) == len(self.schema["properties"])

    def _maps_pass_through(self) -> bool:
        """True when the stream maps are the SDK's identity map, without flattening."""
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    def _selected_properties(self) -> list[str]:
        mask = self.mask
        return [name for name in self.schema["properties"] if mask.get(("properties", name), True)]

    @override
    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """Records do not move the bookmark: finished windows do (see `_checkpoint`)."""
