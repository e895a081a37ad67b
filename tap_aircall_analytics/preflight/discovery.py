"""Discovery from the account: each report's schema built from the columns its files really hold.

With `discover_columns`, `--discover` exports one recent day of each report through the
run's usual client and export flow, reads the header and a sample of values, and builds
each stream's columns: a catalogue (or declared) column matched whatever the spelling of
its label, a column that looks renamed kept under its property, any other column typed by
the readers a sync reads it with. The result is cached in a file with the request that made
it: later discoveries, and every sync, read the file and send no request until it is older
than `discovery_cache_hours` (a sync reads it whatever its age, so that its records fit the
catalog discovered). Any failure falls back to the built-in catalogue with one warning.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import itertools
import json
import os
import re
import time
import typing as t
from pathlib import Path

from tap_aircall_analytics.api.client import AircallError
from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.catalogue import Column, Kind, Report, property_name
from tap_aircall_analytics.config.settings import ConfigError, Settings
from tap_aircall_analytics.config.spellings import BadValue, ColumnType
from tap_aircall_analytics.files.records import FileFormatError, HeaderMatch, infer_kind, is_zip, open_text
from tap_aircall_analytics.preflight.schema_check import sample_plans, sample_window

if t.TYPE_CHECKING:
    from tap_aircall_analytics.run import Run

CACHE_VERSION = 1
SAMPLE_ROWS = 1000  # rows of each day's file that new columns are typed from
RENAME_CUTOFF = 0.6  # how alike a new label and a missing one are to be read as a rename (difflib ratio)


class DiscoveryError(Exception):
    """Discovery from the account could not finish; the message says why."""


def cache_path(config: dict) -> Path:
    """The discovery cache file: `discovery_cache_file`, else one in the user's cache folder."""
    given = config.get("discovery_cache_file")
    if given:
        return Path(str(given)).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tap-aircall-analytics" / "discovered-columns.json"


def cache_key(settings: Settings, reports: t.Sequence[Report]) -> dict:
    """What a cached discovery must have been made for to be used: the API, the timezone, the reports."""
    return {
        "api_url": settings.api_url,
        "timezone": settings.timezone,
        "reports": [report.api_name for report in reports],
        "column_types": settings.column_types,
    }


def account_reports(run: Run, config: dict, reports: tuple[Report, ...], *, syncing: bool) -> tuple[Report, ...]:
    """The reports with the account's columns: cached, else discovered; the catalogue's on failure."""
    try:
        settings = run.settings
        path = cache_path(config)
        key = cache_key(settings, reports)
        cached = read_cache(path, key, max_age=None if syncing else settings.discovery_cache_seconds)
        if cached is not None:
            return apply(reports, cached)
        if settings.plan_only:
            raise DiscoveryError("a plan sends no export (run --discover first)")
        columns, requests = discover(run, settings, reports)
        write_cache(path, key, requests, columns)
        return apply(reports, columns)
    except (ConfigError, AircallError, FileFormatError, DiscoveryError, OSError, ValueError) as error:
        run.logger.warning(
            "discover_columns: the account's columns could not be read (%s); the built-in catalogue is used", error
        )
        return reports


def discover(
    run: Run, settings: Settings, reports: tuple[Report, ...]
) -> tuple[dict[str, list[Column]], dict[str, dict]]:
    """Export one recent day of each report; return each stream's columns and the request bodies sent."""
    day = sample_window(settings)
    streams = sample_plans(settings, [(report.stream_name, report) for report in reports])
    found: dict[str, list[Column]] = {}
    requests: dict[str, dict] = {}
    with run.plan_exports(streams) as pipeline:
        for stream in streams:
            header: list[str] = []
            sample: list[list[str]] = []
            for file in pipeline.files(stream.name):
                with open_text(file.path, is_zip(file.path)) as text:
                    rows = csv.reader(text)
                    header = next(rows, [])
                    sample = [row for row in itertools.islice(rows, SAMPLE_ROWS) if len(row) == len(header)]
            if not header:
                raise DiscoveryError(f"the export of {stream.name} for {day.first} has no header row")
            found[stream.name] = columns_of(stream.report, header, sample)
            exporter = pipeline.exporter(stream.name)
            requests[stream.name] = exporter.request_body(day)
    return found, requests


