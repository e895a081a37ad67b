"""The plan of a run, written for a person: which windows each stream would export, and the API
requests and time that takes under the company's rate limit. Run instead of a sync by `plan_only`;
nothing is exported. Written to stderr (stdout stays for Singer messages).
"""

from __future__ import annotations

import textwrap
import typing as t
from dataclasses import dataclass

from tap_aircall_analytics.api.budget import DEFAULT_RESERVE_FRACTION
from tap_aircall_analytics.api.client import AircallClient, AircallError
from tap_aircall_analytics.api.polls import TARGET_MISS_SHARE

if t.TYPE_CHECKING:
    from tap_aircall_analytics.config.settings import Settings
    from tap_aircall_analytics.planning.plan import PlannedStream

#: An export costs its request and its polls: the first poll near its expected completion, and
#: one more for the share of first polls that miss, and so on (see polls.py).
EXPECTED_REQUESTS_PER_EXPORT = 1 + 1 / (1 - TARGET_MISS_SHARE)
ASSUMED_RATE_LIMIT = 60  # requests a minute when the API does not say: the lower of the figures Aircall's pages give


@dataclass(frozen=True)
class RateLimit:
    """The company's rate limit as a plan reads it: from the API's headers, or assumed."""

    per_minute: int  # X-AircallApi-Limit, or ASSUMED_RATE_LIMIT
    reported: bool  # the API said so
    note: str = ""  # why it is assumed

    def tap_share(self, settings: Settings) -> int:
        """Requests a minute the tap takes: the limit less the reserve, within max_requests_per_minute."""
        reserve = self.reserve(settings)
        share = max(1, self.per_minute - reserve)
        return min(share, settings.max_requests_per_minute or share)

    def reserve(self, settings: Settings) -> int:
        """The requests a minute left to the company's other integrations."""
        if settings.rate_limit_reserve is not None:
            return settings.rate_limit_reserve
        return self.per_minute // DEFAULT_RESERVE_FRACTION


PROBE_TIMEOUT_SECONDS = 10.0  # a plan does not wait long for the API: without an answer it assumes the limit


def read_rate_limit(settings: Settings) -> RateLimit:
    """The company's rate limit, from one request's answer; assumed when the API does not tell."""
    client = AircallClient(
        settings.api_url,
        settings.authorization,
        timeout_seconds=min(settings.request_timeout_seconds, PROBE_TIMEOUT_SECONDS),
    )
    try:
        limit = client.read_rate_limit()
    except AircallError as error:
        return RateLimit(ASSUMED_RATE_LIMIT, reported=False, note=str(error))
    if limit is None:
        return RateLimit(ASSUMED_RATE_LIMIT, reported=False, note="the API's answer gave no X-AircallApi-Limit")
    return RateLimit(limit, reported=True)


def write_plan(
    settings: Settings, streams: list[PlannedStream], limit: RateLimit, write: t.Callable[[str], None]
) -> None:
    """Write which windows each stream would export, the API requests that takes, and their time."""
    if not streams:
        write("No stream is selected: nothing to plan.")
        return
    share = limit.tap_share(settings)
    write(
        f"Plan (nothing is exported): timezone {settings.timezone}, today {settings.today()}, "
        f"lookback_days {settings.lookback_days}"
    )
    write(f"{'stream':<54}{'from':<12}{'to':<12}{'days':>5}{'exports':>8}{'requests':>9}{'minutes':>8}  bookmark")
    total = 0
    for stream in streams:
        windows = stream.windows
        bookmark = stream.bookmark
        first = windows[0].first.isoformat() if windows else "-"
        last = windows[-1].last.isoformat() if windows else "-"
        total += len(windows)
        requests = len(windows) * EXPECTED_REQUESTS_PER_EXPORT
        write(
            f"{stream.name:<54}{first:<12}{last:<12}{stream.window_days:>5}"
            f"{len(windows):>8}{requests:>9.0f}{requests / share:>8.1f}  {bookmark or 'none (first run)'}"
        )
        if windows:
            write(
                textwrap.fill(", ".join(map(str, windows)), width=110, initial_indent="    ", subsequent_indent="    ")
            )
    requests = total * EXPECTED_REQUESTS_PER_EXPORT
    write(
        f"Total: {total} exports, about {requests:.0f} API requests (a request and about "
        f"{EXPECTED_REQUESTS_PER_EXPORT - 1:.1f} polls per export); downloads go to the storage host and do not count."
    )
    source = "X-AircallApi-Limit" if limit.reported else f"assumed: {limit.note}"
    capped = " (max_requests_per_minute)" if share == settings.max_requests_per_minute else ""
    write(
        f"Budget: the company's rate limit is {limit.per_minute} requests a minute ({source}), shared by all its "
        f"integrations; the tap leaves {limit.reserve(settings)} of them to the others (rate_limit_reserve) and "
        f"takes at most {share} a minute{capped}: the requests take about {requests / share:.0f} min of it."
    )
    concurrent = settings.max_concurrent_exports
    write(
        f"Run-wide: up to {concurrent} exports in flight at once (max_concurrent_exports), requested in the "
        f"order above: the run waits for about {-(-total // concurrent)} export(s) in a row; up to "
        f"{settings.max_disk_mb:g} MB of downloaded files wait on disk."
    )
