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
import typing as t

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
