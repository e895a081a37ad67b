"""What scrubbing takes out of a message, and what it leaves alone."""

from __future__ import annotations

import logging
import os
import sys
import threading

import pytest

from tap_aircall_analytics import redaction
from tap_aircall_analytics.redaction import REDACTED, scrub

TOKEN = "tok-Zx81/Qp+Lm9"  # with the characters base64 and JSON escaping change


@pytest.fixture(autouse=True)
def known_token():
    redaction.keep_secret(TOKEN)


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("401: denied for Authorization: Basic ZGVtbzpzZWNyZXQ=, Accept: */*", "ZGVtbzpzZWNyZXQ="),
        ("{'Authorization': 'Bearer eyJhbGciOi.abc.def', 'Accept': 'application/json'}", "eyJhbGciOi"),
        ('{"authorization":"Token s3cr3t-value"}', "s3cr3t-value"),
        ("Proxy-Authorization=rawcredential42", "rawcredential42"),
        ('http://10.0.0.2:80 "GET /exports/x.csv?X-Amz-Expires=3600&X-Amz-Signature=abc123 HTTP/1.1" 200', "abc123"),
        ("No connection adapters were found for 'ftp://files/x.csv?sig=abc123&se=2026'", "abc123"),
        ("https://user:p4ssw0rd@files.example.com/x.csv", "p4ssw0rd"),
        ("https://ghp_token123@files.example.com/x.csv", "ghp_token123"),
        ("a link cut apart: X-Amz-Credential=AKIA123%2F20261201 and X-Amz-Signature=deadbeef", "AKIA123"),
        (f"the API echoed {TOKEN} as it was given", TOKEN),
        ('the API echoed "tok-Zx81\\/Qp+Lm9" escaped for JSON', "Qp+Lm9"),
        ("the API echoed tok-Zx81%2FQp%2BLm9 quoted for a URL", "Qp%2BLm9"),
    ],
)
def test_a_credential_in_a_message_is_scrubbed(text, gone):
    scrubbed = scrub(text)
    assert gone not in scrubbed
    assert REDACTED in scrubbed
    assert scrub(scrubbed) == scrubbed  # a message scrubbed where it is made is logged unchanged


@pytest.mark.parametrize(
    "text",
    [
        "api_token is missing: Basic authentication needs both api_id and api_token",
        "end_date 2026-05-01 is before start_date 2026-05-10",
        "calls_history 2026-05-01..2026-05-07: export 9d3f2a1e requested",
        "downloaded 1.2 MB in 0.3 s from https://files.example.com/exports/x.csv",
        "which column? 'Queue' is new",
        "send no Authorization header to the download host",
    ],
)
def test_an_ordinary_message_is_left_alone(text):
    assert scrub(text) == text


def test_a_record_from_any_logger_is_scrubbed_with_its_arguments_and_traceback():
    try:
        raise ValueError(f"InvalidSchema for 'ftp://files/x.csv?X-Amz-Signature=feedface' with {TOKEN}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "urllib3.connectionpool",
        logging.DEBUG,
        __file__,
        1,
        '%s "GET %s HTTP/1.1"',
        ("http://h", "/x?sig=feedface"),
        exc_info,
    )
    record.url = "https://files/x.csv?X-Amz-Signature=feedface"  # as extra= adds it
    redaction._scrub_record(record)
    written = logging.Formatter("%(message)s %(url)s").format(record)
    assert "feedface" not in written and TOKEN not in written
    assert "ValueError" in written and '"GET /x?[redacted] HTTP/1.1"' in written
    assert record.exc_info is None  # no formatter sees the exception itself


def test_a_traceback_that_reaches_stderr_is_scrubbed(capsys):
    try:
        raise RuntimeError(f"cannot fetch https://u:pw-9876@files/x.csv?X-Amz-Signature=feedface ({TOKEN})")
    except RuntimeError as error:
        redaction._print_scrubbed(RuntimeError, error, error.__traceback__)
    printed = capsys.readouterr().err
    assert "Traceback" in printed and "RuntimeError: cannot fetch https://[redacted]@files/x.csv?[redacted]" in printed
    assert "feedface" not in printed and "pw-9876" not in printed and TOKEN not in printed


def test_a_program_that_runs_the_tap_keeps_its_own_hooks_and_gets_the_taps_records_scrubbed():
    from tap_aircall_analytics.tap import TapAircallAnalytics

    factory, hook, thread_hook = logging.getLogRecordFactory(), sys.excepthook, threading.excepthook
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    handler = Collect()
    logging.getLogger().addHandler(handler)
    try:
        tap = TapAircallAnalytics(
            config={"api_id": "demo-api-id", "api_token": "embedded-secret-token-42", "start_date": "2026-11-01"},
            validate_config=True,
        )
        tap.logger.warning("echoed: %s at https://files/x.csv?X-Amz-Signature=feedface", "embedded-secret-token-42")
        logging.getLogger("urllib3.connectionpool").warning('"GET /x.csv?X-Amz-Signature=feedface HTTP/1.1" 200')
    finally:
        logging.getLogger().removeHandler(handler)
    assert (logging.getLogRecordFactory(), sys.excepthook, threading.excepthook) == (factory, hook, thread_hook)
    echoed = [line for line in seen if "echoed" in line or "GET" in line]
    assert len(echoed) == 2
    assert all("feedface" not in line and "embedded-secret-token-42" not in line for line in echoed)


def test_an_uncaught_error_of_the_command_line_is_one_scrubbed_line(capsys):
    try:
        raise RuntimeError(f"cannot fetch https://u:pw-9876@files/x.csv?X-Amz-Signature=feedface ({TOKEN})\nmore")
    except RuntimeError as error:
        redaction._print_uncaught(RuntimeError, error, error.__traceback__)
    printed = capsys.readouterr().err
    assert printed.count("\n") == 1 and "Traceback" not in printed
    assert printed.startswith("tap-aircall-analytics: unexpected RuntimeError: cannot fetch https://[redacted]@files/")
    assert "feedface" not in printed and "pw-9876" not in printed and TOKEN not in printed


@pytest.mark.parametrize("text", ["?" * 1_000_000, "a." * 500_000, "a://" * 250_000, "Authorization: " * 60_000])
def test_scrubbing_is_linear_on_any_text(text):
    started = os.times()
    scrub(text)
    spent = os.times()
    assert spent.user + spent.system - started.user - started.system < 5  # 100,000 '?' took 46 s: quadratic
