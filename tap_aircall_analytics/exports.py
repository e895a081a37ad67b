"""The export scheduler: windows in, downloaded files out, in window order.

Up to `max_concurrent_exports` exports are requested ahead and polled together in
worker threads; each file is downloaded the moment its export completes, so a link
never waits. The caller reads the files one by one, in window order, on its own
thread. Failures have named outcomes: a FAILED export is retried once, then its window
is split in two down to single days; an expired link is refreshed by polling again; a
forgotten export (404) is requested again; a PENDING export past its deadline is an
error, never an empty window.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tap_aircall_analytics.client import (
    AircallClient,
    AircallError,
    ExportNotFound,
    ExportStatus,
    LinkExpired,
    TransientError,
    redact,
)
from tap_aircall_analytics.reports import STATUS_COMPLETED, STATUS_FAILED, Report
from tap_aircall_analytics.windows import Window

logger = logging.getLogger("tap_aircall_analytics")

DOWNLOAD_TRIES = 5
WORKDIR_PREFIX = "tap-aircall-analytics-"
PENDING_REPORT_SECONDS = 15  # a long wait is reported this often, so it never looks like a hang
REQUESTS_PER_EXPORT = 3  # re-requests of an export that the API forgot (404)


class WindowFailed(AircallError):
    """A window could not be exported; the stream stops before it."""


class _ExportFailed(Exception):
    """One export ended FAILED (its window may still succeed smaller)."""


@dataclass(frozen=True)
class ExportedFile:
    """A downloaded export file, ready to be read."""

    window: Window
    path: Path
    zipped: bool
    size: int
    export_id: str


@dataclass
class ExportStats:
    """What a stream's exports cost, for the run summary."""

    windows: int = 0
    exports: int = 0
    failed_exports: int = 0
    splits: int = 0
    link_refreshes: int = 0
    bytes: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def seconds(self) -> float:
        """Wall time from the first export request to the last file read."""
        return (self.finished or time.monotonic()) - self.started

    def add(self, **counts: int) -> None:
        """Add to counters from any worker thread."""
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class PollPolicy:
    """How often and how long an export is polled."""

    first_wait: float
    max_wait: float
    timeout: float


