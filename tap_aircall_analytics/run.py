"""One run's services: settings, API budget, poll timings, export pipeline, message writer, summary.

The tap builds one Run and hands it to its streams and to the preflight tools; they ask it for
what they need (the files of their planned windows, a record reader) and it counts what the run
cost. Nothing below this module knows the SDK's Tap or Stream.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing as t

from tap_aircall_analytics.api.budget import RATE_WINDOW_SECONDS, RequestBudget
from tap_aircall_analytics.api.client import AircallClient, stop_sending
from tap_aircall_analytics.api.polls import ExportTimings, PollPolicy
from tap_aircall_analytics.config.catalogue import Report, export_request_body
from tap_aircall_analytics.emit import batches
from tap_aircall_analytics.emit.messages import BufferedMessageWriter
from tap_aircall_analytics.exports.pipeline import ExportedFile, ExportPipeline, ReportExporter
from tap_aircall_analytics.files.records import RecordReader
from tap_aircall_analytics.planning.bookmarks import TAP_STATE_KEY, CarriedState, ExportsInFlight, carried_state

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BatchConfig

    from tap_aircall_analytics.config.settings import Settings
    from tap_aircall_analytics.planning.plan import PlannedStream
    from tap_aircall_analytics.planning.windows import Window


class ExportSource(t.Protocol):
    """What a stream reads its files from: the run's export pipeline, or a stand-in (benchmarks)."""

    def files(self, stream: str) -> t.Iterator[ExportedFile]: ...


