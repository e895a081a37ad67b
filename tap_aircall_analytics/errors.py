"""The errors that end a run in one line, and that line.

Each is raised where the problem is found (the settings, the API, a file, the state, the
clock); the tap stops on any of them with `tap-aircall-analytics: <what to fix>`, its
credentials scrubbed, and no traceback.
"""

from __future__ import annotations

from tap_aircall_analytics import redaction
from tap_aircall_analytics.api.client import AircallError
from tap_aircall_analytics.clock import ClockError, Stopped
from tap_aircall_analytics.config.settings import ConfigError
from tap_aircall_analytics.files.records import FileFormatError
from tap_aircall_analytics.planning.bookmarks import StateError

#: What stops a sync in one line: bad settings, the API's refusals, an unreadable export file, a stop.
RUN_ERRORS = (ConfigError, AircallError, FileFormatError, Stopped)

__all__ = ["RUN_ERRORS", "AircallError", "ClockError", "ConfigError", "FileFormatError", "StateError", "stop"]


def stop(error: BaseException | str) -> SystemExit:
    """The exit of the tap on `error`: one line naming the tap, with no credential in it."""
    return SystemExit(redaction.scrub(f"tap-aircall-analytics: {error}"))
