"""The run's time: today's date, the time now, and waits that a stop ends at once.

- `today(zone)` is the one place the tap and the simulator learn the date. Tests set
  `AIRCALL_ANALYTICS_TODAY=YYYY-MM-DD` to run everything as of another day. It is an
  environment variable rather than a setting so that it reaches a tap that Meltano starts in a
  subprocess, and the simulator, alike. It is a testing hook, not a user setting: the tap reads
  Aircall's data for the days Aircall holds, and only the real date says which those are.
- A `Clock` tells the time (`now`) and waits (`sleep`). The budget, the polls and the retries
  read the time and wait through one, never through `time` itself: a run's `RunClock` is the
  real time, and its every wait ends with `Stopped` the moment the run stops; tests use a
  `VirtualClock`, whose waits move its time on at once.

A duration measured for a log line (a download's seconds) is a stopwatch, not the clock:
those use `time.monotonic()`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import typing as t
from dataclasses import dataclass

TODAY_VARIABLE = "AIRCALL_ANALYTICS_TODAY"


class ClockError(ValueError):
    """The injected today is not a date."""


class Stopped(Exception):
    """The run is stopping (a signal, or a window that failed for good): nothing more is sent, no wait goes on."""


def today(zone: dt.tzinfo) -> dt.date:
    """Today in `zone`: the injected date when one is set (the same in every zone), else the real one."""
    injected = os.environ.get(TODAY_VARIABLE)
    if not injected:
        return dt.datetime.now(zone).date()
    try:
        return dt.date.fromisoformat(injected)
    except ValueError:
        raise ClockError(f"{TODAY_VARIABLE} must be a date as YYYY-MM-DD, not {injected!r}") from None


class Clock(t.Protocol):
    """Where the budget, the polls and the retries read the time and wait."""

    def now(self) -> float:
        """UNIX time, in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`; raise an exception at once if the run stops meanwhile."""
        ...


@dataclass(frozen=True)
class RunClock:
    """The real clock of a run: its waits end at once when `stop` is set.

    Every wait of a run (rate limits, retry backoff, polls) goes through `sleep`, and every
    request is preceded by `sleep(0)`: once the run is stopped, no request is sent.
    """

    stop: threading.Event

    def now(self) -> float:
        """UNIX time, in seconds."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Wait up to `seconds`, or raise Stopped as soon as the run stops (at once if it has)."""
        if self.stop.wait(max(0.0, seconds)):
            raise Stopped("the run was stopped")


class VirtualClock:
    """Virtual time, for tests and simulations: a sleep moves it on at once."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.time = start
        self.sleeps = 0  # how many waits there were

    def now(self) -> float:
        """The virtual UNIX time, in seconds."""
        return self.time

    def sleep(self, seconds: float) -> None:
        """Move the time on by `seconds`."""
        self.sleeps += 1
        self.time += seconds
