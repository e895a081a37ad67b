"""The HTTP client: credentials, exports, downloads, rate limits and retries.

The credential lives here and only here: it goes on requests to the API host, never on
downloads (presigned links on another host), never into a message, a log line or an
exception. Download links are logged without their query string, which holds the
signature.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import logging
import threading
import time
import typing as t
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
import requests.adapters
import tenacity
import urllib3
import urllib3.connection
from tenacity import RetryCallState
from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics.api.budget import RequestBudget, rate_limit_of
from tap_aircall_analytics.clock import Clock, RunClock, Stopped
from tap_aircall_analytics.config.catalogue import (
    EXPORTS_PATH,
    FAILED_STATUSES,
    PROBE_EXPORT_ID,
    STATUS_COMPLETED,
)
from tap_aircall_analytics.redaction import keep_secret, scrub

logger = logging.getLogger("tap_aircall_analytics")

#: Read at a time, per download in flight (a dozen at once hold 3 MiB): a 104 MB file from the simulator
#: comes in 0.08 s, against 0.12 s by 64 KiB.
CHUNK_BYTES = 1 << 18
DEFAULT_TIMEOUT_SECONDS = 30.0  # silence allowed while connecting or between two bytes of an answer
#: The Content-Encodings a download may come in (object storage serves a file uploaded
#: compressed that way): decoded by the tap, so Content-Length is checked on the wire.
DECODED_ENCODINGS = ("gzip", "x-gzip", "deflate")
DEFAULT_DOWNLOAD_SECONDS = 30 * 60.0  # the longest a whole download may take (download_timeout_minutes)
MAX_ANSWER_BYTES = 1 << 20  # the longest API answer read (an export object is a few hundred bytes)
MAX_ERROR_TEXT = 1000  # the most characters of an export's errorMessage kept (to be quoted, scrubbed)
MAX_EXPORT_ID = 200  # the longest export ID the tap accepts (Aircall's are a few dozen characters)


class AircallError(Exception):
    """An error the tap reports in one line and stops on."""


class TransientError(AircallError):
    """A failure that a retry may cure (5xx, 429, a reset connection)."""


class RateLimited(TransientError):
    """A 429: tried again when the budget lets the next request go (see budget.py `back_off`), with no backoff."""


class ExportNotFound(AircallError):
    """The export is gone (404): it must be requested again."""


class LinkExpired(AircallError):
    """The download link was refused (403) or is past its expiry."""


class DownloadTooLong(AircallError):
    """A download ran past download_timeout_minutes: the window fails (a host this slow will not do better)."""


#: Held while a request's bytes are written, and while a run is stopped (`stop_sending`): a byte
#: written after a stop would need the stop to come while the bytes' check of it was under way.
_SEND_GATE = threading.RLock()


def stop_sending(stop: threading.Event) -> None:
    """Stop the run: once this returns, no byte of any request of the run's clients reaches a host."""
    with _SEND_GATE:
        stop.set()


def _stoppable(session: requests.Session, stop: threading.Event) -> requests.Session:
    """`session`, its connections checking `stop` before they write any byte (a request that passed
    its clock's `sleep(0)` just before the stop came would otherwise still be sent)."""

    def send_unless_stopped(send: Callable[[t.Any], None], data: t.Any) -> None:
        with _SEND_GATE:
            if stop.is_set():
                raise Stopped("the run was stopped")
            send(data)

    class Connection(urllib3.connection.HTTPConnection):
        @override
        def send(self, data: t.Any) -> None:
            send_unless_stopped(super().send, data)

    class SecureConnection(urllib3.connection.HTTPSConnection):
        @override
        def send(self, data: t.Any) -> None:
            send_unless_stopped(super().send, data)

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(urllib3.HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    for adapter in session.adapters.values():
        if isinstance(adapter, requests.adapters.HTTPAdapter):
            adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SecurePool}
    return session


def redact(url: str) -> str:
    """Return a URL as a message may show it: its scheme and host alone. Not its user or password,
    nor its query string, where presigned links keep their signature, nor its path, where some
    object stores keep a token."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "a link that is not a URL"
    return f"{parts.scheme}://{host[:100]}/..."


def _message(body: bytes, reason: str) -> str:
    """What an error answer says, scrubbed before it is cut short (a cut secret is still a secret)."""
    try:
        answer = _json(body)
    except ValueError:
        return scrub(body[:2000].decode("utf-8", "replace").strip())[:200] or reason
    if isinstance(answer, dict):
        answer = answer.get("message") or answer.get("error") or answer
    return scrub(str(answer)[:2000])[:500]


def _json(body: bytes) -> object:
    """An answer's JSON; ValueError when it is not JSON, or nested too deep to read."""
    try:
        return jsonlib.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _read_answer(response: requests.Response, what: str) -> bytes:
    """The body of an API answer, at most MAX_ANSWER_BYTES of it (decoded); longer is an error."""
    with response:
        body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    if len(body) > MAX_ANSWER_BYTES:
        raise AircallError(f"{what} answered more than {MAX_ANSWER_BYTES >> 20} MiB: not an answer of the API")
    return body