def columns_of(report: Report, header: list[str], sample: list[list[str]]) -> list[Column]:
    """A report's columns as one file holds them, in the file's order.

    Known columns are matched whatever the spelling of their label; a new label close to a
    missing one whose type reads all its values keeps that column's property; any other is
    typed by the readers a sync uses. Missing columns are left out, but for the key and the
    replication key, which a sync needs (and names when a file lacks them).
    """
    match = HeaderMatch.of(report, header)
    values = {index: [row[index] for row in sample if row[index]] for index in range(len(header))}
    known = dict(match.positions)
    extras = dict(match.extras)
    repeated = {label for label, _ in match.repeated}
    missing = list(match.missing)
    columns: list[Column] = []
    taken = {column.name for column in known.values()}
    for index, label in enumerate(header):
        if index in known:
            columns.append(known[index])
            continue
        if extras[index] in repeated:
            continue  # a second header for a known column: its text stays in _extra_columns
        renamed = _renamed(label, missing, values[index])
        if renamed is not None:
            missing.remove(renamed)
            columns.append(dataclasses.replace(renamed, label=label, alias=renamed.name))
            continue
        name = property_name(label)
        if not name or name in taken or name.startswith("_"):
            continue  # no property of its own: kept as text in _extra_columns
        taken.add(name)
        columns.append(Column(label, kind_of(label, values[index])))
    needed = {*report.primary_key, report.replication_key}
    return columns + [column for column in missing if column.name in needed]


def kind_of(label: str, values: list[str]) -> Kind:
    """The kind of a new column: a timestamp when its label says so (`Picked up at`, `pickedUpAt`)
    and every value reads as one (Unix times are integers too), else the first kind that reads them all."""
    says_timestamp = re.search(r"(?:^|[^0-9A-Za-z])[Aa]t$|[a-z]At$", label.strip())
    if says_timestamp and values and _reads(ColumnType(Kind.TIMESTAMP), values):
        return Kind.TIMESTAMP
    return infer_kind(values)


def _reads(column_type: ColumnType, values: list[str]) -> bool:
    try:
        for value in values:
            spellings.read(value, column_type)
    except BadValue:
        return False
    return True


def _renamed(label: str, missing: list[Column], values: list[str]) -> Column | None:
    """The missing column that `label` looks like the new label of, if its type reads every value."""
    by_label = {column.label: column for column in missing}
    for close in difflib.get_close_matches(label, list(by_label), n=1, cutoff=RENAME_CUTOFF):
        column = by_label[close]
        return column if _reads(ColumnType.of(column, "UTC"), values) else None
    return None


def apply(reports: tuple[Report, ...], columns: dict[str, list[Column]]) -> tuple[Report, ...]:
    """The reports with their discovered columns (a report not discovered keeps the catalogue's)."""
    return tuple(
        dataclasses.replace(report, columns=tuple(columns[report.stream_name]))
        if report.stream_name in columns
        else report
        for report in reports
    )


def read_cache(path: Path, key: dict, *, max_age: float | None) -> dict[str, list[Column]] | None:
    """The cached columns, if the file was made for `key` and (with `max_age`) is younger; else None."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable: discovered again, and written over
    if not isinstance(cached, dict) or cached.get("version") != CACHE_VERSION or cached.get("key") != key:
        return None
    if max_age is not None and time.time() - float(cached.get("made_at", 0)) > max_age:
        return None
    try:
        return {
            stream: [Column(entry["label"], Kind(entry["kind"]), *_declared(entry)) for entry in entries]
            for stream, entries in cached["streams"].items()
        }
    except (KeyError, TypeError, ValueError):
        return None


def _declared(entry: dict) -> tuple[str, str, str, str]:
    return (entry.get("name", ""), entry.get("format", ""), entry.get("unit", ""), entry.get("decimal", ""))


def write_cache(path: Path, key: dict, requests: dict[str, dict], columns: dict[str, list[Column]]) -> None:
    """Write the discovered columns with the request that made them; atomically, so a reader sees a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    made_at = time.time()
    document = {
        "version": CACHE_VERSION,
        "made_at": made_at,
        "made": dt.datetime.fromtimestamp(made_at, dt.timezone.utc).isoformat(timespec="seconds"),
        "key": key,
        "requests": requests,
        "streams": {
            stream: [
                {
                    "label": column.label,
                    "kind": column.kind.value,
                    "name": column.name,
                    **{part: getattr(column, part) for part in ("format", "unit", "decimal") if getattr(column, part)},
                }
                for column in entries
            ]
            for stream, entries in columns.items()
        },
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
    partial.replace(path)
