"""Singer messages out: whole lines, whatever stdout takes at once and wherever a signal lands."""

from __future__ import annotations

import io
import json

from tap_aircall_analytics.emit.messages import BufferedMessageWriter


class ShortWrites(io.RawIOBase):
    """A raw stdout that takes at most 7 bytes a call, as an unbuffered pipe may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        taken = bytes(chunk[:7])
        self.data += taken
        return len(taken)


class Stdout(io.StringIO):
    def __init__(self, binary) -> None:
        super().__init__()
        self.buffer = binary


def test_every_byte_goes_out_when_stdout_takes_part_of_a_write(monkeypatch):
    raw = ShortWrites()
    monkeypatch.setattr("sys.stdout", Stdout(raw))
    writer = BufferedMessageWriter()
    records = [{"id": number, "text": 'é, "q"\n' * number} for number in range(50)]
    assert writer.write_records("s", iter(records)) == 50
    writer.flush()
    lines = raw.data.decode().splitlines()
    assert [json.loads(line)["record"] for line in lines] == records


def test_a_message_cut_by_a_signal_is_dropped_whole(monkeypatch):
    raw = ShortWrites()
    monkeypatch.setattr("sys.stdout", Stdout(raw))
    writer = BufferedMessageWriter()
    writer.write_records("s", [{"id": 1}])
    writer._buffer += b'{"type":"RECORD","stream":"s","rec'  # a signal landed between two appends
    writer.drop_partial_message()
    writer.flush()
    assert [json.loads(line)["record"] for line in raw.data.decode().splitlines()] == [{"id": 1}]