@dataclass(frozen=True)
class ExportJob:
    """An export object as the API returns it."""

    export_id: str
    status: str
    download_url: str | None = None
    expires_at: dt.datetime | None = None
    zipped: bool = False
    error_message: str | None = None

    @classmethod
    def from_json(cls, body: dict) -> ExportJob:
        """Read an export object, bare or in an `{"export": ...}` wrapper."""
        body = body.get("export", body) if isinstance(body, dict) else {}
        missing = [name for name in ("exportID", "status") if not isinstance(body, dict) or name not in body]
        if missing:  # the fields are named, never their values: a downloadUrl is a credential
            given = ", ".join(sorted(map(str, body))) if isinstance(body, dict) else type(body).__name__
            raise AircallError(
                f"the API answered an export without {' or '.join(missing)} (it gave: {given or 'nothing'})"
            )
        export_id = str(body["exportID"])
        if not export_id or len(export_id) > MAX_EXPORT_ID:
            raise AircallError(
                f"the API answered an export ID of {len(export_id):,} characters (at most {MAX_EXPORT_ID} expected)"
            )
        link = body.get("downloadUrl")
        return cls(
            export_id=export_id,
            status=str(body["status"]).upper(),
            download_url=link if isinstance(link, str) else None,
            expires_at=_moment(body.get("downloadUrlExpiresAt")),
            zipped=body.get("isZipCompressed") in (True, "true", "True", "TRUE"),
            error_message=None if body.get("errorMessage") is None else str(body["errorMessage"])[:MAX_ERROR_TEXT],
        )

    @property
    def done(self) -> bool:
        """True once the export has COMPLETED or failed."""
        return self.status == STATUS_COMPLETED or self.failed

    @property
    def failed(self) -> bool:
        """True when the status can only mean the export will never complete (FAILED and the like)."""
        return self.status in FAILED_STATUSES

    @property
    def link(self) -> str:
        """The download link of a COMPLETED export; an error if the API gave none."""
        if not self.download_url:
            raise AircallError(f"export {self.export_id} is COMPLETED but the API gave no downloadUrl")
        if urlsplit(self.download_url).scheme.lower() not in ("http", "https"):
            raise AircallError(
                f"export {self.export_id} is COMPLETED but its downloadUrl is not an http(s) link: "
                f"{redact(self.download_url)}"
            )
        return self.download_url

    def link_expired(self) -> bool:
        """True when the download link is past its expiry time."""
        return self.expires_at is not None and self.expires_at <= dt.datetime.now(dt.timezone.utc)