class ExportScheduler:
    """Runs the exports of one report's windows and hands back files in window order."""

    def __init__(
        self,
        client: AircallClient,
        report: Report,
        request_body: Callable[[Window], dict],
        *,
        max_concurrent: int,
        poll: PollPolicy,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.report = report
        self.request_body = request_body
        self.max_concurrent = max_concurrent
        self.poll = poll
        self.stats = ExportStats()
        self._progress = progress or (lambda message: logger.info("%s", message))
        self._stop = client.stop
        self._workdir: Path | None = None

    def files(self, windows: Iterable[Window]) -> Iterator[ExportedFile]:
        """Yield the downloaded file(s) of each window, in window order.

        A split window yields one file per part, in order. Each file is deleted once the
        caller asks for the next one, and every file is deleted if the caller stops.
        """
        self._workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        pending: deque[Future[list[ExportedFile]]] = deque()
        upcoming = iter(windows)
        executor = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix=f"export-{self.report.stream_name}")
        try:
            for window in upcoming:
                pending.append(executor.submit(self._export_window, window))
                if len(pending) >= 2 * self.max_concurrent:
                    break
            while pending:
                exported = pending.popleft().result()
                window = next(upcoming, None)
                if window is not None:
                    pending.append(executor.submit(self._export_window, window))
                for file in exported:
                    try:
                        yield file
                    finally:
                        file.path.unlink(missing_ok=True)
        finally:
            self._stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(self._workdir, ignore_errors=True)
            self.stats.finished = time.monotonic()

    # --- one window, in a worker thread -----------------------------------------

    def _export_window(self, window: Window) -> list[ExportedFile]:
        self.stats.add(windows=1)
        try:
            return self._export_or_split(window)
        except WindowFailed:
            raise
        except AircallError as error:
            raise WindowFailed(f"{self.report.stream_name} {window}: {error}") from None

    def _export_or_split(self, window: Window) -> list[ExportedFile]:
        for attempt in (1, 2):
            try:
                return [self._export(window)]
            except _ExportFailed as failure:
                self.stats.add(failed_exports=1)
                reason = str(failure)
                if attempt == 1:
                    self._say(window, f"export FAILED ({reason}); retrying once")
        if window.days == 1:
            raise WindowFailed(
                f"{self.report.stream_name} {window}: the export failed twice, even for one day: {reason}"
            )
        first, second = window.split()
        self.stats.add(splits=1)
        self._say(window, f"export FAILED again ({reason}); splitting into {first} and {second}")
        return self._export_or_split(first) + self._export_or_split(second)

    def _export(self, window: Window) -> ExportedFile:
        for _ in range(REQUESTS_PER_EXPORT):
            try:
                export = self._await(self._request(window), window)
                return self._download(export, window)
            except ExportNotFound:
                self._say(window, "export is gone (404); requesting it again")
        raise WindowFailed(f"{self.report.stream_name} {window}: the API kept forgetting the export (404)")

    def _request(self, window: Window) -> ExportStatus:
        export = self.client.create_export(self.request_body(window))
        self.stats.add(exports=1)
        self._say(window, f"export {export.export_id} requested")
        return export

    def _await(self, export: ExportStatus, window: Window) -> ExportStatus:
        started = time.monotonic()
        wait = self.poll.first_wait
        next_report = started + PENDING_REPORT_SECONDS
        while not export.done:
            elapsed = time.monotonic() - started
            if elapsed > self.poll.timeout:
                raise WindowFailed(
                    f"{self.report.stream_name} {window}: export {export.export_id} still PENDING after "
                    f"{elapsed / 60:.1f} minutes (export_timeout_minutes); the window was not read"
                )
            if self._stop.wait(min(wait * random.uniform(0.8, 1.2), self.poll.max_wait)):
                raise WindowFailed("stopped")
            wait = min(wait * 2, self.poll.max_wait)
            export = self.client.get_export(export.export_id)
            if time.monotonic() >= next_report and not export.done:
                self._say(window, f"export {export.export_id} still pending after {time.monotonic() - started:.0f} s")
                next_report += PENDING_REPORT_SECONDS
        if export.status == STATUS_FAILED:
            raise _ExportFailed(export.error_message or "no errorMessage given")
        self._say(window, f"export {export.export_id} ready after {time.monotonic() - started:.1f} s")
        return export

    def _download(self, export: ExportStatus, window: Window) -> ExportedFile:
        assert self._workdir is not None
        path = self._workdir / f"{window.first}_{window.last}_{export.export_id}.{'zip' if export.zipped else 'csv'}"
        for attempt in range(1, DOWNLOAD_TRIES + 1):
            if export.status != STATUS_COMPLETED or not export.download_url or export.link_expired():
                export = self._refresh(export, window, "link expired")
            try:
                started = time.monotonic()
                size = self.client.download(export.download_url, path)
            except LinkExpired:
                export = self._refresh(export, window, "link refused (403)")
                continue
            except TransientError as error:
                path.unlink(missing_ok=True)
                if attempt == DOWNLOAD_TRIES:
                    raise WindowFailed(f"{self.report.stream_name} {window}: {error}") from None
                self._say(window, f"download interrupted ({error}); retrying")
                continue
            self.stats.add(bytes=size)
            seconds = max(time.monotonic() - started, 1e-6)
            self._say(window, f"downloaded {size / 1e6:.1f} MB in {seconds:.1f} s from {redact(export.download_url)}")
            return ExportedFile(window, path, export.zipped, size, export.export_id)
        raise WindowFailed(f"{self.report.stream_name} {window}: the download link kept being refused")

    def _refresh(self, export: ExportStatus, window: Window, why: str) -> ExportStatus:
        self.stats.add(link_refreshes=1)
        self._say(window, f"{why}; polling export {export.export_id} for a fresh link")
        fresh = self.client.get_export(export.export_id)
        if fresh.status != STATUS_COMPLETED:
            fresh = self._await(fresh, window)
        if not fresh.download_url:
            raise WindowFailed(f"{self.report.stream_name} {window}: export {fresh.export_id} is COMPLETED "
                               "but the API gave no downloadUrl")
        return fresh

    def _say(self, window: Window, message: str) -> None:
        self._progress(f"{self.report.stream_name} {window}: {message}")


def remove_orphaned_downloads() -> None:
    """Remove download folders left by runs that were killed (SIGKILL cannot clean up)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = folder.name.removeprefix(WORKDIR_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
