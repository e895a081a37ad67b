"""The Aircall Analytics tap: settings and one stream per report."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
import types
import typing as t

from singer_sdk import Tap
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import preflight, redaction
from tap_aircall_analytics.bookmarks import (
    TAP_STATE_KEY,
    CarriedState,
    ExportsInFlight,
    StateError,
    carried_state,
    check_state,
    parse_state_file,
)
from tap_aircall_analytics.budget import RATE_WINDOW_SECONDS, RequestBudget
from tap_aircall_analytics.client import AircallError
from tap_aircall_analytics.exports import ExportPipeline, remove_orphaned_downloads
from tap_aircall_analytics.messages import BufferedMessageWriter
from tap_aircall_analytics.polls import ExportTimings
from tap_aircall_analytics.records import FileFormatError
from tap_aircall_analytics.settings import (
    NUMBER_SETTINGS,
    SETTINGS_SCHEMA,
    ConfigError,
    Settings,
    catalogue,
    credential_texts,
)
from tap_aircall_analytics.streams import ReportStream
from tap_aircall_analytics.windows import Window


class TapAircallAnalytics(Tap):
    """Singer tap for the Aircall Analytics+ export API."""

    name = "tap-aircall-analytics"
    config_jsonschema = SETTINGS_SCHEMA
    message_writer_class = BufferedMessageWriter

    @property
    def writer(self) -> BufferedMessageWriter:
        """The message writer, with the buffered writes the streams use."""
        return t.cast(BufferedMessageWriter, self.message_writer)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        redaction.install()  # before the SDK's first log line
        self._settings: Settings | None = None
        self._budget: RequestBudget | None = None
        self.export_timings = ExportTimings()  # what the runs learn of their exports' times, for the polls
        self.carried = CarriedState()  # what the last run left in the state's own key
        self.in_flight = ExportsInFlight()  # exports requested and not yet emitted, kept in the state
        self.export_pipeline: ExportPipeline | None = None  # the exports of the run under way (sync_all)
        self._stop: threading.Event | None = None  # the stop of the latest pipeline: a signal sets it
        super().__init__(*args, **kwargs)

    @property
    def budget(self) -> RequestBudget:
        """The run's API budget, shared by every stream's requests."""
        if self._budget is None:
            settings = self.settings
            self._budget = RequestBudget(settings.rate_limit_reserve, settings.max_requests_per_minute)
            self._budget.remember(self.carried.recent_requests)  # the last run's, if it just ended: not the others'
        return self._budget

    def carry_state(self) -> None:
        """Put what the next run needs beside the bookmarks: export times, the last minute's requests, exports
        in flight. Called before each STATE message the tap writes itself."""
        state = t.cast("dict[str, t.Any]", self.state)  # the SDK's type knows only "bookmarks"
        now = time.time()
        recent = (
            [moment for moment in self.carried.recent_requests if moment > now - RATE_WINDOW_SECONDS]
            if self._budget is None
            else self._budget.recent_requests(now)
        )
        state[TAP_STATE_KEY] = carried_state(self.export_timings.learned(), recent, self.in_flight.snapshot())

    def plan_exports(self, plan: list[tuple[ReportStream, list[Window]]]) -> ExportPipeline:
        """One pipeline for the windows of these streams, under the run's limits."""
        settings = self.settings
        pipeline = ExportPipeline(
            max_concurrent=settings.max_concurrent_exports,
            max_disk_bytes=settings.max_disk_mb * 1e6,
            progress=self.logger.info,
            budget=self.budget,
        )
        self._stop = pipeline.stop
        for stream, windows in plan:
            pipeline.add(stream.exporter(pipeline.stop), windows)
        self.in_flight.keep_planned({stream.name: {(w.first, w.last) for w in windows} for stream, windows in plan})
        return pipeline

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Read number settings given as text (environment variables, Meltano) as numbers first.

        The credentials are known from here on: no message can quote them.
        """
        redaction.keep_secret(*credential_texts(self._config))
        for name in NUMBER_SETTINGS:
            value = self._config.get(name)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):  # left as text, validation then names the setting
                    self._config[name] = float(value)
        return super()._validate_config(raise_errors=raise_errors)

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Run the command line; a state file that cannot be read stops it in one line first."""
        if state is not None:
            text = state.read()
            try:
                check_state(parse_state_file(getattr(state, "name", "given with --state"), text))
            except StateError as error:
                raise SystemExit(f"tap-aircall-analytics: {error}") from None
            state = io.StringIO(text)
        super().invoke(about=about, about_format=about_format, config=config, state=state, catalog=catalog)

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Check the state whole before the SDK reads it: a state of the wrong shape, or a bookmark
        that is not a date, stops the run in one line before any request."""
        try:
            check_state(state)
        except StateError as error:
            raise SystemExit(f"tap-aircall-analytics: {error}") from None
        super().load_state(state)
        self.carried = CarriedState.read(state, self.logger.warning)
        self.export_timings.restore(self.carried.export_times)
        self.in_flight = ExportsInFlight(self.carried.in_flight)

    @property
    def settings(self) -> Settings:
        """The checked settings; raises ConfigError on the first problem."""
        if self._settings is None:
            self._settings = Settings.from_config(dict(self.config))
        return self._settings

    @override
    def _handle_termination(self, signum: int, frame: types.FrameType | None) -> None:
        """On SIGTERM or SIGINT: send nothing more, emit the state of the finished windows, exit 128 + signal.

        The exports stop first, so no request leaves after the signal and every wait ends.
        Messages stay whole: a message half-appended to the buffer is dropped (its window
        is not in the state), and a buffer on its way out finishes first.
        """
        if self._stop is not None:
            self._stop.set()
        if self.writer.flushing:
            self.writer.after_flush = lambda: self._handle_termination(signum, frame)
            return
        self.writer.drop_partial_message()
        self.carry_state()
        self.state_writer.write_state(self.state)
        self.logger.warning("Stopped by signal %d: the state covers the windows finished so far", signum)
        raise SystemExit(128 + signum)

    @override
    def discover_streams(self) -> list[ReportStream]:
        """One stream per report: the catalogue's, then `extra_reports`, with `column_types` applied."""
        try:
            reports = catalogue(dict(self.config))
        except ConfigError as error:
            raise SystemExit(f"tap-aircall-analytics: {error}") from None
        return [ReportStream(self, report) for report in reports]

    @override  # type: ignore[misc]  # final in the SDK: see tap_aircall_analytics/sdk.py
    def sync_all(self) -> None:
        """Sync the selected streams; stop with one clear line on a known failure."""
        try:
            settings = self.settings  # every setting is checked before the first request
            remove_orphaned_downloads()
            selected = [
                stream for stream in self.streams.values() if isinstance(stream, ReportStream) and stream.selected
            ]
            if settings.plan_only:
                preflight.plan(settings, selected, preflight.read_rate_limit(settings), _to_stderr)
                return
            if settings.check_schema:
                sample = preflight.sample_window(settings)
                with self.plan_exports([(stream, [sample]) for stream in selected]) as pipeline:
                    if preflight.check_schema(settings, selected, pipeline, _to_stderr):
                        raise SystemExit(1)
                return
            pipeline = self.plan_exports([(stream, stream.planned_windows()) for stream in selected])
            try:
                with pipeline as self.export_pipeline:
                    super().sync_all()
            except (AircallError, FileFormatError):
                if any(self.in_flight.snapshot().values()):  # polled by the next run, not requested again
                    self.carry_state()
                    self.state_writer.write_state(self.state)
                raise
            finally:
                self.export_pipeline = None
                self._log_summary(selected, pipeline)
        except (ConfigError, AircallError, FileFormatError) as error:
            self.logger.error("%s", error)
            raise SystemExit(redaction.scrub(f"tap-aircall-analytics: {error}")) from None

    def _log_summary(self, streams: list[ReportStream], pipeline: ExportPipeline) -> None:
        """Log one line per stream: what its exports cost and what they gave; then the run's waits."""
        synced = [(stream, stream.export_stats) for stream in streams if stream.export_stats is not None]
        if not synced:
            return
        self.logger.info("Run summary:")
        self.logger.info(
            "  %-54s %7s %7s %7s %11s %9s %8s", "stream", "windows", "exports", "retries", "rows", "MB", "wall s"
        )
        for stream, stats in synced:
            retries = stats.failed_exports + stats.link_refreshes + (stream.client.retries if stream.client else 0)
            self.logger.info(
                "  %-54s %7d %7d %7d %11s %9.1f %8.1f",
                stream.name,
                stats.windows,
                stats.exports,
                retries,
                f"{stats.rows:,}",
                stats.bytes / 1e6,
                stats.seconds,
            )
        for stream, _ in synced:
            unparsed = stream.record_reader.unparsed if stream.record_reader else {}
            if unparsed:
                counts = ", ".join(f"'{label}' {count:,}" for label, count in sorted(unparsed.items()))
                self.logger.warning("  %s: cells kept as text in _unparsed_values, by column: %s", stream.name, counts)
        self.logger.info(
            "  exports: up to %d in flight at once; downloaded files waiting on disk: %d at most, %.1f MB at most",
            pipeline.peak_in_flight,
            pipeline.peak_files,
            pipeline.peak_disk / 1e6,
        )
        exports = sum(stats.exports for _, stats in synced)
        budget = self.budget
        self.logger.info(
            "  API: %d requests for %d exports (%.2f each); lowest X-AircallApi-Remaining %s of %s, reserve %s",
            budget.sent,
            exports,
            budget.sent / max(1, exports),
            "-" if budget.lowest_remaining is None else budget.lowest_remaining,
            budget.limit or "-",
            "-" if budget.kept is None else budget.kept,
        )
        resumed = sum(stats.resumed for _, stats in synced)
        self.logger.info(
            "  rate limit seen: %s; requests waited %.0f s on it in all, 429s %d%s",
            budget.describe(),
            budget.waited,
            budget.rate_limited,
            f"; {resumed} export(s) an earlier run requested were polled, not requested again" if resumed else "",
        )


def _to_stderr(line: str) -> None:
    print(redaction.scrub(line), file=sys.stderr, flush=True)


if __name__ == "__main__":
    TapAircallAnalytics.cli()
