"""The Aircall Analytics tap: settings and one stream per report."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import types
import typing as t

from singer_sdk import Tap
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import discovery, preflight, redaction
from tap_aircall_analytics.bookmarks import RESYNC_ALL, StateError, check_state, parse_state_file
from tap_aircall_analytics.budget import RequestBudget
from tap_aircall_analytics.client import AircallError, stop_sending
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
        redaction.scrub_loggers("tap_aircall_analytics", *redaction.LIBRARY_LOGGERS, self.logger)
        self._settings: Settings | None = None
        self._budget: RequestBudget | None = None
        self.export_timings = ExportTimings()  # what the run learns of its exports' times, for the polls
        self.export_pipeline: ExportPipeline | None = None  # the exports of the run under way (sync_all)
        self._stop: threading.Event | None = None  # the stop of the latest pipeline: a signal sets it
        super().__init__(*args, **kwargs)

    @property
    def budget(self) -> RequestBudget:
        """The run's API budget, shared by every stream's requests."""
        if self._budget is None:
            settings = self.settings
            self._budget = RequestBudget(settings.rate_limit_reserve, settings.max_requests_per_minute)
        return self._budget

    def plan_exports(self, plan: list[tuple[ReportStream, list[Window]]]) -> ExportPipeline:
        """One pipeline for the windows of these streams, under the run's limits."""
        settings = self.settings
        pipeline = ExportPipeline(
            max_concurrent=settings.max_concurrent_exports,
            max_disk_bytes=settings.max_disk_mb * 1e6,
            progress=self.logger.info,
        )
        self._stop = pipeline.stop
        for stream, windows in plan:
            pipeline.add(stream.exporter(pipeline.stop), windows)
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
        redaction.install_cli()  # before the SDK's first log line
        if state is not None:
            name = getattr(state, "name", "given with --state")
            try:
                text = state.read(MAX_STATE_CHARS + 1)
                if len(text) > MAX_STATE_CHARS:
                    raise StateError(f"the state file {name} is longer than {MAX_STATE_CHARS >> 20} MiB: {RESYNC_ALL}")
                parsed = parse_state_file(name, text)
                if _depth(parsed) > MAX_STATE_DEPTH:
                    raise StateError(
                        f"the state file {name} is nested deeper than {MAX_STATE_DEPTH} levels: {RESYNC_ALL}"
                    )
                check_state(parsed)
            except UnicodeDecodeError:
                message = f"the state file {name} is not UTF-8 text: {RESYNC_ALL}"
                raise SystemExit(f"tap-aircall-analytics: {message}") from None
            except RecursionError:
                message = f"the state file {name} is nested too deep to read: {RESYNC_ALL}"
                raise SystemExit(f"tap-aircall-analytics: {message}") from None
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

    @property
    def settings(self) -> Settings:
        """The checked settings; raises ConfigError on the first problem."""
        if self._settings is None:
            self._settings = Settings.from_config(dict(self.config))
            for warning in self._settings.request.warnings:
                self.logger.warning("%s", warning)
        return self._settings

    @override
    def _handle_termination(self, signum: int, frame: types.FrameType | None) -> None:
        """On SIGTERM or SIGINT: send nothing more, emit the state of the finished windows, exit 128 + signal.

        The exports stop first, so no request leaves after the signal and every wait ends.
        Messages stay whole: a message half-appended to the buffer is dropped (its window
        is not in the state), and a buffer on its way out finishes first.
        """
        if self._stop is not None:
            stop_sending(self._stop)  # from here on, no byte of a request leaves
        if self.writer.flushing:
            self.writer.after_flush = lambda: self._handle_termination(signum, frame)
            return
        self.writer.drop_partial_message()
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
        if self.config.get("discover_columns"):  # the account's own columns (discovery.py)
            reports = discovery.account_reports(self, reports, syncing=self.input_catalog is not None)
        return [ReportStream(self, report) for report in reports]

    @override  # type: ignore[misc]  # final in the SDK: see tap_aircall_analytics/sdk.py
    def run_connection_test(self) -> bool:
        """`--test`: one record of each stream; a known failure stops it in one line, as a sync does."""
        try:
            self.settings  # noqa: B018 - every setting is checked before the first request
            return super().run_connection_test()
        except (ConfigError, AircallError, FileFormatError) as error:
            self.logger.error("%s", error)
            raise SystemExit(redaction.scrub(f"tap-aircall-analytics: {error}")) from None

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


MAX_STATE_CHARS = 16 << 20  # a state is a few KB: one a thousand times larger is not one
MAX_STATE_DEPTH = 32  # a state is nested four or five levels deep


def _depth(value: object) -> int:
    """How deep JSON arrays and objects nest in `value` (read without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_STATE_DEPTH:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _to_stderr(line: str) -> None:
    """Write one line of a report in one write, so no other thread's log line lands inside it."""
    sys.stderr.write(redaction.scrub(line) + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    TapAircallAnalytics.cli()
