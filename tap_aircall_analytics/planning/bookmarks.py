"""The state a run starts from: checked whole before any request, bookmarks read as dates.

A state the tap did not write (a file cut short, an orchestrator's wrapper passed instead
of the state itself, a bookmark edited by hand) stops the run in one line that names the
stream and what to do, before anything is requested. A bookmark after today is no error
but is read as today (see `ReportStream.bookmark`): a clock that ran ahead, or a state
written by hand, must not freeze a stream for ever.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import typing as t
from dataclasses import dataclass, field

REPLICATION_KEY_VALUE = "replication_key_value"
#: What to do about a stream's state that cannot be read: that stream alone starts again.
RESYNC_STREAM = "remove {stream} from the state's bookmarks to sync it again from start_date"
#: What to do about a state that cannot be read at all.
RESYNC_ALL = "pass the value of the last STATE message the tap wrote, or leave --state out to start from start_date"


class StateError(ValueError):
    """The state cannot be read; the message names the stream when there is one, and what to do."""


def parse_state_file(name: str, text: str) -> t.Any:
    """The JSON of a state file; StateError when it is empty or not JSON."""
    if not text.strip():
        raise StateError(f"the state file {name} is empty: {RESYNC_ALL}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StateError(
            f"the state file {name} is not JSON ({error.msg} at line {error.lineno}, column {error.colno}): "
            f"{RESYNC_ALL}"
        ) from None


def check_state(state: object) -> None:
    """Check that `state` has the shape of a Singer state and that every bookmark is a date."""
    if state is None:
        return
    if not isinstance(state, dict):
        raise StateError(f'the state is a JSON {_kind(state)}, not an object like {{"bookmarks": ...}}: {RESYNC_ALL}')
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise StateError(f"the state's bookmarks are a JSON {_kind(bookmarks)}, not an object: {RESYNC_ALL}")
    for stream, stream_state in bookmarks.items():
        resync = RESYNC_STREAM.format(stream=stream)
        if not isinstance(stream_state, dict):
            raise StateError(f"the state of {stream} is a JSON {_kind(stream_state)}, not an object: {resync}")
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list) or not all(isinstance(part, dict) for part in partitions):
            raise StateError(f"the state of {stream} has partitions that are not a list of objects: {resync}")
        markers = stream_state.get("progress_markers", {})
        if not isinstance(markers, dict):
            raise StateError(f"the state of {stream} has progress_markers that are not an object: {resync}")
        stored_bookmark(stream, stream_state)


def stored_bookmark(stream: str, stream_state: dict) -> dt.date | None:
    """The day a stream's state says is the first not yet exported (None when there is none)."""
    value = stream_state.get(REPLICATION_KEY_VALUE)
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        return dt.date.fromisoformat(value[:10])  # a date, or the date of a timestamp
    except ValueError:
        shown = json.dumps(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise StateError(
            f"the bookmark of {stream} is {shown}, not a date (YYYY-MM-DD): correct it, or "
            f"{RESYNC_STREAM.format(stream=stream)}"
        ) from None


def _kind(value: object) -> str:
    """The JSON name of a value's type."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


#: The tap's own key in the state, beside the SDK's `bookmarks`: what one run leaves the next that
#: is not a bookmark. It is small (a number per report, the last minute's requests, the exports
#: in flight) and optional: a state without it (an older release's) loads as before, and one the
#: tap cannot read is set aside with a warning, never an error (it only saves requests).
TAP_STATE_KEY = "tap_aircall_analytics"
EXPORT_TIMES = "export_ms_per_day"  # {report: milliseconds per (day + FIXED_COST_DAYS)}, learned by polls.py
RECENT_REQUESTS = "recent_requests"  # {"since": UNIX seconds, "tenths": [tenths of a second after it]}
IN_FLIGHT = "exports_in_flight"  # {stream: [[first day, last day, export ID, UNIX second requested]]}
# Whole numbers only: some targets read a STATE's numbers as decimals, then cannot write them back as JSON.


@dataclass(frozen=True)
class PendingExport:
    """An export requested for a window and not yet emitted: the next run polls it instead of asking again."""

    first: dt.date
    last: dt.date
    export_id: str
    requested_at: float


@dataclass
class CarriedState:
    """What a run reads of the tap's own key: learned export times, recent requests, exports in flight."""

    export_times: dict[str, float] = field(default_factory=dict)
    recent_requests: list[float] = field(default_factory=list)
    in_flight: dict[str, list[PendingExport]] = field(default_factory=dict)

    @classmethod
    def read(cls, state: object, warn: t.Callable[[str], None]) -> CarriedState:
        """The tap's key of `state`; empty when there is none, set aside (with a warning) when it cannot be read."""
        own = state.get(TAP_STATE_KEY) if isinstance(state, dict) else None
        if own is None:
            return cls()
        try:
            if not isinstance(own, dict):
                raise TypeError
            times = own.get(EXPORT_TIMES, {})
            export_times = {str(report): int(factor) / 1000 for report, factor in times.items()}
            if not all(math.isfinite(factor) and factor > 0 for factor in export_times.values()):
                raise ValueError
            recent = own.get(RECENT_REQUESTS) or {"since": 0, "tenths": []}
            since = float(recent["since"])
            requests = [since + int(tenths) / 10 for tenths in recent["tenths"]]
            in_flight = {
                str(stream): [
                    PendingExport(dt.date.fromisoformat(first), dt.date.fromisoformat(last), str(export_id), int(at))
                    for first, last, export_id, at in entries
                ]
                for stream, entries in own.get(IN_FLIGHT, {}).items()
            }
        except (TypeError, ValueError, KeyError, AttributeError):
            warn(
                f"the state's {TAP_STATE_KEY} cannot be read: set aside (export times are learned again, "
                "exports in flight requested again)"
            )
            return cls()
        return cls(export_times, requests, in_flight)


def carried_state(
    export_times: dict[str, float], recent_requests: list[float], in_flight: dict[str, list[PendingExport]]
) -> dict[str, t.Any]:
    """The tap's key as the state holds it."""
    since = int(min(recent_requests, default=0))
    return {
        EXPORT_TIMES: {report: round(factor * 1000) for report, factor in sorted(export_times.items())},
        RECENT_REQUESTS: {
            "since": since,
            "tenths": [round((moment - since) * 10) for moment in sorted(recent_requests)],
        },
        IN_FLIGHT: {
            stream: [[str(e.first), str(e.last), e.export_id, round(e.requested_at)] for e in entries]
            for stream, entries in sorted(in_flight.items())
            if entries
        },
    }


class ExportsInFlight:
    """The run's exports requested and not yet emitted, by stream and window; shared by every thread.

    Those the state carried are handed to the first export of their window (`resume`); those
    of windows the run no longer plans are dropped; those of windows emitted are dropped at
    their checkpoint.
    """

    def __init__(self, carried: dict[str, list[PendingExport]] | None = None) -> None:
        self._lock = threading.Lock()
        self._exports: dict[str, dict[tuple[dt.date, dt.date], PendingExport]] = {
            stream: {(e.first, e.last): e for e in entries} for stream, entries in (carried or {}).items()
        }
        self._resumable = {(stream, key) for stream, entries in self._exports.items() for key in entries}

    def keep_planned(self, planned: dict[str, set[tuple[dt.date, dt.date]]]) -> None:
        """Drop the carried exports of windows these streams' plans no longer hold (their days are done, or
        planned otherwise); other streams' are kept for the run that plans them."""
        with self._lock:
            for stream, entries in self._exports.items():
                if stream not in planned:
                    continue
                for key in [key for key in entries if key not in planned[stream]]:
                    del entries[key]
                    self._resumable.discard((stream, key))

    def resume(self, stream: str, first: dt.date, last: dt.date) -> PendingExport | None:
        """The export a previous run requested for this window, once (None: request it)."""
        with self._lock:
            if (stream, (first, last)) not in self._resumable:
                return None
            self._resumable.discard((stream, (first, last)))
            return self._exports.get(stream, {}).get((first, last))

    def requested(self, stream: str, export: PendingExport) -> None:
        """An export was requested for a window (replacing any before it)."""
        with self._lock:
            self._exports.setdefault(stream, {})[(export.first, export.last)] = export
            self._resumable.discard((stream, (export.first, export.last)))

    def emitted(self, stream: str, through: dt.date) -> None:
        """The window of `stream` that ends `through` is emitted, and every one before it: their exports are done
        with (windows are emitted in order; a window of today is exported again by the next run, not resumed)."""
        with self._lock:
            entries = self._exports.get(stream, {})
            for key in [key for key in entries if key[0] <= through]:
                del entries[key]

    def snapshot(self) -> dict[str, list[PendingExport]]:
        """The exports in flight, by stream, in window order."""
        with self._lock:
            return {stream: [entries[key] for key in sorted(entries)] for stream, entries in self._exports.items()}
