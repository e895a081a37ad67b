"""A local Aircall Analytics API: the export flow, its errors, its limits and its faults.

Two HTTP servers run in threads: the API (exports, auth, rate limits) and, on another
host, the object storage that serves presigned download links. Every fault is a
setting of `SimulatorConfig`, so a test or a user's pipeline check can turn it on.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import typing as t
import uuid
import zipfile
import zlib
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from typing_extensions import override  # typing.override from Python 3.12

from tap_aircall_analytics import clock
from tap_aircall_analytics.config.catalogue import (
    EXPORTS_PATH,
    FILTER_SHAPES,
    KNOWN_FILTERS,
    LIMIT_HEADER,
    OPTION_SHAPES,
    REMAINING_HEADER,
    REPORTS_BY_API_NAME,
    RESET_HEADER,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PENDING,
    Report,
    shape_mistake,
)
from tap_aircall_analytics.simulator.data import FileOptions, Filters, ReportData, queue_report, write_csv
from tap_aircall_analytics.simulator.dialects import Dialect

RATE_LIMIT_STYLES = ("fixed", "sliding", "bucket")
RESET_STYLES = ("epoch", "seconds")
RELATIVE_RANGES = ("TODAY", "YESTERDAY", "THIS_WEEK", "LAST_WEEK", "THIS_MONTH", "LAST_MONTH")


@dataclass
class SimulatorConfig:
    """What the simulator serves, and which faults it injects."""

    seed: int = 1
    api_id: str = "demo-api-id"
    api_token: str = "demo-api-token"
    access_token: str | None = "demo-access-token"
    analytics_plus: bool = True  # False: every call answers 403, as for an account without the add-on
    calls_per_day: int = 40
    # Faults and timings
    export_seconds: float = 0.2  # time for an export to complete
    export_seconds_per_day: float = 0.0  # and this much more per day of its range
    export_jitter: float = 0.0  # times vary by up to this share either way (0.5: +-50%), seeded per request
    fail_first_export: bool = False  # the first export of each report fails
    fail_over_days: int | None = None  # exports over this many days fail with "too many rows"
    fail_days: frozenset[dt.date] = frozenset()  # exports that include one of these days fail
    fail_report: str | None = None  # every export of this report fails at once
    forget_first_export: bool = False  # the first export answers 404 once it has completed
    refuse_first_download: bool = False  # the first download of each export answers 403
    error_every: int | None = None  # every Nth API request answers 500
    cut_download_once: bool = False  # the first download is cut off half-way
    gzip_downloads: bool = False  # files are served with Content-Encoding: gzip, as object storage serves
    # a file uploaded compressed: Content-Length counts the compressed bytes
    link_seconds: float = 3600.0  # lifetime of a download link
    export_ttl_seconds: float | None = None  # an export is forgotten (404) after this long
    rate_limit: int = 120  # API requests per rate window
    rate_window_seconds: float = 60.0
    rate_limit_style: str = "fixed"  # how the limiter counts: fixed windows, a sliding log, or a token bucket
    rate_reset_style: str = "epoch"  # X-AircallApi-Reset as a UNIX time ("epoch") or the seconds left ("seconds")
    rate_bucket_size: int | None = None  # the bucket's capacity (default: a sixth of the limit)
    background_per_minute: int = 0  # the company's other integrations: requests a minute on the same budget
    background_burst: int = 5  # sent this many at once
    zipped: bool = False
    bom: bool = False
    crlf: bool = False
    shuffle_columns: bool = False
    drop_column: str | None = None  # a contract column left out of every file
    extra_column: str | None = None  # a column not in the contract added to every file, text
    typed_column: str | None = None  # "Label:kind": a column not in the contract, integer, duration or percent
    rename_column: str | None = None  # "Old=New": a contract column under another label
    bad_cells_every: int | None = None  # about one row in N holds a bad cell (data.bad_cell_column)
    extra_report: str | None = None  # one more report name, unknown to the catalogue (data.queue_report)
    empty_days: frozenset[dt.date] = frozenset()
    reuse_files: bool = False  # a request asked before serves the file made then (for benchmarks)
    serve_file: str | None = None  # every export serves this file as it is (hostile files), announced as `zipped` says
    # A hostile API
    echo_headers: bool = False  # error answers quote the request's headers, Authorization included
    export_status: str | None = None  # a ready export answers this status instead of COMPLETED
    drop_export_field: str | None = None  # a completed export is answered without this field
    export_id_prefix: str = ""  # export IDs start with this text (say "../../")
    link_scheme: str = "http"  # the scheme of download links (say "ftp")
    link_userinfo: str | None = None  # "USER:PASSWORD" written into download links
    link_path_token: str | None = None  # a token written into download links' paths, as some object stores do
    silent_host: str | None = None  # "api" or "downloads": that host takes requests and never answers
    trickle_seconds: float | None = None  # the download host sends one byte of the file every this many seconds
    endless_download: bool = False  # downloads have no Content-Length and never end: rows, without end
    gzip_bomb_mb: int = 0  # downloads are Content-Encoding: gzip, a few KB that decode to this many MB
    answer_headers: str | None = None  # "Name=value;Name=value": headers every API answer carries (over its own)
    poll_answer: str | None = None  # "huge" (100 MB) or "deep" (JSON nested 100,000 deep): every poll's answer
    error_message: str | None = None  # the errorMessage of every export that fails (with fail_report)
    dialect: str | None = None  # another spelling of every file: "snake,iso-ms-z,seconds,true-false" (dialects.py)
    now: str | None = None  # the simulator's clock, an ISO 8601 instant; default: the end of the injected
    # today (AIRCALL_ANALYTICS_TODAY) when there is one, else the real time. No export holds a row after it.
    # Test events
    hold_exports: bool = False  # exports that would complete stay PENDING until Simulator.release_exports()

    def __post_init__(self) -> None:
        Dialect.parse(self.dialect)  # a mistake stops the simulator at once, naming the options
        if self.now:
            dt.datetime.fromisoformat(self.now)  # a mistake stops the simulator at once
        if self.rate_limit_style not in RATE_LIMIT_STYLES:
            raise ValueError(
                f"rate_limit_style must be one of {', '.join(RATE_LIMIT_STYLES)}, not {self.rate_limit_style!r}"
            )
        if self.rate_reset_style not in RESET_STYLES:
            raise ValueError(
                f"rate_reset_style must be one of {', '.join(RESET_STYLES)}, not {self.rate_reset_style!r}"
            )

    def file_options(self) -> FileOptions:
        """The CSV format options these settings ask for."""
        return FileOptions(
            self.bom,
            self.crlf,
            self.shuffle_columns,
            self.drop_column,
            self.extra_column,
            self.typed_column,
            self.rename_column,
            self.bad_cells_every,
            Dialect.parse(self.dialect),
        )

    def reports(self) -> dict[str, Report]:
        """The reports served, by name: the catalogue's, and the `extra_report` drift."""
        if not self.extra_report:
            return REPORTS_BY_API_NAME
        return {**REPORTS_BY_API_NAME, self.extra_report: queue_report(self.extra_report)}


