"""The plan of one stream for one run: which windows it exports, and how its bookmark moves.

Pure: a report, the settings, the bookmark the state holds and today give the windows; nothing
is requested and no state is written. The run, the preflight tools and the stream all read it.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from tap_aircall_analytics.planning.windows import Window, next_bookmark, plan_windows, sync_range

if t.TYPE_CHECKING:
    from tap_aircall_analytics.config.catalogue import Report
    from tap_aircall_analytics.config.settings import Settings


@dataclass(frozen=True)
class PlannedStream:
    """One stream's windows for this run, planned as of `today` (the account's today)."""

    name: str
    report: Report
    today: dt.date
    stored_bookmark: dt.date | None  # the first day not yet exported, as the state holds it; None on a first run
    windows: tuple[Window, ...]
    window_days: int

    @property
    def bookmark(self) -> dt.date | None:
        """The bookmark the run starts from: the stored one, never after today.

        A bookmark after today (a clock that ran ahead, a state edited by hand) is read as
        today, so the stream syncs again instead of freezing; `plan_stream` says so.
        """
        return None if self.stored_bookmark is None else min(self.stored_bookmark, self.today)

    def bookmark_after(self, window: Window, bookmark: dt.date | None) -> dt.date:
        """The bookmark once `window` is emitted: it never moves back, nor past today."""
        done = next_bookmark(window, self.today)
        return done if bookmark is None or done > bookmark else bookmark


def plan_stream(
    name: str,
    report: Report,
    settings: Settings,
    stored_bookmark: dt.date | None,
    warn: t.Callable[[str], None],
) -> PlannedStream:
    """The windows `name` exports in this run, from settings, state, lookback and retention."""
    today = settings.today()
    if stored_bookmark is not None and stored_bookmark > today:
        warn(
            f"{name}: the bookmark {stored_bookmark} is after today ({today}): read as today, so the stream syncs again"
        )
    bookmark = None if stored_bookmark is None else min(stored_bookmark, today)
    days = sync_range(
        report,
        start_date=settings.start_date,
        end_date=settings.last_day(),
        today=today,
        bookmark=bookmark,
        lookback_days=settings.lookback_days,
    )
    if days.clamped_from is not None:
        retention = f"{report.api_name} keeps {report.retention_text} of data"
        warn(f"{retention}: starting at {days.first} instead of {days.clamped_from}")
    window_days = settings.window_days_for(report)
    windows = tuple(plan_windows(days.first, days.last, window_days))
    return PlannedStream(name, report, today, stored_bookmark, windows, window_days)
