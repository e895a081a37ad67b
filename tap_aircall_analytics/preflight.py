"""Look before you sync: the plan of a run, and the CSV headers checked against the catalogue.

Both write a report for a person to stderr (stdout stays for Singer messages) and are
run instead of a sync by the `plan_only` and `check_schema` settings.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import itertools
import json
import textwrap
import typing as t
from collections import Counter

from tap_aircall_analytics.records import HeaderMatch, RecordReader, infer_kind, open_text
from tap_aircall_analytics.reports import Column, Kind
from tap_aircall_analytics.windows import Window

if t.TYPE_CHECKING:
    from tap_aircall_analytics.exports import ExportPipeline
    from tap_aircall_analytics.settings import Settings
    from tap_aircall_analytics.streams import ReportStream

#: An export costs at least two API calls: the request and one poll.
CALLS_PER_EXPORT = 2
SAMPLE_ROWS = 10_000  # rows of the one-day export that types are guessed from
ASSUMED_RATE_LIMIT = 60  # requests a minute: the lower of the figures Aircall's pages give


def plan(settings: Settings, streams: list[ReportStream], write: t.Callable[[str], None]) -> None:
    """Write which windows each stream would export, and the API calls that takes at least."""
    if not streams:
        write("No stream is selected: nothing to plan.")
        return
    write(
        f"Plan (nothing is exported): timezone {settings.timezone}, today {settings.today()}, "
        f"window_days {settings.window_days}, lookback_days {settings.lookback_days}"
    )
    write(f"{'stream':<54}{'from':<12}{'to':<12}{'exports':>8}{'API calls':>11}  bookmark")
    total = 0
    for stream in streams:
        windows = stream.planned_windows()
        bookmark = stream.bookmark()
        first = windows[0].first.isoformat() if windows else "-"
        last = windows[-1].last.isoformat() if windows else "-"
        total += len(windows)
        write(
            f"{stream.name:<54}{first:<12}{last:<12}{len(windows):>8}{len(windows) * CALLS_PER_EXPORT:>11}  "
            f"{bookmark or 'none (first run)'}"
        )
        if windows:
            write(
                textwrap.fill(", ".join(map(str, windows)), width=110, initial_indent="    ", subsequent_indent="    ")
            )
    minutes = total * CALLS_PER_EXPORT / ASSUMED_RATE_LIMIT
    concurrent = settings.max_concurrent_exports
    write(
        f"Total: {total} exports, at least {total * CALLS_PER_EXPORT} API calls (requests and polls; "
        f"about {minutes:.0f} min of rate limit at {ASSUMED_RATE_LIMIT} requests/minute). "
        "Downloads go to the storage host and do not count."
    )
    write(
        f"Run-wide: up to {concurrent} exports in flight at once (max_concurrent_exports), requested in the "
        f"order above: the run waits for about {-(-total // concurrent)} export(s) in a row; up to "
        f"{settings.max_disk_mb:g} MB of downloaded files wait on disk."
    )


def _differences(match: HeaderMatch) -> tuple[list[str], list[str], list[tuple[Column, str]]]:
    """New and missing labels, and the pairs among them that look like a rename."""
    new = list(match.unknown)
    missing = list(match.missing)
    renamed = []
    for column in list(missing):
        close = difflib.get_close_matches(column.label, new, n=1, cutoff=0.6)
        if close:
            renamed.append((column, close[0]))
            missing.remove(column)
            new.remove(close[0])
    return new, [column.label for column in missing], renamed


def sample_window(settings: Settings) -> Window:
    """The day the schema check exports: yesterday, the last whole day."""
    day = settings.today() - dt.timedelta(days=1)
    return Window(day, day)


def check_schema(
    settings: Settings, streams: list[ReportStream], exports: ExportPipeline, write: t.Callable[[str], None]
) -> int:
    """Export one day of each stream and compare its header with the catalogue.

    Prints, for the new columns, the `column_types` setting that loads them typed (the
    type inferred from that day's values), and how many of that day's cells do not
    parse as their column's type. Returns how many reports differ.
    """
    differing = 0
    day = exports.windows(streams[0].name)[0].first if streams else None
    declared = {stream: list(entries) for stream, entries in settings.column_types.items()}
    for stream in streams:
        header: list[str] = []
        sample: list[list[str]] = []
        unparsed: Counter[str] = Counter()
        for file in exports.files(stream.name):
            with open_text(file.path, file.zipped) as text:
                rows = csv.reader(text)
                header = next(rows, [])
                sample = list(itertools.islice(rows, SAMPLE_ROWS))
            reader = RecordReader(stream.report, settings.timezone, lambda message: None)
            for _ in itertools.islice(reader.read(file.path, zipped=file.zipped), SAMPLE_ROWS):
                pass
            unparsed = reader.unparsed
        match = HeaderMatch.of(stream.report, header)
        new, missing, renamed = _differences(match)
        for label, count in unparsed.items():
            write(
                f"{stream.name}: {count} of {len(sample)} values of column '{label}' on {day} do not parse as "
                f"{stream.report.column_by_label(label).kind.value}"
            )
        if not (new or missing or renamed):
            write(f"{stream.name}: the header of {day} matches the catalogue ({len(match.positions)} columns)")
            continue
        differing += 1
        parts = [f"renamed? '{old.label}' -> '{label}'" for old, label in renamed]
        parts += [f"new column '{label}'" for label in new]
        parts += [f"missing column '{label}'" for label in missing]
        write(f"{stream.name}: the header of {day} differs from the catalogue: {'; '.join(parts)}")
        suggestions = declared.setdefault(stream.name, [])
        for old, label in renamed:
            suggestions.append({"label": label, "name": old.name, "type": _type_name(old.kind)})
        for label in new:
            values = [row[header.index(label)] for row in sample if len(row) == len(header)]
            suggestions.append({"label": label, "type": _type_name(infer_kind(values))})
    if differing:
        setting = json.dumps({stream: entries for stream, entries in declared.items() if entries})
        write(
            f"{differing} report(s) differ. To load their new columns typed (types guessed from {day}; "
            "check them), set column_types, with meltano:"
        )
        write(f"  meltano config tap-aircall-analytics set column_types '{setting}'")
        write(f"or as the column_types value in meltano.yml or the tap's config.json: {setting}")
    return differing


def _type_name(kind: Kind) -> str:
    """The name of a kind in the column_types setting."""
    return "date-time" if kind is Kind.TIMESTAMP else kind.value
