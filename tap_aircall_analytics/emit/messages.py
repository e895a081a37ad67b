"""Singer messages out: encoded with msgspec, written to stdout in large buffers.

Messages are buffered in the order they are written and flushed before every STATE
message goes out, so a state never runs ahead of the records it covers. Records of a
stream that needs no SDK processing (no stream maps, every property selected) skip the
SDK's message objects entirely: they are encoded straight into the buffer.
"""

from __future__ import annotations

import atexit
import datetime as dt
import gc
import io
import os
import stat
import sys
import time
import typing as t
from pathlib import Path

import msgspec
from singer_sdk.singerlib import Message, SingerMessageType
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from typing_extensions import override  # typing.override from Python 3.12

FLUSH_BYTES = 1 << 20


class BufferedMessageWriter(GenericSingerWriter[bytes, Message]):
    """Writes Singer messages to stdout (or to `output`) through one ordered buffer."""

    def __init__(self, output: t.BinaryIO | None = None) -> None:
        self._output = output
        self._encoder = msgspec.json.Encoder(decimal_format="number")
        self._encode = self._encoder.encode
        self._buffer = bytearray()
        self._stamp_second = -1
        self._stamp = b""
        self.flushing = False  # a signal handler must not write while the buffer goes out
        self.after_flush: t.Callable[[], None] | None = None
        if output is None:
            _widen_stdout_pipe()
            atexit.register(self.flush)

    @override
    def serialize_message(self, message: Message) -> bytes:
        """Encode a message as one line of JSON, without the newline."""
        return self._encode(message.to_dict())

    @override
    def write_message(self, message: Message) -> None:
        """Buffer a message; flush the buffer with it when it is a STATE."""
        self._buffer += self.serialize_message(message)
        self._buffer += b"\n"
        if message.type == SingerMessageType.STATE or len(self._buffer) >= FLUSH_BYTES:
            self.flush()

    def write_records(self, stream: str, records: t.Iterable[dict[str, t.Any] | msgspec.Struct]) -> int:
        """Buffer a RECORD message for each record as it is (already typed and selected: a dict or a
        Struct, see `records.Record`); return how many."""
        prefix = b'{"type":"RECORD","stream":' + self._encode(stream) + b',"record":'
        encode_into, buffer, count = self._encoder.encode_into, self._buffer, 0
        stamp = self._stamp_now()
        # Records are acyclic and short-lived: the cyclic collector would scan millions of them for nothing.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for count, record in enumerate(records, 1):  # noqa: B007 - the last count is the number written
                buffer += prefix
                encode_into(record, buffer, -1)
                buffer += stamp
                if len(buffer) >= FLUSH_BYTES:
                    self.flush()
                    stamp = self._stamp_now()
        finally:
            if collecting:
                gc.enable()
        return count

    def _stamp_now(self) -> bytes:
        """The end of a RECORD message: time_extracted, to the second, spelled as the SDK's messages spell it."""
        now = int(time.time())
        if now != self._stamp_second:
            self._stamp_second = now
            moment = self._encode(dt.datetime.fromtimestamp(now, dt.timezone.utc))
            self._stamp = b',"time_extracted":' + moment + b"}\n"
        return self._stamp

    def flush(self) -> None:
        """Write the buffer to stdout and flush it; then run `after_flush` if a signal asked for it."""
        if not self._buffer:
            return
        self.flushing = True
        try:
            stdout = sys.stdout
            binary = getattr(stdout, "buffer", None)
            if self._output is not None:
                _write_all(self._output, self._buffer)
            elif binary is not None:
                stdout.flush()
                _write_all(binary, self._buffer)
                binary.flush()
            else:  # a text-only stdout (tests that redirect to StringIO)
                stdout.write(self._buffer.decode())
                stdout.flush()
            self._buffer.clear()
        finally:
            self.flushing = False
        if self.after_flush is not None:
            after, self.after_flush = self.after_flush, None
            after()

    def write_file(self, path: Path) -> None:
        """Write the messages of a file (lines, as this writer writes them) after those buffered.

        The buffer only ever takes whole lines, so a signal never leaves half a message out.
        """
        rest = b""
        with open(path, "rb") as messages:
            while chunk := messages.read(FLUSH_BYTES):
                chunk = rest + chunk
                whole = chunk.rfind(b"\n") + 1
                self._buffer += chunk[:whole]
                rest = chunk[whole:]
                self.flush()

    def drop_partial_message(self) -> None:
        """Cut the buffer after its last whole message (a signal may land between two appends)."""
        del self._buffer[self._buffer.rfind(b"\n") + 1 :]


def _widen_stdout_pipe() -> None:
    """Let a pipe to the target hold a whole buffer (Linux: 64 KiB by default), so the tap and the
    target trade one write and one read per megabyte instead of sixteen."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

        if stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode):
            fcntl.fcntl(sys.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), FLUSH_BYTES)
    except (ImportError, OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a pipe, not Linux, or a limit below a megabyte: the default pipe works too


def _write_all(binary: t.BinaryIO | t.IO[bytes], data: bytearray) -> None:
    """Write all of `data`: an unbuffered stdout (PYTHONUNBUFFERED) may take only part of it at once."""
    with memoryview(data) as view:
        written = 0
        while written < len(view):
            written += binary.write(view[written:]) or 0