class Run:
    """The services of one run of the tap, shared by every stream."""

    def __init__(
        self, settings: t.Callable[[], Settings], logger: logging.Logger, writer: BufferedMessageWriter
    ) -> None:
        self._read_settings = settings  # read on first use: discovery needs no valid settings
        self._settings: Settings | None = None
        self._budget: RequestBudget | None = None
        self.logger = logger
        self.writer = writer
        self.export_timings = ExportTimings()  # what the runs learn of their exports' times, for the polls
        self.carried = CarriedState()  # what the last run left in the state's own key
        self.in_flight = ExportsInFlight()  # exports requested and not yet emitted, kept in the state
        self._source: ExportSource | None = None  # the exports under way, while the streams sync
        self._plans: dict[str, PlannedStream] = {}  # stream name -> its plan in the exports under way
        self._stops: list[threading.Event] = []  # one per pipeline of the run: a signal sets them all
        self._exporters: dict[str, ReportExporter] = {}  # stream name -> its export flow, for the summary
        self._readers: dict[str, RecordReader] = {}  # stream name -> its reader, for the summary

    @property
    def settings(self) -> Settings:
        """The checked settings; raises ConfigError on the first problem."""
        if self._settings is None:
            self._settings = self._read_settings()
            for warning in self._settings.request.warnings:
                self.logger.warning("%s", warning)
        return self._settings

    @property
    def budget(self) -> RequestBudget:
        """The run's API budget, shared by every stream's requests."""
        if self._budget is None:
            self._budget = RequestBudget(self.settings.rate_limit_reserve, self.settings.max_requests_per_minute)
            self._budget.remember(self.carried.recent_requests)  # the last run's, if it just ended: not the others'
        return self._budget

    def restore(self, state: dict[str, t.Any], warn: t.Callable[[str], None]) -> None:
        """Read what the last run left in the state's own key: export times, recent requests, exports in flight."""
        self.carried = CarriedState.read(state, warn)
        self.export_timings.restore(self.carried.export_times)
        self.in_flight = ExportsInFlight(self.carried.in_flight)

    def carry_state(self, state: dict[str, t.Any]) -> None:
        """Put what the next run needs beside the bookmarks of `state`: export times, the last minute's requests,
        exports in flight. Called before each STATE message the tap writes itself."""
        now = time.time()
        recent = (
            [moment for moment in self.carried.recent_requests if moment > now - RATE_WINDOW_SECONDS]
            if self._budget is None
            else self._budget.recent_requests(now)
        )
        state[TAP_STATE_KEY] = carried_state(self.export_timings.learned(), recent, self.in_flight.snapshot())

    def plan_exports(self, plans: list[PlannedStream]) -> ExportPipeline:
        """One pipeline for the windows of these streams, in this order, under the run's limits."""
        settings = self.settings
        pipeline = ExportPipeline(
            max_concurrent=settings.max_concurrent_exports,
            max_disk_bytes=settings.max_disk_mb * 1e6,
            progress=self.logger.info,
            budget=self.budget,
        )
        self._stops.append(pipeline.stop)
        for planned in plans:
            pipeline.add(self._exporter(planned.report, pipeline.stop), list(planned.windows))
        self.in_flight.keep_planned({planned.name: {(w.first, w.last) for w in planned.windows} for planned in plans})
        return pipeline

    def _exporter(self, report: Report, stop: threading.Event) -> ReportExporter:
        settings = self.settings
        client = AircallClient(
            settings.api_url,
            settings.authorization,
            budget=self.budget,
            stop=stop,
            timeout_seconds=settings.request_timeout_seconds,
            download_seconds=settings.download_timeout_seconds,
        )
        exporter = ReportExporter(
            client,
            report,
            lambda window: export_request_body(
                report,
                window.first,
                window.last,
                settings.timezone,
                settings.filters,
                request_filters=settings.request.filters_for(report.stream_name),
                options=settings.request.options_for(report.stream_name),
                export_name=settings.request.export_name,
            ),
            poll=PollPolicy(
                settings.poll_interval_seconds, settings.max_poll_interval_seconds, settings.export_timeout_seconds
            ),
            timings=self.export_timings,
            progress=self.logger.info,
            in_flight=self.in_flight,
        )
        self._exporters[report.stream_name] = exporter
        return exporter

    @contextlib.contextmanager
    def exporting(self, source: ExportSource, plans: list[PlannedStream]) -> t.Iterator[ExportSource]:
        """Serve the files of `plans` from `source` to the streams while they sync."""
        self._source, self._plans = source, {planned.name: planned for planned in plans}
        try:
            yield source
        finally:
            self._source, self._plans = None, {}

    def planned(self, stream: str) -> PlannedStream | None:
        """The plan of `stream` in the exports under way; None when it is synced on its own."""
        return self._plans.get(stream)

    def files(self, planned: PlannedStream) -> t.Iterator[ExportedFile]:
        """The files of each of the stream's windows, in order; exported on their own when the run did not plan them."""
        if self._source is not None and planned.name in self._plans:
            yield from self._source.files(planned.name)
            return
        with self.plan_exports([planned]) as own:  # a stream synced on its own, outside the tap's sync_all
            yield from own.files(planned.name)

    def record_reader(self, report: Report, warn: t.Callable[[str], None]) -> RecordReader:
        """A reader of `report`'s files under the run's settings; its counts go to the summary."""
        settings = self.settings
        reader = RecordReader(
            report, settings.timezone, warn, strict=settings.strict_values, unzip_limit=settings.max_unzipped_mb * 1e6
        )
        self._readers[report.stream_name] = reader
        return reader

    def batch_writer(
        self,
        tap_name: str,
        report: Report,
        properties: list[str],
        batch_config: BatchConfig,
        warn: t.Callable[[str], None],
    ) -> batches.BatchFileWriter:
        """A writer of `report`'s files as batch files of `batch_config`, with the selected `properties`."""
        batches.load_duckdb_meanwhile()
        return batches.BatchFileWriter(
            self.record_reader(report, warn),
            properties,
            batch_config.encoding,
            batch_config.storage,
            batches.file_stem(tap_name, report.stream_name),
            max_disk_bytes=self.settings.max_disk_mb * 1e6,
        )

    def emitted(
        self, log: logging.Logger, stream: str, window: Window, rows: int, seconds: float, batch_files: int = -1
    ) -> None:
        """Count the rows of a window emitted by `stream`, and say how fast they went out."""
        exporter = self._exporters.get(stream)
        if exporter is not None:
            exporter.stats.add(rows=rows)
        where = "" if batch_files < 0 else f" into {batch_files} batch file(s)"
        rate = f" ({rows / seconds:,.0f} rows/s)" if rows and seconds > 0 else ""
        log.info("%s %s: %s rows emitted%s in %.1f s%s", stream, window, f"{rows:,}", where, seconds, rate)

    def interrupt(self) -> None:
        """Stop every export of the run: no request leaves after this, and every wait ends."""
        for stop in self._stops:
            stop_sending(stop)  # from here on, no byte of a request leaves

    def log_summary(self, streams: list[str], pipeline: ExportPipeline) -> None:
        """Log one line per stream: what its exports cost and what they gave; then the run's waits."""
        synced = [(name, self._exporters[name]) for name in streams if name in self._exporters]
        if not synced:
            return
        log = self.logger
        log.info("Run summary:")
        log.info("  %-54s %7s %7s %7s %11s %9s %8s", "stream", "windows", "exports", "retries", "rows", "MB", "wall s")
        for name, exporter in synced:
            stats = exporter.stats
            retries = stats.failed_exports + stats.link_refreshes + exporter.client.retries
            log.info(
                "  %-54s %7d %7d %7d %11s %9.1f %8.1f",
                name,
                stats.windows,
                stats.exports,
                retries,
                f"{stats.rows:,}",
                stats.bytes / 1e6,
                stats.seconds,
            )
        for name, _ in synced:
            unparsed = self._readers[name].unparsed if name in self._readers else {}
            if unparsed:
                counts = ", ".join(f"'{label}' {count:,}" for label, count in sorted(unparsed.items()))
                log.warning("  %s: cells kept as text in _unparsed_values, by column: %s", name, counts)
        log.info(
            "  exports: up to %d in flight at once; downloaded files waiting on disk: %d at most, %.1f MB at most",
            pipeline.peak_in_flight,
            pipeline.peak_files,
            pipeline.peak_disk / 1e6,
        )
        exports = sum(exporter.stats.exports for _, exporter in synced)
        budget = self.budget
        log.info(
            "  API: %d requests for %d exports (%.2f each); lowest X-AircallApi-Remaining %s of %s, reserve %s",
            budget.sent,
            exports,
            budget.sent / max(1, exports),
            "-" if budget.lowest_remaining is None else budget.lowest_remaining,
            budget.limit or "-",
            "-" if budget.kept is None else budget.kept,
        )
        resumed = sum(exporter.stats.resumed for _, exporter in synced)
        log.info(
            "  rate limit seen: %s; requests waited %.0f s on it in all, 429s %d%s",
            budget.describe(),
            budget.waited,
            budget.rate_limited,
            f"; {resumed} export(s) an earlier run requested were polled, not requested again" if resumed else "",
        )
