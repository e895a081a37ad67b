"""The Aircall Analytics tap: settings and one stream per report."""

from __future__ import annotations

import sys
import types
import typing as t

from singer_sdk import Tap

from tap_aircall_analytics.client import AircallError, RateLimiter
from tap_aircall_analytics.exports import remove_orphaned_downloads
from tap_aircall_analytics.messages import BufferedMessageWriter
from tap_aircall_analytics.records import FileFormatError
from tap_aircall_analytics.reports import REPORTS
from tap_aircall_analytics.settings import NUMBER_SETTINGS, SETTINGS_SCHEMA, ConfigError, Settings
from tap_aircall_analytics.streams import ReportStream

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override


class TapAircallAnalytics(Tap):
    """Singer tap for the Aircall Analytics+ export API."""

    name = "tap-aircall-analytics"
    config_jsonschema = SETTINGS_SCHEMA
    message_writer_class = BufferedMessageWriter

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._settings: Settings | None = None
        self.rate_limiter = RateLimiter()
        super().__init__(*args, **kwargs)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Read number settings given as text (environment variables, Meltano) as numbers first."""
        for name in NUMBER_SETTINGS:
            value = self._config.get(name)
            if isinstance(value, str):
                try:
                    self._config[name] = float(value)
                except ValueError:
                    pass  # left as text, so validation names the setting
        return super()._validate_config(raise_errors=raise_errors)

    @property
    def settings(self) -> Settings:
        """The checked settings; raises ConfigError on the first problem."""
        if self._settings is None:
            self._settings = Settings.from_config(dict(self.config))
        return self._settings

    @override
    def _handle_termination(self, signum: int, frame: types.FrameType | None) -> None:
        """On SIGTERM or SIGINT: emit the state of the finished windows, then exit 128 + signal."""
        self._state_writer.write_state(self.state)
        self.logger.warning("Stopped by signal %d: the state covers the windows finished so far", signum)
        raise SystemExit(128 + signum)

    @override
    def discover_streams(self) -> list[ReportStream]:
        return [ReportStream(self, report) for report in REPORTS]

    @override
    def sync_all(self) -> None:
        """Sync the selected streams; stop with one clear line on a known failure."""
        try:
            _ = self.settings  # every setting is checked before the first request
            remove_orphaned_downloads()
            super().sync_all()
        except (ConfigError, AircallError, FileFormatError) as error:
            self.logger.error("%s", error)
            raise SystemExit(f"tap-aircall-analytics: {error}") from None


if __name__ == "__main__":
    TapAircallAnalytics.cli()
