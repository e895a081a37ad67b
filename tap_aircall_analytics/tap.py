"""The Aircall Analytics tap: settings, one stream per report, the run they share."""

from __future__ import annotations

import contextlib
import io
import sys
import types
import typing as t

from singer_sdk import Tap
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import errors, redaction
from tap_aircall_analytics.config.settings import (
    NUMBER_SETTINGS,
    SETTINGS_SCHEMA,
    Settings,
    catalogue,
    credential_texts,
)
from tap_aircall_analytics.emit.messages import BufferedMessageWriter
from tap_aircall_analytics.exports.pipeline import remove_orphaned_downloads
from tap_aircall_analytics.planning.bookmarks import RESYNC_ALL, check_state, parse_state_file
from tap_aircall_analytics.preflight import discovery, schema_check
from tap_aircall_analytics.preflight import plan as plan_preflight
from tap_aircall_analytics.run import Run
from tap_aircall_analytics.streams import ReportStream


class TapAircallAnalytics(Tap):
    """Singer tap for the Aircall Analytics+ export API."""

    name = "tap-aircall-analytics"
    config_jsonschema = SETTINGS_SCHEMA
    message_writer_class = BufferedMessageWriter

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        redaction.scrub_loggers("tap_aircall_analytics", *redaction.LIBRARY_LOGGERS, self.logger)
        writer = kwargs.pop("message_writer", None) or BufferedMessageWriter()
        #: This run's services (settings, budget, exports, writer, summary), handed to every stream.
        self.run = Run(lambda: Settings.from_config(dict(self.config)), self.logger, writer)
        super().__init__(*args, message_writer=writer, **kwargs)

    @property
    def settings(self) -> Settings:
        """The checked settings; raises ConfigError on the first problem."""
        return self.run.settings

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
                    raise errors.StateError(
                        f"the state file {name} is longer than {MAX_STATE_CHARS >> 20} MiB: {RESYNC_ALL}"
                    )
                parsed = parse_state_file(name, text)
                if _depth(parsed) > MAX_STATE_DEPTH:
                    raise errors.StateError(
                        f"the state file {name} is nested deeper than {MAX_STATE_DEPTH} levels: {RESYNC_ALL}"
                    )
                check_state(parsed)
            except UnicodeDecodeError:
                raise errors.stop(f"the state file {name} is not UTF-8 text: {RESYNC_ALL}") from None
            except RecursionError:
                raise errors.stop(f"the state file {name} is nested too deep to read: {RESYNC_ALL}") from None
            except errors.StateError as error:
                raise errors.stop(error) from None
            state = io.StringIO(text)
        super().invoke(about=about, about_format=about_format, config=config, state=state, catalog=catalog)

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Check the state whole before the SDK reads it: a state of the wrong shape, or a bookmark
        that is not a date, stops the run in one line before any request."""
        try:
            check_state(state)
        except errors.StateError as error:
            raise errors.stop(error) from None
        super().load_state(state)
        self.run.restore(state, self.logger.warning)

    @override
    def _handle_termination(self, signum: int, frame: types.FrameType | None) -> None:
        """On SIGTERM or SIGINT: send nothing more, emit the state of the finished windows, exit 128 + signal.

        The exports stop first, so no request leaves after the signal and every wait ends.
        Messages stay whole: a message half-appended to the buffer is dropped (its window
        is not in the state), and a buffer on its way out finishes first.
        """
        self.run.interrupt()
        writer = self.run.writer
        if writer.flushing:
            writer.after_flush = lambda: self._handle_termination(signum, frame)
            return
        writer.drop_partial_message()
        self.run.carry_state(t.cast("dict[str, t.Any]", self.state))
        self.state_writer.write_state(self.state)
        self.logger.warning("Stopped by signal %d: the state covers the windows finished so far", signum)
        raise SystemExit(128 + signum)

    @override
    def discover_streams(self) -> list[ReportStream]:
        """One stream per report: the catalogue's, then `extra_reports`, with `column_types` applied."""
        try:
            reports = catalogue(dict(self.config))
        except errors.ConfigError as error:
            raise errors.stop(error) from None
        if self.config.get("discover_columns"):  # the account's own columns (preflight/discovery.py)
            reports = discovery.account_reports(
                self.run, dict(self.config), reports, syncing=self.input_catalog is not None
            )
        return [ReportStream(self, self.run, report) for report in reports]

    @override  # type: ignore[misc]  # final in the SDK: see tap_aircall_analytics/sdk.py
    def run_connection_test(self) -> bool:
        """`--test`: one record of each stream; a known failure stops it in one line, as a sync does."""
        try:
            self.settings  # noqa: B018 - every setting is checked before the first request
            return super().run_connection_test()
        except errors.RUN_ERRORS as error:
            self.logger.error("%s", error)
            raise errors.stop(error) from None

    @override  # type: ignore[misc]  # final in the SDK: see tap_aircall_analytics/sdk.py
    def sync_all(self) -> None:
        """Sync the selected streams; stop with one clear line on a known failure."""
        run = self.run
        try:
            settings = run.settings  # every setting is checked before the first request
            remove_orphaned_downloads()
            selected = [
                stream for stream in self.streams.values() if isinstance(stream, ReportStream) and stream.selected
            ]
            if settings.check_schema and not settings.plan_only:
                samples = schema_check.sample_plans(settings, [(stream.name, stream.report) for stream in selected])
                with run.plan_exports(samples) as pipeline:
                    if schema_check.check_schema(settings, samples, pipeline, _to_stderr):
                        raise SystemExit(1)
                return
            plans = [stream.plan() for stream in selected]
            if settings.plan_only:
                plan_preflight.write_plan(settings, plans, plan_preflight.read_rate_limit(settings), _to_stderr)
                return
            pipeline = run.plan_exports(plans)
            try:
                with pipeline, run.exporting(pipeline, plans):
                    super().sync_all()
            except errors.RUN_ERRORS:
                if any(run.in_flight.snapshot().values()):  # polled by the next run, not requested again
                    run.carry_state(t.cast("dict[str, t.Any]", self.state))
                    self.state_writer.write_state(self.state)
                raise
            finally:
                run.log_summary([planned.name for planned in plans], pipeline)
        except errors.RUN_ERRORS as error:
            self.logger.error("%s", error)
            raise errors.stop(error) from None


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
