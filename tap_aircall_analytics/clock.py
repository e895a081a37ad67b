"""Today: the one place the tap and the simulator learn the date.

Tests set `AIRCALL_ANALYTICS_TODAY=YYYY-MM-DD` to run everything as of another day. It is an
environment variable rather than a setting so that it reaches a tap that Meltano starts in a
subprocess, and the simulator, alike. It is a testing hook, not a user setting: the tap reads
Aircall's data for the days Aircall holds, and only the real date says which those are.
"""

from __future__ import annotations

import datetime as dt
import os

TODAY_VARIABLE = "AIRCALL_ANALYTICS_TODAY"


class ClockError(ValueError):
    """The injected today is not a date."""


def today(zone: dt.tzinfo) -> dt.date:
    """Today in `zone`: the injected date when one is set (the same in every zone), else the real one."""
    injected = os.environ.get(TODAY_VARIABLE)
    if not injected:
        return dt.datetime.now(zone).date()
    try:
        return dt.date.fromisoformat(injected)
    except ValueError:
        raise ClockError(f"{TODAY_VARIABLE} must be a date as YYYY-MM-DD, not {injected!r}") from None
