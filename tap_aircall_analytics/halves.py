"""A large export file read on two cores: its second half in a process of its own.

In RECORD mode the tap's own work is reading CSV rows into typed records and encoding
them, and Python does that on one core. A plain file of at least `SPLIT_BYTES` is cut in
two at a row boundary: a child process reads the second half into a file of RECORD
messages while the tap emits the first half, then the tap emits the child's messages.
The records, their order, the row numbers in errors and the counts of bad cells are
those of reading the file whole.
"""

from __future__ import annotations

import csv
import multiprocessing
import typing as t
from pathlib import Path

from tap_aircall_analytics.messages import BufferedMessageWriter
from tap_aircall_analytics.records import FileFormatError, FilePart, RecordReader, open_text
from tap_aircall_analytics.reports import Report

if t.TYPE_CHECKING:
    from multiprocessing.connection import Connection

SPLIT_BYTES = 32 << 20  # below this, starting a process costs more than it saves
_SCAN_BYTES = 1 << 20


def split(path: Path) -> tuple[FilePart, FilePart] | None:
    """The two halves of a plain CSV file, cut at the first row boundary past its middle.

    A line ending is a row boundary when an even number of quotes comes before it (RFC
    4180 doubles a quote inside a field). None for a small file or one without a boundary.
    """
    size = path.stat().st_size
    if size < SPLIT_BYTES:
        return None
    with open(path, "rb") as data:
        quotes = lines = position = 0
        while position < size // 2:
            chunk = data.read(min(_SCAN_BYTES, size // 2 - position))
            quotes, lines, position = quotes + chunk.count(b'"'), lines + chunk.count(b"\n"), position + len(chunk)
        while chunk := data.read(_SCAN_BYTES):
            newline = chunk.find(b"\n")
            while newline >= 0:
                if (quotes + chunk.count(b'"', 0, newline)) % 2 == 0:
                    cut = position + newline + 1
                    before = lines + chunk.count(b"\n", 0, newline + 1)
                    with open_text(path, zipped=False) as text:
                        header = next(csv.reader(text))
                    return FilePart(0, cut, 0, None), FilePart(cut, None, before, header)
                newline = chunk.find(b"\n", newline + 1)
            quotes, lines, position = quotes + chunk.count(b'"'), lines + chunk.count(b"\n"), position + len(chunk)
    return None


def write_records(reader: RecordReader, writer: BufferedMessageWriter, path: Path, zipped: bool, where: str) -> int:
    """Write the RECORD messages of one export file; return how many. Large plain files use two cores."""
    halves = None if zipped else split(path)
    if halves is None:
        return _one_core(reader, writer, path, zipped, where)
    first, second = halves
    output = path.with_name(path.name + ".second-half")
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_second_half,
        args=(reader.report, reader.timezone, reader.strict, path, second, where, output, send),
        name="second-half",
        daemon=True,
    )
    try:
        child.start()
    except OSError:  # no process can be started here (limits, sandboxes): one core reads it all
        receive.close()
        send.close()
        return _one_core(reader, writer, path, zipped, where)
    send.close()
    try:
        rows = writer.write_records(reader.report.stream_name, reader.read(path, where=where, part=first))
        try:
            outcome = receive.recv()
        except EOFError:
            raise FileFormatError(
                f"{reader.report.stream_name} {where}: the process reading the second half of the file stopped"
            ) from None
        if outcome[0] == "failed":
            raise FileFormatError(outcome[1])
        _, count, unparsed, examples = outcome
        for label, cells in unparsed.items():
            reader.count_unparsed(reader.report.column_by_label(label), cells, examples.get(label, ""))
        writer.write_file(output)
        return rows + count
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()
        child.join(5)
        output.unlink(missing_ok=True)


def _one_core(reader: RecordReader, writer: BufferedMessageWriter, path: Path, zipped: bool, where: str) -> int:
    return writer.write_records(reader.report.stream_name, reader.read(path, zipped=zipped, where=where))


def _second_half(
    report: Report, timezone: str, strict: bool, path: Path, part: FilePart, where: str, output: Path, send: Connection
) -> None:
    """In the child process: the second half's RECORD messages into `output`; the counts to `send`."""
    reader = RecordReader(report, timezone, lambda message: None, strict=strict)
    try:
        with open(output, "wb") as messages:
            writer = BufferedMessageWriter(messages)
            count = writer.write_records(report.stream_name, reader.read(path, where=where, part=part))
            writer.flush()
        send.send(("done", count, dict(reader.unparsed), reader.examples))
    except FileFormatError as error:
        send.send(("failed", str(error)))
    finally:
        send.close()
