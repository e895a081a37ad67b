"""Date windows: which calendar days each export covers, and where a run starts.

Days are calendar days in the account timezone; a window's `first` and `last` days
are both inclusive, as in the export request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics.config.catalogue import Report

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, order=True)
class Window:
    """An inclusive range of calendar days exported as one file."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        """How many days the window covers."""
        return (self.last - self.first).days + 1

    def split(self) -> tuple[Window, Window]:
        """Cut the window into two halves (the first half takes the odd day)."""
        if self.days < 2:
            msg = f"a one-day window ({self}) cannot be split"
            raise ValueError(msg)
        middle = self.first + dt.timedelta(days=(self.days + 1) // 2 - 1)
        return Window(self.first, middle), Window(middle + ONE_DAY, self.last)

    @override
    def __str__(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


def plan_windows(first: dt.date, last: dt.date, window_days: int) -> list[Window]:
    """Cut [first, last] into consecutive windows of at most `window_days` days."""
    windows = []
    step = dt.timedelta(days=window_days - 1)
    while first <= last:
        end = min(first + step, last)
        windows.append(Window(first, end))
        first = end + ONE_DAY
    return windows


@dataclass(frozen=True)
class SyncRange:
    """The days one run exports for one report, and why it starts where it does."""

    first: dt.date
    last: dt.date
    clamped_from: dt.date | None = None  # the start the retention limit moved, if any

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to export (the bookmark is past the end)."""
        return self.first > self.last


def sync_range(
    report: Report,
    *,
    start_date: dt.date,
    end_date: dt.date,
    today: dt.date,
    bookmark: dt.date | None,
    lookback_days: int,
) -> SyncRange:
    """Return the days to export for `report` in this run.

    `bookmark` is the first day not yet done (the day after the last finished window);
    a run resumes `lookback_days` before it, never before `start_date`, and never before
    the report's retention limit.
    """
    first = start_date
    if bookmark is not None:
        first = max(start_date, bookmark - dt.timedelta(days=lookback_days))
    earliest = report.earliest_day(today)
    if earliest is not None and first < earliest:
        return SyncRange(earliest, end_date, clamped_from=first)
    return SyncRange(first, end_date)


def next_bookmark(window: Window, today: dt.date) -> dt.date:
    """Return the bookmark once `window` is fully emitted.

    Days from `today` on are not over, so they are exported but never marked done.
    """
    return min(window.last + ONE_DAY, today)