class RequestRejected(Exception):
    """An API request answered with an error status and a JSON message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Export:
    """One export job and its file."""

    export_id: str
    report: str
    created: float
    ready_at: float
    payload: dict
    error: str | None = None
    path: str | None = None
    rows: int | None = None
    zipped: bool = False
    forgotten: bool = False  # answers 404 once completed (the forget_first_export fault)
    downloads: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class BudgetRecord:
    """What the company's rate limit saw: the tap's requests and the other integrations'."""

    requests: int = 0  # the tap's (every API request the simulator served)
    refused: int = 0  # the tap's requests answered 429
    lowest_remaining: int | None = None  # the lowest Remaining answered to the tap
    background_requests: int = 0
    background_refused: int = 0  # the other integrations' requests over the limit
    lowest_remaining_overall: int | None = None  # after any request, the others' included
    tap_times: list[float] = field(default_factory=list)  # when each of the tap's requests came (UNIX time)

    def count(self, requests: int, refused: int, remaining: int, *, background: bool) -> None:
        """Count requests on the budget (with the simulator's lock held)."""
        if not background:
            self.tap_times.append(time.time())
        if background:
            self.background_requests += requests
            self.background_refused += refused
        else:
            self.requests += requests
            self.refused += refused
            if not refused:
                self.lowest_remaining = _lowest(self.lowest_remaining, remaining)
        self.lowest_remaining_overall = _lowest(self.lowest_remaining_overall, remaining)


