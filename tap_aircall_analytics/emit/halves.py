"""A large export file read on two cores: its second half in a process of its own.

In RECORD mode the tap's own work is reading CSV rows into typed records and encoding
them, and Python does that on one core. A plain file of at least `SPLIT_BYTES` is cut in
two at a row boundary: a child process reads the second half into a file of RECORD
messages while the tap emits the first half, then the tap emits the child's messages.
The records, their order, the row numbers in errors and the counts of bad cells are
those of reading the file whole.

The child is a fresh interpreter running this module (`python -m`), not a multiprocessing
child: those run the main module of the program again, and a script that runs the tap
without an `if __name__ == "__main__"` guard would then sync all over again in the child,
with its own requests and messages on the same stdout. Two cores are a speed-up, never a
condition: when the child cannot be started or stops without its half, the tap reads
the rest of the file itself, says so once, and reads the run's later files on one core.
"""

from __future__ import annotations

import csv
import logging
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tap_aircall_analytics
from tap_aircall_analytics.emit.messages import BufferedMessageWriter
from tap_aircall_analytics.files.records import FileFormatError, FilePart, RecordReader, is_zip, open_text

logger = logging.getLogger("tap_aircall_analytics")

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
    halves = None if zipped or is_zip(path) or _one_core.reason else split(path)  # a zip announced as CSV too
    if halves is None:
        return _write(reader, writer, path, where, zipped=zipped)
    first, second = halves
    output = path.with_name(path.name + ".second-half")
    try:
        child = subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env())
    except OSError as error:  # no process can be started here (limits, sandboxes, no interpreter)
        _one_core.fall_back(where, f"no process could be started ({error})")
        return _write(reader, writer, path, where)
    try:
        sent = _send(child, (reader.report, reader.timezone, reader.strict, path, second, where, output))
        rows = _write(reader, writer, path, where, part=first)
        outcome = _outcome(child) if sent else None
        if outcome is None:
            _one_core.fall_back(where, f"the process reading the second half stopped (exit code {child.wait()})")
            return rows + _write(reader, writer, path, where, part=second)
        if outcome[0] == "failed":
            raise FileFormatError(outcome[1])
        _, count, unparsed, examples = outcome
        for label, cells in unparsed.items():
            reader.count_unparsed(reader.report.column_by_label(label), cells, examples.get(label, ""))
        writer.write_file(output)
        return rows + count
    finally:
        child.kill()  # nothing once it has exited; a run stopped meanwhile must not leave it reading
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        output.unlink(missing_ok=True)


def child_command() -> list[str]:
    """The command line of the process that reads a second half."""
    return [sys.executable, "-m", "tap_aircall_analytics.emit.halves"]


@dataclass
class _OneCore:
    """Why the run reads its large files on one core: set once a second process could not do its half."""

    reason: str = ""

    def fall_back(self, where: str, reason: str) -> None:
        if not self.reason:
            logger.warning("%s: %s; this file and the next ones are read on one core", where, reason)
        self.reason = reason


_one_core = _OneCore()


def _write(
    reader: RecordReader,
    writer: BufferedMessageWriter,
    path: Path,
    where: str,
    *,
    zipped: bool = False,
    part: FilePart | None = None,
) -> int:
    return writer.write_records(reader.report.stream_name, reader.read(path, zipped=zipped, where=where, part=part))


def _child_env() -> dict[str, str]:
    """The environment of the child: this copy of the tap comes first on its import path."""
    package_root = str(Path(tap_aircall_analytics.__file__).resolve().parent.parent)
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _send(child: subprocess.Popen[bytes], request: tuple) -> bool:
    """Hand the child its part; False if it is gone already."""
    try:
        assert child.stdin is not None
        with child.stdin:
            pickle.dump(request, child.stdin)
    except OSError:
        return False
    return True


def _outcome(child: subprocess.Popen[bytes]) -> tuple | None:
    """What the child answered, once it has read its part; None if it stopped without an answer."""
    try:
        assert child.stdout is not None
        outcome = pickle.load(child.stdout)
    except (OSError, EOFError, pickle.UnpicklingError):
        return None
    return outcome if isinstance(outcome, tuple) and outcome[:1] in (("done",), ("failed",)) else None


def _read_second_half() -> None:
    """In the child: read the part named on stdin into a file of RECORD messages; the outcome to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole group: end quietly, the tap says why
    report, timezone, strict, path, part, where, output = pickle.load(sys.stdin.buffer)
    reader = RecordReader(report, timezone, lambda message: None, strict=strict)
    try:
        with open(output, "wb") as messages:
            writer = BufferedMessageWriter(messages)
            count = _write(reader, writer, path, where, part=part)
            writer.flush()
        outcome: tuple = ("done", count, dict(reader.unparsed), reader.examples)
    except FileFormatError as error:
        outcome = ("failed", str(error))
    pickle.dump(outcome, sys.stdout.buffer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _read_second_half()
