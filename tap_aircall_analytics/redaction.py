"""Secrets out of everything the tap writes: log lines, exception texts, quoted API answers.

The tap never logs a credential itself, but other text can carry one: an API error body
that echoes the request's headers, a library's DEBUG line holding a presigned link (whose
query string is the signature, a credential to the file for an hour), an exception that
quotes a URL. Scrubbing removes the credentials the run holds (`keep_secret`), the value
of anything that looks like an Authorization header, the user and password of a URL, and
every query string.

Records are scrubbed by a logging filter (`ScrubFilter`), set on the tap's own loggers and,
by the command line, on the handlers it writes to (urllib3's DEBUG lines included): a
program that runs the tap in-process keeps its own log record factory and exception hooks.
Scrubbing is linear in the text, whatever the text: every pattern reads a character a
bounded number of times (no pattern can backtrack over a run of characters it already read).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
import types
from urllib.parse import quote

from typing_extensions import override  # typing.override from Python 3.12

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
#: The user (and password) of a URL: `https://user:password@host`. A scheme is at most 32
#: characters (a longer run of letters is tried from one start only), and a user cannot hold `/`,
#: which every scheme's `://` holds: no two tries read the same characters.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s@\"'<>]+@")
#: A word from a `?` on: a query string (`?X-Amz-Signature=...&...`) when it holds a `=`, wherever
#: a link is quoted, even without its host. The match always succeeds and takes the whole rest of the
#: word, so every character is read once (a look-ahead for `=` from each `?` read `????...` n² times).
_QUERY = re.compile(r"\?[^\s\"'<>#]+")
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
    text = _QUERY.sub(_query, text)
    return _PARAMETER.sub(rf"\1={REDACTED}", text)


def _query(match: re.Match[str]) -> str:
    return f"?{REDACTED}" if "=" in match[0] else match[0]


class ScrubFilter(logging.Filter):
    """Scrubs every record it sees (its message, arguments, traceback and extras); drops none."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


SCRUB = ScrubFilter()
#: Loggers whose records may quote a link or a credential, outside the tap's own: urllib3 at DEBUG.
LIBRARY_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


def scrub_loggers(*loggers: logging.Logger | str) -> None:
    """Scrub the records made through these loggers (a logger's filter sees the records it makes)."""
    for logger in loggers:
        (logging.getLogger(logger) if isinstance(logger, str) else logger).addFilter(SCRUB)  # once: a set


def install_cli() -> None:
    """For the command line: scrub whatever its handlers write, and print an uncaught error in one scrubbed line.

    Only the command line's own process is concerned: a program that runs the tap in-process
    keeps its record factory and exception hooks (the tap's loggers scrub their records there).
    """
    global _installed
    for handler in logging.getLogger().handlers:
        handler.addFilter(SCRUB)
    if _installed:
        return
    _installed = True
    sys.excepthook = _print_uncaught
    threading.excepthook = lambda hook: _print_uncaught(hook.exc_type, hook.exc_value, hook.exc_traceback)


#: The most characters of an error's text an uncaught-error line quotes.
MAX_QUOTED = 300


def quoted(text: str, limit: int = MAX_QUOTED) -> str:
    """`text` as a message may quote it: at most `limit` characters, cut with its length said."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _print_uncaught(kind: type[BaseException], error: BaseException | None, trace: types.TracebackType | None) -> None:
    """One scrubbed line; the scrubbed traceback before it only at DEBUG."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        _print_scrubbed(kind, error, trace)
    text = quoted(scrub(" ".join(str(error).split())) if error is not None else "")
    sys.stderr.write(f"tap-aircall-analytics: unexpected {kind.__name__}{': ' + text if text else ''}\n")


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