def _lowest(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


@dataclass
class DownloadRecord:
    """What the download host saw of one request."""

    export_id: str
    had_authorization: bool
    status: int


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Simulator:
    """The simulated API and download host, started in threads.

    Use it as a context manager: `with Simulator(SimulatorConfig()) as sim: sim.api_url`.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        download_host: str = "127.0.0.2",
        download_port: int = 0,
    ) -> None:
        self.config = config or SimulatorConfig()
        self._lock = threading.Lock()
        self._exports: dict[str, Export] = {}
        self._secret = os.urandom(16)
        self._workdir = tempfile.mkdtemp(prefix="aircall-simulator-")
        self._request_count = 0
        self._rate_window_start = time.time()
        self._rate_used = 0
        self._rate_log: collections.deque[float] = collections.deque()  # sliding: the requests of the window
        self._rate_tokens = float(self._bucket_size())  # bucket
        self._rate_filled_at = time.time()
        self._failed_reports: set[str] = set()
        self._cut_done = False
        self._bomb: bytes | None = None  # the gzip bomb of gzip_bomb_mb, made on its first download
        self._made: dict[str, tuple[str, int | None]] = {}  # request -> the file made for it
        self.exports_created: Counter[str] = Counter()
        self.export_seconds: list[tuple[str, int, float]] = []  # (report, days, seconds to complete) per export
        self.budget = BudgetRecord()
        self.api_requests: list[tuple[str, str, dict | None]] = []
        self.downloads: list[DownloadRecord] = []
        self.links: list[str] = []  # every download link minted: tests look for their signatures in logs
        self._stopping = threading.Event()  # releases the requests a silent host holds
        self._released = threading.Event()  # hold_exports: set by release_exports(), cleared by hold_exports()
        self._changed = threading.Condition()  # notified after every answer and finished file (wait_until)
        self._api = _Server((host, port), _handler(self, self._handle_api, "api"))
        self._files = _Server((download_host, download_port), _handler(self, self._handle_download, "downloads"))
        self._threads: list[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The base URL of the API, as the tap's `api_url` setting takes it."""
        host, port = self._api.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def download_url(self) -> str:
        """The base URL of the download host."""
        host, port = self._files.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Simulator:
        """Serve both hosts in background threads (and the other integrations' requests, if asked)."""
        for server in (self._api, self._files):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.config.background_per_minute > 0:
            threading.Thread(target=self._background, name="background-integrations", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the generated files."""
        self._stopping.set()
        for server in (self._api, self._files):
            server.shutdown()
            server.server_close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def expected_rows(
        self,
        report_name: str,
        first: dt.date,
        last: dt.date,
        timezone: str = "UTC",
        request_filter: dict | None = None,
    ) -> tuple[list[str], list[list[str]]]:
        """Return the contract labels and the rows an export of this range holds."""
        data = self._data(self.config.reports()[report_name], first, last, timezone, request_filter or {}, True)
        return data.labels, list(data.rows())

    # --- events for tests --------------------------------------------------------
    # A test waits for what the simulator saw, and decides when exports complete, instead of
    # sleeping or timing: "all in flight together" is "all requested before any was released".

    def release_exports(self) -> None:
        """Let held exports complete (`hold_exports`), those requested later too."""
        self._released.set()
        self._notify()

    def hold_exports(self) -> None:
        """From now on, exports that would complete stay PENDING until `release_exports()`."""
        self.config.hold_exports = True
        self._released.clear()

    def wait_until(self, condition: t.Callable[[], bool], timeout: float = 120) -> bool:
        """Wait until `condition()` holds, checked after every answer and finished file; False on timeout.

        The timeout only ends a test whose condition never comes true; no test passes by it.
        """
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def exports_ready(self) -> int:
        """How many exports have their file made, or failed."""
        with self._lock:
            return sum(export.done.is_set() for export in self._exports.values())

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _held(self) -> bool:
        return self.config.hold_exports and not self._released.is_set()

    # --- the API host -----------------------------------------------------------

    def _handle_api(self, request: BaseHTTPRequestHandler, method: str) -> tuple[int, dict | bytes, dict[str, str]]:
        headers = self._count_rate(request)
        try:
            body = self._read_json(request) if method == "POST" else None
            self.api_requests.append((method, request.path, body))
            self._check_faults_and_auth(request)
            path = urlsplit(request.path).path.rstrip("/")
            if method == "POST" and path == EXPORTS_PATH:
                return HTTPStatus.CREATED, self._create_export(body or {}), headers
            match = re.fullmatch(re.escape(EXPORTS_PATH) + r"/([^/]+)", path)
            if method == "GET" and match:
                answer = self._poll_export(unquote(match.group(1)))
                if self.config.poll_answer:
                    return HTTPStatus.OK, _hostile_answer(self.config.poll_answer, answer), headers
                return HTTPStatus.OK, answer, headers
            raise RequestRejected(HTTPStatus.NOT_FOUND, f"No route for {method} {path}")
        except RequestRejected as rejected:
            message = rejected.message
            if self.config.echo_headers:
                message += " (denied for " + ", ".join(f"{k}: {v}" for k, v in request.headers.items()) + ")"
            return rejected.status, {"message": message}, {**headers, **rejected.headers}

    def _count_rate(self, request: BaseHTTPRequestHandler) -> dict[str, str]:
        headers, refused, wait = self._spend(1, background=False)
        if refused:
            request.rate_limited = (headers, wait)  # type: ignore[attr-defined]  # read by _check_faults_and_auth
        return headers

    def _spend(self, requests: int, *, background: bool) -> tuple[dict[str, str], int, int]:
        """Count `requests` on the company's budget; return the headers, how many were refused, Retry-After."""
        config = self.config
        with self._lock:
            now = time.time()
            refused, reset, retry = self._take(now, requests)
            self._request_count += 0 if background else requests
            remaining = self._remaining()
            self.budget.count(requests, refused, remaining, background=background)
        shown = int(reset + 0.999) if config.rate_reset_style == "epoch" else max(0, int(reset - now + 0.999))
        headers = {LIMIT_HEADER: str(config.rate_limit), REMAINING_HEADER: str(remaining), RESET_HEADER: str(shown)}
        for item in (config.answer_headers or "").split(";"):
            name, equals, value = item.partition("=")
            if equals:
                headers[name] = value
        return headers, refused, max(1, int(retry + 0.999))

    def _bucket_size(self) -> int:
        return self.config.rate_bucket_size or max(1, self.config.rate_limit // 6)

    def _take(self, now: float, requests: int) -> tuple[int, float, float]:
        """Count `requests` in the limiter's own way (lock held): how many are refused, the Reset, the Retry-After.

        Fixed windows count refused requests too; a sliding log and a bucket count only those let through.
        """
        config = self.config
        limit, window = config.rate_limit, config.rate_window_seconds
        if config.rate_limit_style == "sliding":
            while self._rate_log and self._rate_log[0] <= now - window:
                self._rate_log.popleft()
            accepted = max(0, min(requests, limit - len(self._rate_log)))
            self._rate_log.extend([now] * accepted)
            frees = self._rate_log[0] + window if self._rate_log else now
            return requests - accepted, frees, frees - now
        if config.rate_limit_style == "bucket":
            size, rate = self._bucket_size(), limit / window
            self._rate_tokens = min(size, self._rate_tokens + (now - self._rate_filled_at) * rate)
            self._rate_filled_at = now
            accepted = max(0, min(requests, int(self._rate_tokens)))
            self._rate_tokens -= accepted
            return requests - accepted, now + (size - self._rate_tokens) / rate, (1 - self._rate_tokens % 1) / rate
        if now >= self._rate_window_start + window:
            self._rate_window_start, self._rate_used = now, 0
        refused = max(0, min(requests, self._rate_used + requests - limit))
        self._rate_used += requests
        reset = self._rate_window_start + window
        return refused, reset, reset - now

    def _remaining(self) -> int:
        config = self.config
        if config.rate_limit_style == "sliding":
            return config.rate_limit - len(self._rate_log)
        if config.rate_limit_style == "bucket":
            return int(self._rate_tokens)
        return max(0, config.rate_limit - self._rate_used)

    def _background(self) -> None:
        """The company's other integrations, until stopped: a burst every so often."""
        config = self.config
        interval = 60.0 * config.background_burst / config.background_per_minute
        while not self._stopping.wait(interval):
            self.other_integrations_burst()

    def other_integrations_burst(self) -> dict[str, str]:
        """Spend one burst of the other integrations' requests on the budget; return its headers."""
        return self._spend(self.config.background_burst, background=True)[0]

    def _check_faults_and_auth(self, request: BaseHTTPRequestHandler) -> None:
        limited = getattr(request, "rate_limited", None)
        if limited:
            retry_after = {"Retry-After": str(limited[1]), **limited[0]}  # answer_headers may say otherwise
            raise RequestRejected(HTTPStatus.TOO_MANY_REQUESTS, "Too many requests", retry_after)
        every = self.config.error_every
        if every and self._request_count % every == 0:
            raise RequestRejected(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error")
        if not self._authorized(request.headers.get("Authorization", "")):
            raise RequestRejected(HTTPStatus.UNAUTHORIZED, "Unauthorized: invalid API credentials")
        if not self.config.analytics_plus:
            raise RequestRejected(
                HTTPStatus.FORBIDDEN, "Forbidden: the Analytics+ add-on is not enabled for this company"
            )

    def _authorized(self, header: str) -> bool:
        config = self.config
        scheme, _, credential = header.partition(" ")
        if scheme == "Bearer" and config.access_token:
            return hmac.compare_digest(credential, config.access_token)
        if scheme == "Basic":
            expected = base64.b64encode(f"{config.api_id}:{config.api_token}".encode()).decode()
            return hmac.compare_digest(credential, expected)
        return False

    @staticmethod
    def _read_json(request: BaseHTTPRequestHandler) -> dict:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Request body must be a JSON object")
        return body

    def _create_export(self, body: dict) -> dict:
        report, first, last, timezone, request_filter, daily = self._validate(body)
        config = self.config
        now = time.time()
        export_id = config.export_id_prefix + str(uuid.uuid4())
        seconds = self._export_seconds(body, (last - first).days + 1)
        export = Export(export_id, report, now, now + seconds, body, zipped=config.zipped)
        with self._lock:
            self.exports_created[report] += 1
            if config.fail_first_export and report not in self._failed_reports:
                self._failed_reports.add(report)
                export.error = "Report generation failed: internal error"
            elif (config.fail_over_days is not None and (last - first).days + 1 > config.fail_over_days) or any(
                first <= day <= last for day in config.fail_days
            ):
                export.error = "Report generation failed: too many rows"
            elif report == config.fail_report:
                export.error = config.error_message or "Report generation failed: report unavailable"
                export.ready_at = now
            if config.forget_first_export and not self._exports:
                export.forgotten = True
            self._exports[export.export_id] = export
            self.export_seconds.append((report, (last - first).days + 1, export.ready_at - now))
        if export.error:
            export.done.set()
        elif config.reuse_files and self._made.get(json.dumps(body, sort_keys=True)):
            export.path, export.rows = self._made[json.dumps(body, sort_keys=True)]
            export.done.set()
        else:
            data = self._data(self.config.reports()[report], first, last, timezone, request_filter, daily)
            threading.Thread(
                target=self._write_file, args=(export, data, json.dumps(body, sort_keys=True)), daemon=True
            ).start()
        return self._export_object(export)

    def _export_seconds(self, body: dict, days: int) -> float:
        """How long an export stays PENDING: longer for longer ranges, varying (the same request, the same time)."""
        config = self.config
        seconds = config.export_seconds + config.export_seconds_per_day * days
        if not config.export_jitter:
            return seconds
        digest = hashlib.sha256(f"{config.seed}:{json.dumps(body, sort_keys=True)}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1), from the seed and the request
        return seconds * (1 + config.export_jitter * (2 * share - 1))

    def _validate(self, body: dict) -> tuple[str, dt.date, dt.date, str, dict, bool]:
        request_input = body.get("input")
        if not isinstance(request_input, dict):
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Missing required field: input")
        report = request_input.get("reportName")
        if not report:
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Missing required field: input.reportName")
        if report not in self.config.reports():
            raise RequestRejected(HTTPStatus.BAD_REQUEST, f"Invalid input.reportName: {report}")
        request_filter = request_input.get("filter")
        if not isinstance(request_filter, dict):
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Missing required field: input.filter")
        timezone = request_filter.get("timezone")
        if not timezone:
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Missing required field: input.filter.timezone")
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise RequestRejected(HTTPStatus.BAD_REQUEST, f"Invalid input.filter.timezone: {timezone}") from None
        unknown = set(request_filter) - KNOWN_FILTERS - {"dateFilter", "timezone"}
        if unknown:
            raise RequestRejected(HTTPStatus.BAD_REQUEST, f"Unknown filter key: {', '.join(sorted(unknown))}")
        options = request_input.get("options") or {}
        for where, given, shapes in (("filter", request_filter, FILTER_SHAPES), ("options", options, OPTION_SHAPES)):
            for key in sorted(set(given) & set(shapes)):
                if (mistake := shape_mistake(key, given[key], shapes)) is not None:
                    raise RequestRejected(HTTPStatus.BAD_REQUEST, f"input.{where}.{mistake}")
        unknown_options = set(options) - set(OPTION_SHAPES)
        if unknown_options:
            raise RequestRejected(HTTPStatus.BAD_REQUEST, f"Unknown option: {', '.join(sorted(unknown_options))}")
        today = self.today(zone)
        first, last = self._date_range(request_filter.get("dateFilter"), today)
        retention = self.config.reports()[report]
        earliest = retention.earliest_day(today)
        if earliest is not None and first < earliest:
            raise RequestRejected(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"fromDate {first} is before the retention limit of {report} "
                f"({retention.retention_text}): the earliest date is {earliest}",
            )
        return report, first, last, timezone, request_filter, options.get("dateBreakdown") == "DAILY"

    def now(self, zone: dt.tzinfo) -> float:
        """The moment of a request (Unix seconds): `now`, else the end of the injected today, else the real time."""
        if self.config.now:
            moment = dt.datetime.fromisoformat(self.config.now)
            return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).timestamp()
        if os.environ.get(clock.TODAY_VARIABLE):
            return dt.datetime.combine(clock.today(zone) + dt.timedelta(days=1), dt.time(), zone).timestamp()
        return time.time()

    def today(self, zone: dt.tzinfo) -> dt.date:
        """Today in `zone`, by the simulator's clock."""
        if self.config.now:
            return dt.datetime.fromtimestamp(self.now(zone), zone).date()
        return clock.today(zone)

    @staticmethod
    def _date_range(date_filter: object, today: dt.date) -> tuple[dt.date, dt.date]:
        if not isinstance(date_filter, dict):
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "Missing required field: input.filter.dateFilter")
        forms = [key for key in ("absoluteRange", "relative") if key in date_filter]
        if len(forms) != 1:
            raise RequestRejected(
                HTTPStatus.BAD_REQUEST,
                "input.filter.dateFilter must hold exactly one of absoluteRange or relative",
            )
        if forms[0] == "relative":
            return _relative_range(date_filter["relative"], today)
        absolute = date_filter["absoluteRange"]
        try:
            first = dt.date.fromisoformat(absolute["fromDate"])
            last = dt.date.fromisoformat(absolute["toDate"])
        except (KeyError, TypeError, ValueError):
            raise RequestRejected(
                HTTPStatus.BAD_REQUEST,
                "input.filter.dateFilter.absoluteRange needs fromDate and toDate as YYYY-MM-DD",
            ) from None
        if last < first:
            raise RequestRejected(HTTPStatus.BAD_REQUEST, "toDate is before fromDate")
        return first, last

    def _data(self, report, first, last, timezone, request_filter, daily) -> ReportData:
        config = self.config
        return ReportData(
            report,
            first,
            last,
            timezone,
            seed=config.seed,
            calls_per_day=config.calls_per_day,
            filters=Filters.from_request(request_filter),
            empty_days=config.empty_days,
            daily=daily,
            until=int(self.now(zoneinfo.ZoneInfo(timezone))),
        )

    def _write_file(self, export: Export, data: ReportData, request: str) -> None:
        name = hashlib.sha256(export.export_id.encode()).hexdigest()  # any ID, even one too long for a file name
        path = os.path.join(self._workdir, name + (".zip" if export.zipped else ".csv"))
        options = self.config.file_options()
        if self.config.serve_file:
            shutil.copyfile(self.config.serve_file, path)
        elif export.zipped:
            with (
                zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
                archive.open(f"{export.report.lower()}.csv", "w") as member,
                _text(member) as handle,
            ):
                export.rows = write_csv(data, handle, options, self.config.seed)
        else:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                export.rows = write_csv(data, handle, options, self.config.seed)
        export.path = path
        self._made[request] = (path, export.rows)
        export.done.set()
        self._notify()

    def _poll_export(self, export_id: str) -> dict:
        with self._lock:
            export = self._exports.get(export_id)
        ttl = self.config.export_ttl_seconds
        gone = export is not None and export.forgotten and time.time() >= export.ready_at
        if export is None or gone or (ttl is not None and time.time() > export.created + ttl):
            raise RequestRejected(HTTPStatus.NOT_FOUND, f"Export {export_id} not found")
        return self._export_object(export)

    def _export_object(self, export: Export) -> dict:
        body = {"exportID": export.export_id, "createdAt": _iso(export.created), "status": STATUS_PENDING}
        name = (export.payload.get("input", {}).get("exportOptions") or {}).get("exportName")
        if name:
            body["exportName"] = name
        if time.time() < export.ready_at or not export.done.is_set():
            return body
        if export.error:
            return {**body, "status": STATUS_FAILED, "errorMessage": export.error}
        if self._held():
            return body
        if self.config.export_status:
            return {**body, "status": self.config.export_status}
        expires = time.time() + self.config.link_seconds
        completed = {
            **body,
            "status": STATUS_COMPLETED,
            "format": "CSV",
            "isZipCompressed": export.zipped,
            "downloadUrl": self._sign(export.export_id, expires),
            "downloadUrlExpiresAt": _iso(expires),
        }
        completed.pop(self.config.drop_export_field or "", None)
        return completed

    # --- the download host ------------------------------------------------------

    def _signature(self, export_id: str, stamp: str) -> str:
        return hmac.new(self._secret, f"{export_id}:{stamp}".encode(), hashlib.sha256).hexdigest()

    def _sign(self, export_id: str, expires: float) -> str:
        stamp = f"{expires:.3f}"
        signature = self._signature(export_id, stamp)
        config = self.config
        host = f"{config.link_userinfo}@" if config.link_userinfo else ""
        host += self.download_url.partition("://")[2]
        token = f"{quote(config.link_path_token, safe='')}/" if config.link_path_token else ""
        path = f"/exports/{token}{quote(export_id, safe='')}.csv"
        link = f"{config.link_scheme}://{host}{path}?X-Expires={stamp}&X-Signature={signature}"
        self.links.append(link)
        return link

    def _handle_download(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        match = re.fullmatch(r"/exports/(?:[^/]+/)?([^/]+)\.csv", url.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        export_id = unquote(match.group(1)) if match else ""
        status = self._download_status(export_id, query)
        self.downloads.append(DownloadRecord(export_id, "Authorization" in request.headers, status))
        if status != HTTPStatus.OK:
            message = {403: b"Request has expired or its signature does not match", 404: b"NoSuchKey"}
            _send(request, status, message.get(status, b"Bad request"), "text/plain")
            return
        export = self._exports[export_id]
        with self._lock:
            cut = self.config.cut_download_once and not self._cut_done
            self._cut_done = self._cut_done or cut
        assert export.path is not None  # checked by _download_status
        path, headers = export.path, {}
        config = self.config
        if config.trickle_seconds or config.endless_download or config.gzip_bomb_mb:
            self._send_hostile_download(request, path)
            return
        if self.config.gzip_downloads:
            path, headers = self._gzipped(export.path), {"Content-Encoding": "gzip"}
        _send_file(request, path, "application/zip" if export.zipped else "text/csv", cut_half=cut, headers=headers)

    def _send_hostile_download(self, request: BaseHTTPRequestHandler, path: str) -> None:
        """A download that trickles, never ends, or is a gzip bomb (see the settings), until the simulator stops."""
        config = self.config
        request.send_response(HTTPStatus.OK)
        request.send_header("Content-Type", "text/csv")
        try:
            if config.trickle_seconds:
                data = Path(path).read_bytes()
                request.send_header("Content-Length", str(len(data)))
                request.end_headers()
                for position in range(len(data)):
                    request.wfile.write(data[position : position + 1])
                    request.wfile.flush()
                    if self._stopping.wait(config.trickle_seconds):
                        break
            elif config.endless_download:
                request.send_header("Connection", "close")
                request.end_headers()
                request.close_connection = True
                with open(path, "rb") as handle:
                    request.wfile.write(handle.readline())  # the header, then its last row without end
                    rows = handle.readlines() or [b"\n"]
                block = rows[-1] * max(1, (1 << 16) // len(rows[-1]))
                while not self._stopping.is_set():
                    request.wfile.write(block)
            else:
                with self._lock:  # made once: a few seconds of compressing
                    if self._bomb is None:
                        header = Path(path).read_bytes().split(b"\n", 1)[0] + b"\n"
                        self._bomb = _gzip_bomb(header, config.gzip_bomb_mb)
                body = self._bomb
                request.send_header("Content-Encoding", "gzip")
                request.send_header("Content-Length", str(len(body)))
                request.end_headers()
                request.wfile.write(body)
        except (ConnectionError, TimeoutError):  # the tap gave up: what the test wants
            request.close_connection = True

    def _gzipped(self, path: str) -> str:
        """The gzip-compressed copy of a file, made on its first download."""
        compressed = path + ".gz"
        with self._lock:
            if not os.path.exists(compressed):
                with open(path, "rb") as source, gzip.open(compressed + ".part", "wb", compresslevel=1) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                os.replace(compressed + ".part", compressed)
        return compressed

    def _download_status(self, export_id: str, query: dict[str, str]) -> int:
        export = self._exports.get(export_id)
        if export is None or export.path is None or export.forgotten:
            return HTTPStatus.NOT_FOUND
        with self._lock:
            export.downloads += 1
            refused = self.config.refuse_first_download and export.downloads == 1
        if refused:
            return HTTPStatus.FORBIDDEN
        stamp, signature = query.get("X-Expires", ""), query.get("X-Signature", "")
        if not hmac.compare_digest(signature, self._signature(export_id, stamp)):
            return HTTPStatus.FORBIDDEN
        if time.time() > float(stamp):
            return HTTPStatus.FORBIDDEN
        return HTTPStatus.OK


def _relative_range(name: object, today: dt.date) -> tuple[dt.date, dt.date]:
    week_start = today - dt.timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    last_month_end = month_start - dt.timedelta(days=1)
    ranges = {
        "TODAY": (today, today),
        "YESTERDAY": (today - dt.timedelta(days=1),) * 2,
        "THIS_WEEK": (week_start, today),
        "LAST_WEEK": (week_start - dt.timedelta(days=7), week_start - dt.timedelta(days=1)),
        "THIS_MONTH": (month_start, today),
        "LAST_MONTH": (last_month_end.replace(day=1), last_month_end),
    }
    if name not in ranges:
        raise RequestRejected(
            HTTPStatus.BAD_REQUEST, f"input.filter.dateFilter.relative must be one of {', '.join(RELATIVE_RANGES)}"
        )
    return ranges[name]


def _text(binary) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8", newline="")


def _gzip_bomb(header: bytes, megabytes: int) -> bytes:
    """A gzip stream of `header` then `megabytes` MiB of line endings: about 1 KB per MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(header)]
    mebibyte = b"\n" * (1 << 20)
    parts += [compressor.compress(mebibyte) for _ in range(megabytes)]
    parts.append(compressor.flush())
    return b"".join(parts)


def _hostile_answer(kind: str, answer: dict) -> bytes:
    """A poll's answer made hostile: 100 MB long, or nested 100,000 deep."""
    if kind == "huge":
        return json.dumps({**answer, "padding": ""}).encode()[:-2] + b"x" * (100 << 20) + b'"}'
    if kind == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    raise ValueError(f"poll_answer is huge or deep, not {kind!r}")


def _send(
    request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(body)


def _send_file(
    request: BaseHTTPRequestHandler, path: str, content_type: str, *, cut_half: bool, headers: dict[str, str]
) -> None:
    size = os.path.getsize(path)
    request.send_response(HTTPStatus.OK)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(size))
    for name, value in headers.items():
        request.send_header(name, value)
    request.end_headers()
    remaining = size // 2 if cut_half else size
    with open(path, "rb") as handle:
        while remaining > 0:
            chunk = handle.read(min(1 << 20, remaining))
            if not chunk:
                break
            request.wfile.write(chunk)
            remaining -= len(chunk)
    if cut_half:
        request.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a run's requests can arrive together: a short backlog would delay them by a SYN retry

    @override
    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """A client that hangs up (a killed tap) is not the server's error: stay quiet then."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler(simulator: Simulator, handle, host: str):
    """Build a request handler class that sends every request to `handle` (`host`: "api" or "downloads")."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _dispatch(self, method: str) -> None:
            if simulator.config.silent_host == host:
                simulator._stopping.wait()  # the connection is open, the answer never comes
                return
            try:
                result = handle(self, method)
                if result is not None:
                    status, body, headers = result
                    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                    _send(self, status, payload, "application/json", headers)
            finally:
                simulator._notify()  # answered (or failed): a test waiting on what the simulator saw looks again

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        @override
        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet: the simulator's callers read its request lists instead."""

    return Handler
