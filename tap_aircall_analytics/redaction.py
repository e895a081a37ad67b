"""Secrets out of everything the tap writes: log lines, exception texts, quoted API answers.

The tap never logs a credential itself, but other text can carry one: an API error body
that echoes the request's headers, a library's DEBUG line holding a presigned link (whose
query string is the signature, a credential to the file for an hour), an exception that
quotes a URL. So every log record is scrubbed as it is made, whichever logger made it
(urllib3 at DEBUG included) and whichever handler writes it, and so is any traceback that
reaches stderr. Scrubbing removes the credentials the run holds (`keep_secret`), the value
of anything that looks like an Authorization header, the user and password of a URL, and
every query string.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
import types
from urllib.parse import quote

REDACTED = "[redacted]"

_secrets: set[str] = set()
_installed = False

#: An Authorization header as an error body or a repr quotes it: `Authorization: Basic abc=`,
#: `'authorization': 'Bearer abc'`, `Proxy-Authorization=abc`.
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=]\s*[\"']?)"
    r"(?!(?:(?:basic|bearer|digest|token)\s+)?\[redacted\])"  # scrubbed already
    r"((?:basic|bearer|digest|token)\s+)?[^\s\"',;}\]]+"
)
#: The user (and password) of a URL: `https://user:password@host`.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@")
#: A query string (`?X-Amz-Signature=...&...`), wherever a link is quoted, even without its host.
_QUERY = re.compile(r"\?(?=[^\s\"'<>#]*=)[^\s\"'<>#]+")
#: A signature or token parameter quoted apart from its query string.
_PARAMETER = re.compile(
    r"(?i)\b((?:x-amz-|x-goog-)?(?:signature|credential|security-token)|sig|access_token|api_token|password)=[^\s&\"'<>]+"
)


def keep_secret(*values: str | None) -> None:
    """Redact `values` from every message from now on (as written, URL-quoted and JSON-escaped)."""
    for value in values:
        if value and len(value) >= 4:  # shorter ones would blank out ordinary words
            _secrets.update({value, quote(value, safe=""), value.replace("/", "\\/")})


def scrub(text: str) -> str:
    """`text` without the secrets this run holds, Authorization values, URL users or query strings.

    Scrubbing twice changes nothing more: a message is scrubbed where it is made and again
    when it is logged.
    """
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _HEADER.sub(lambda match: f"{match[1]}{match[2]}{match[3] or ''}{REDACTED}", text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _QUERY.sub(f"?{REDACTED}", text)
    return _PARAMETER.sub(rf"\1={REDACTED}", text)


def install() -> None:
    """Scrub every log record as it is made, and every traceback printed to stderr, from now on."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def scrubbed_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _scrub_record(record)
        return record

    logging.setLogRecordFactory(scrubbed_record)
    sys.excepthook = _print_scrubbed
    threading.excepthook = lambda hook: _print_scrubbed(hook.exc_type, hook.exc_value, hook.exc_traceback)


_FORMATTER = logging.Formatter()


def _scrub_record(record: logging.LogRecord) -> None:
    """Format the record's message now, scrubbed; its traceback too (then no formatter sees the raw exception)."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is written
        return
    record.msg, record.args = scrub(message), ()
    if record.exc_info:
        record.exc_text = scrub(record.exc_text or _FORMATTER.formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    for name, value in list(vars(record).items()):  # what `extra=` added, which structured formatters write
        if isinstance(value, str) and name not in ("msg", "exc_text", "stack_info"):
            setattr(record, name, scrub(value))


def _print_scrubbed(kind: type[BaseException], error: BaseException | None, trace: types.TracebackType | None) -> None:
    sys.stderr.write(scrub("".join(traceback.format_exception(kind, error, trace))))
