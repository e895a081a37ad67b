"""Downloads: a body served with Content-Encoding is checked on the wire, decoded as it is written,
and a cut or an unknown encoding is a transfer failure, never a short file."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib

import pytest
from helpers import exported_windows, exporter_for

from conftest import TODAY
from tap_aircall_analytics.api import client
from tap_aircall_analytics.exports.pipeline import ExportPipeline
from tap_aircall_analytics.planning.windows import Window

YESTERDAY = Window(TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=1))


def served_file(sim) -> bytes:
    """The CSV file of the simulator's only export, as it was made."""
    (export,) = sim._exports.values()
    with open(export.path, "rb") as handle:
        return handle.read()


# --- Downloads served with Content-Encoding: gzip ------------------------------------


def test_a_gzip_encoded_download_is_checked_on_the_wire_and_written_decoded(simulator, tmp_path):
    sim = simulator(gzip_downloads=True, calls_per_day=2000)
    exporter, _ = exporter_for(sim)
    export = exporter._await(exporter._request(YESTERDAY), YESTERDAY)
    size = exporter.client.download(export.link, tmp_path / "calls.csv")
    original = served_file(sim)
    assert (tmp_path / "calls.csv").read_bytes() == original and size == len(original)
    assert len(gzip.compress(original, 1)) < size / 2  # Content-Length counted far fewer bytes than were written


def test_a_gzip_encoded_download_cut_short_is_retried_and_arrives_whole(simulator, tmp_path):
    sim = simulator(gzip_downloads=True, cut_download_once=True, calls_per_day=2000)
    exporter, messages = exporter_for(sim)
    pipeline = ExportPipeline(max_concurrent=1, max_disk_bytes=1e12, stop=exporter.client.stop)
    pipeline.add(exporter, [YESTERDAY])
    with pipeline:
        files = pipeline.files(exporter.stream)
        assert next(files).path.read_bytes() == served_file(sim)
        files.close()
    assert [download.status for download in sim.downloads] == [200, 200]
    assert any("download interrupted" in message and "cut off" in message for message in messages)


def test_every_file_of_a_gzip_encoded_run_is_read(simulator):
    sim = simulator(gzip_downloads=True, zipped=True)
    exporter, _ = exporter_for(sim, "USER_ACTIVITY_CALLS_HANDLED")
    days = [Window(TODAY - dt.timedelta(days=d), TODAY - dt.timedelta(days=d)) for d in (3, 2, 1)]
    assert exported_windows(exporter, days) == days


def test_decoding_holds_no_more_than_a_chunk_however_well_the_body_compresses():
    body = b"0" * (40 * client.CHUNK_BYTES)
    wire = gzip.compress(body, 9)
    assert len(wire) < client.CHUNK_BYTES / 4  # one chunk on the wire decodes to forty
    chunks = list(client.decoded(iter([wire]), "gzip"))
    assert b"".join(chunks) == body and max(map(len, chunks)) <= client.CHUNK_BYTES


def test_every_gzip_member_and_a_zlib_deflate_body_are_decoded():
    two_members = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n")
    assert b"".join(client.decoded(iter([two_members[:5], two_members[5:]]), "gzip")) == b"a,b\n1,2\n3,4\n"
    assert b"".join(client.decoded(iter([zlib.compress(b"a,b\n")]), "deflate")) == b"a,b\n"
    assert b"".join(client.decoded(iter([b"a,", b"b\n"]), "identity")) == b"a,b\n"


def test_a_gzip_body_that_ends_early_is_a_transfer_failure_not_a_short_file():
    wire = gzip.compress(b"x" * 100_000)
    with pytest.raises(client.TransientError, match="ended before the end of its gzip stream"):
        list(client.decoded(iter([wire[: len(wire) // 2]]), "gzip"))


def test_an_encoding_the_tap_cannot_decode_is_named():
    with pytest.raises(client.AircallError, match="Content-Encoding 'br'"):
        list(client.decoded(iter([b"..."]), "br"))