def _moment(text: object) -> dt.datetime | None:
    """An ISO-8601 instant (UTC when it names no offset); None when absent or unreadable, so the
    link is used until the download host refuses it, and then refreshed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class AircallClient:
    """Requests, polls and downloads exports."""

    def __init__(
        self,
        api_url: str,
        authorization: str,
        *,
        max_tries: int = 6,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        stop: threading.Event | None = None,
        budget: RequestBudget | None = None,
        clock: Clock | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        download_seconds: float = DEFAULT_DOWNLOAD_SECONDS,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.stop = stop or threading.Event()
        self._api = _stoppable(requests.Session(), self.stop)
        self._api.headers.update({"Authorization": authorization, "Accept": "application/json"})
        self._files = _stoppable(requests.Session(), self.stop)  # no credentials, ever: links are presigned
        self._files.headers["Accept-Encoding"] = "gzip, deflate"  # what `decoded` undoes
        self.max_tries = max_tries
        self.clock = clock or RunClock(self.stop)
        self.budget = budget or RequestBudget()
        self.timeout_seconds = timeout_seconds
        self.download_seconds = download_seconds  # the longest a whole download may take
        self.retries = 0  # transient failures retried, for the run summary
        half = {"multiplier": backoff_seconds / 2, "max": max_backoff_seconds / 2}
        # half the backoff, plus up to as much again at random: the run's threads do not retry in step
        self._backoff = tenacity.wait_exponential(**half) + tenacity.wait_random_exponential(**half)
        self._retrying = tenacity.Retrying(
            sleep=self.clock.sleep,  # a stop ends the wait at once, and no further try is sent
            stop=tenacity.stop_after_attempt(max_tries),
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=self._wait,
            before_sleep=self._say_retrying,
            retry_error_callback=self._give_up,
        )

    # --- exports ----------------------------------------------------------------

    def create_export(self, body: dict) -> ExportJob:
        """Request an export (POST); return its first status."""
        return ExportJob.from_json(self._call("POST", EXPORTS_PATH, json=body))

    def get_export(self, export_id: str) -> ExportJob:
        """Poll an export; a completed export comes with a freshly minted link."""
        return ExportJob.from_json(self._call("GET", f"{EXPORTS_PATH}/{quote(export_id, safe='')}"))

    def read_rate_limit(self) -> int | None:
        """The company's requests a minute, as one answer's headers say (None if they do not).

        The request polls an export that does not exist: it costs one request and creates
        nothing. Raises AircallError when the API does not answer or refuses the credentials.
        """
        path = f"{EXPORTS_PATH}/{quote(PROBE_EXPORT_ID, safe='')}"
        try:
            response = self._api.get(self.api_url + path, timeout=self.timeout_seconds, stream=True)
            body = _read_answer(response, f"GET {EXPORTS_PATH}")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            raise AircallError(f"the API did not answer ({type(error).__name__})") from None
        if response.status_code in (401, 403):
            raise self._client_error(response.status_code, _message(body, response.reason), "GET", EXPORTS_PATH)
        return rate_limit_of(response.headers)

    def _call(self, method: str, path: str, json: dict | None = None) -> dict:
        """The JSON answer of an API request, tried up to `max_tries` times while the failure is transient."""
        return self._retrying(self._try, method, path, json)

    def _try(self, method: str, path: str, json: dict | None) -> dict:
        """One try of an API request, when the budget lets it go; TransientError when another try may cure it."""
        url, what = self.api_url + path, f"{method} {path}"
        self.budget.acquire(self.clock)
        try:
            response = self._api.request(method, url, json=json, timeout=self.timeout_seconds, stream=True)
            body = _read_answer(response, what)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            self.budget.settle(None)
            raise TransientError(f"{what}: {self._silence('the API')}") from None
        except (requests.ConnectionError, urllib3.exceptions.HTTPError) as error:
            self.budget.settle(None)
            raise TransientError(f"{what}: {type(error).__name__}") from None
        except (AircallError, Stopped):
            self.budget.settle(None)
            raise
        status = response.status_code
        self.budget.settle(status, response.headers, now=self.clock.now())
        if status < 400:
            try:
                answer = _json(body)
            except ValueError as error:
                raise AircallError(f"{what} answered {status} with a body that is not JSON ({error})") from None
            return answer  # type: ignore[return-value]  # from_json reads any JSON
        if status == 429:  # every request of the run is held until its Retry-After, the Reset or a backoff
            self.budget.back_off(response.headers, self.clock.now())
            raise RateLimited(f"{what}: 429 Too Many Requests")
        if status >= 500:
            raise TransientError(f"{what}: {status} {response.reason}")
        raise self._client_error(status, _message(body, response.reason), method, path)

    def _silence(self, host: str) -> str:
        return (
            f"{host} did not answer within {self.timeout_seconds:g} s "
            "(request_timeout_seconds: raise it for a slow link)"
        )

    def _wait(self, state: RetryCallState) -> float:
        """No wait after a 429 (the budget holds the next try, see budget.py `back_off`); else the backoff."""
        return 0.0 if isinstance(_failure(state), RateLimited) else self._backoff(state)

    def _say_retrying(self, state: RetryCallState) -> None:
        self.retries += 1
        logger.warning("Retrying %s (try %d of %d)", _failure(state), state.attempt_number + 1, self.max_tries)

    @staticmethod
    def _give_up(state: RetryCallState) -> t.NoReturn:
        raise TransientError(f"{_failure(state)} (gave up after {state.attempt_number} tries)")

    @staticmethod
    def _client_error(status: int, message: str, method: str, path: str) -> AircallError:
        if status == 401:
            return AircallError(
                f"Aircall refused the credentials (401: {message}): check api_id and api_token, or access_token"
            )
        if status == 403:
            return AircallError(
                f"Aircall refused access (403: {message}): the Analytics+ add-on must be enabled "
                "for the company, and the key must be allowed to read analytics"
            )
        if status == 404:
            return ExportNotFound(f"{method} {path}: 404 ({message})")
        return AircallError(f"Aircall rejected the export request ({status}: {message})")

    # --- downloads --------------------------------------------------------------

    def download(self, url: str, destination: Path, claim: Callable[[int], None] | None = None) -> int:
        """Stream a presigned link to `destination` without credentials; return the file's size.

        `claim(total)` is called before the file grows to `total` bytes (with Content-Length
        first, when the body is the file as it is): it raises to stop the download. A body
        sent with a Content-Encoding is written decoded; Content-Length counts the bytes on
        the wire, so that is what is checked. Raises LinkExpired on 403,
        ExportNotFound on 404 and TransientError when the body stops short of its
        Content-Length (or of the end of its gzip stream) or the connection drops.
        """
        self.clock.sleep(0)  # a stopped run sends nothing more
        if logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG):
            keep_secret(urlsplit(url).path)  # its DEBUG line quotes the path, where some stores keep a token
        wire = 0
        deadline = time.monotonic() + self.download_seconds

        def counted(raw: urllib3.HTTPResponse) -> Iterator[bytes]:
            """The body as it comes (each read returns what one read of the socket gave), within the deadline."""
            nonlocal wire
            while chunk := raw.read1(CHUNK_BYTES, decode_content=False):
                wire += len(chunk)
                yield chunk
                if time.monotonic() > deadline:
                    raise DownloadTooLong(
                        f"the download took longer than {self.download_seconds / 60:g} minutes "
                        "(download_timeout_minutes: raise it for a slow link)"
                    )

        try:
            with self._files.get(url, stream=True, timeout=self.timeout_seconds) as response:
                if response.status_code in (401, 403):
                    raise LinkExpired(f"download link refused ({response.status_code}) for {redact(url)}")
                if response.status_code == 404:
                    raise ExportNotFound(f"download link not found for {redact(url)}")
                if response.status_code >= 400:
                    raise TransientError(f"download of {redact(url)} answered {response.status_code}")
                expected = response.headers.get("Content-Length")
                encoding = response.headers.get("Content-Encoding", "")
                plain = encoding.strip().lower() in ("", "identity")  # Content-Length is then the file's size
                if claim is not None and plain and expected and expected.isdigit():
                    claim(int(expected))  # before the body is read: room for the whole file
                body = counted(response.raw)
                size = 0
                with open(destination, "wb") as handle:
                    for chunk in decoded(body, encoding):
                        self.clock.sleep(0)
                        if claim is not None:
                            claim(size + len(chunk))
                        handle.write(chunk)
                        size += len(chunk)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise TransientError(f"download of {redact(url)}: {self._silence('the download host')}") from None
        except (requests.ConnectionError, urllib3.exceptions.HTTPError) as error:
            raise TransientError(f"download of {redact(url)} was cut off ({type(error).__name__})") from None
        except requests.RequestException as error:  # its text quotes the whole link: named, not quoted
            raise AircallError(f"the download link {redact(url)} cannot be fetched ({type(error).__name__})") from None
        except TransientError as error:
            raise TransientError(f"download of {redact(url)}: {error}") from None
        except DownloadTooLong as error:
            raise DownloadTooLong(f"download of {redact(url)}: {error}") from None
        if expected is not None and wire != int(expected):
            raise TransientError(f"download of {redact(url)} stopped at {wire} of {expected} bytes on the wire")
        return size


def _failure(state: RetryCallState) -> BaseException | None:
    """The exception that ended a try."""
    return state.outcome.exception() if state.outcome is not None else None


def decoded(wire: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """The bytes of a body sent with `Content-Encoding: encoding`, never more than CHUNK_BYTES at once.

    A small compressed chunk can stand for a great many bytes: decoding is bounded by the
    chunk size, not by what the chunk holds. A gzip body may hold several members one
    after another (RFC 1952); one that ends inside a member was cut off.
    """
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        yield from wire
        return
    if coding not in DECODED_ENCODINGS:
        raise AircallError(f"the file is sent with Content-Encoding '{encoding}', which the tap does not decode")
    decoder: zlib._Decompress | None = None  # None between gzip members
    for data in wire:
        more = bool(data)
        while more:
            decoder = decoder or zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or a zlib header
            try:
                chunk = decoder.decompress(data, CHUNK_BYTES)
            except zlib.error as error:
                raise TransientError(f"the body is not valid {coding} data ({error})") from None
            if chunk:
                yield chunk
            if decoder.eof:
                data, decoder = decoder.unused_data, None
                more = bool(data)
            else:
                data = decoder.unconsumed_tail
                more = bool(data) or len(chunk) == CHUNK_BYTES  # output held back by the bound
    if decoder is not None:
        raise TransientError(f"the body ended before the end of its {coding} stream")
