"""The schema check: one day of each stream exported, its CSV header and values checked against the catalogue.

It writes a report for a person to stderr (stdout stays for Singer messages) and is run
instead of a sync by the `check_schema` setting.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import itertools
import json
import typing as t
from collections import Counter

from tap_aircall_analytics.config import spellings
from tap_aircall_analytics.config.catalogue import Column, Kind, Report
from tap_aircall_analytics.config.spellings import BadValue, ColumnType
from tap_aircall_analytics.files.records import (
    FileFormatError,
    HeaderMatch,
    RecordReader,
    infer_kind,
    is_zip,
    open_text,
)
from tap_aircall_analytics.planning.plan import PlannedStream
from tap_aircall_analytics.planning.windows import Window

if t.TYPE_CHECKING:
    from tap_aircall_analytics.config.settings import Settings
    from tap_aircall_analytics.exports.pipeline import ExportPipeline

SCHEMA_SAMPLE_ROWS = 10_000  # rows of the one-day export that types are guessed from


def _differences(match: HeaderMatch) -> tuple[list[str], list[str], list[tuple[Column, str]]]:
    """New and missing labels, and the pairs among them that look like a rename."""
    repeated = {label for label, _ in match.repeated}
    new = [label for label in match.unknown if label not in repeated]
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


def sample_plans(settings: Settings, streams: list[tuple[str, Report]]) -> list[PlannedStream]:
    """The plan of the schema check: the sample day of each stream, whatever its bookmark."""
    window = sample_window(settings)
    return [PlannedStream(name, report, settings.today(), None, (window,), 1) for name, report in streams]


def check_schema(
    settings: Settings, streams: list[PlannedStream], exports: ExportPipeline, write: t.Callable[[str], None]
) -> int:
    """Export one day of each stream and explain how its file differs from the catalogue.

    Prints the columns matched under another spelling of their label, the spelling each
    typed column's values are in, the cells that no spelling reads, and for new columns
    (and cells a declared format would read) the `column_types` setting that loads them
    typed. Returns how many reports need the user: new, missing or renamed columns, a
    missing key column, cells that do not parse.
    """
    needing = 0
    day = exports.windows(streams[0].name)[0].first if streams else None
    declared = {stream: list(entries) for stream, entries in settings.column_types.items()}
    for stream in streams:
        header: list[str] = []
        sample: list[list[str]] = []
        unparsed: Counter[str] = Counter()
        failure = ""
        for file in exports.files(stream.name):
            with open_text(file.path, is_zip(file.path)) as text:
                rows = csv.reader(text)
                header = next(rows, [])
                sample = list(itertools.islice(rows, SCHEMA_SAMPLE_ROWS))
            reader = RecordReader(stream.report, settings.timezone, lambda message: None)
            try:
                for _ in itertools.islice(reader.read(file.path, zipped=file.zipped), SCHEMA_SAMPLE_ROWS):
                    pass
            except FileFormatError as error:
                failure = str(error)
            unparsed = reader.unparsed
        match = HeaderMatch.of(stream.report, header)
        sample = [row for row in sample if len(row) == len(header)]
        suggestions = declared.setdefault(stream.name, [])
        if _explain_file(stream, match, sample, unparsed, settings.timezone, day, write, suggestions) or failure:
            needing += 1
        if failure:
            write(f"{stream.name}: the file of {day} cannot be read: {failure}")
    if needing:
        setting = json.dumps({stream: entries for stream, entries in declared.items() if entries})
        write(f"{needing} report(s) differ or hold values the tap cannot read.")
        if any(declared.values()):
            write(
                f"To load their new columns typed (types and formats guessed from {day}; check them), "
                "set column_types, with meltano:"
            )
            write(f"  meltano config set tap-aircall-analytics column_types '{setting}'")
            write(f"or as the column_types value in meltano.yml or the tap's config.json: {setting}")
    return needing


def _explain_file(
    stream: PlannedStream,
    match: HeaderMatch,
    sample: list[list[str]],
    unparsed: Counter[str],
    timezone: str,
    day: dt.date | None,
    write: t.Callable[[str], None],
    suggestions: list[dict],
) -> bool:
    """Write how one file reads; add the column_types entries it needs. True if it needs the user."""
    report = stream.report
    if match.respelled:
        pairs = ", ".join(f"'{label}' -> {column.label}" for label, column in match.respelled)
        write(f"{stream.name}: columns matched under another spelling of their label: {pairs}")
    for label, column in match.repeated:
        write(
            f"{stream.name}: column '{label}' matches '{column.label}' like a column before it; the first is "
            f"read, this one is kept as text in _extra_columns"
        )
    spelled = []
    for index, column in match.positions:
        if column.kind in (Kind.STRING, Kind.LIST):
            continue
        column_type = ColumnType.of(column, timezone)
        found = spellings.detect(column_type, (row[index] for row in sample if row[index]))
        spelled.append(f"{column.label}: {found.describe(column_type) if found else 'no value read'}")
    if spelled:
        write(f"{stream.name}: values read as {'; '.join(spelled)}")
    positions = {column.label: index for index, column in match.positions}
    for label, count in unparsed.items():
        column = report.column_by_label(label)
        write(
            f"{stream.name}: {count} of {len(sample)} values of column '{label}' on {day} do not parse as "
            f"{column.kind.value}"
        )
        values = [row[positions[label]] for row in sample if label in positions and row[positions[label]]]
        format_text = guess_format(column.kind, values)
        if format_text:
            suggestions.append({"label": column.label, "type": _type_name(column.kind), "format": format_text})
    new, missing, renamed = _differences(match)
    if not (new or missing or renamed):
        write(f"{stream.name}: the header of {day} matches the catalogue ({len(match.positions)} columns)")
        return bool(unparsed)
    parts = [f"renamed? '{old.label}' -> '{label}'" for old, label in renamed]
    parts += [f"new column '{label}'" for label in new]
    parts += [f"missing column '{label}'" for label in missing]
    write(f"{stream.name}: the header of {day} differs from the catalogue: {'; '.join(parts)}")
    for old, label in renamed:
        suggestions.append({"label": label, "name": old.name, "type": _type_name(old.kind)})
    extras = {label: index for index, label in match.extras}
    for label in new:
        values = [row[extras[label]] for row in sample]
        suggestions.append({"label": label, "type": _type_name(infer_kind(values))})
    return True


#: Day-first and month-first layouts a spreadsheet writes, tried on cells no spelling reads.
GUESSED_FORMATS = {
    Kind.TIMESTAMP: ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M"),
    Kind.DATE: ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"),
}


def guess_format(kind: Kind, values: list[str]) -> str:
    """The first layout that reads every one of `values` (day first before month first), or ''."""
    for format_text in GUESSED_FORMATS.get(kind, ()) if values else ():
        column_type = ColumnType(kind, format=format_text)
        try:
            for value in values:
                spellings.read(value, column_type)
        except BadValue:
            continue
        return format_text
    return ""


def _type_name(kind: Kind) -> str:
    """The name of a kind in the column_types setting."""
    return "date-time" if kind is Kind.TIMESTAMP else kind.value
