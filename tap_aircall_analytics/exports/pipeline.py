"""The exports of a run: every selected stream's windows in, downloaded files out, in order.

The SDK emits streams one after another, but the API can prepare them all at once. So
one `ExportPipeline` serves the whole run: it requests the windows of every stream in
emission order (stream order, then window order), keeps up to `max_concurrent_exports`
of them in flight in worker threads, and downloads each file to disk the moment its
export completes, so a link never waits. The streams then read their files on the main
thread, in order; a file is deleted once read. `DiskSpace` holds the files on disk to
`max_disk_mb`, downloads under way included; the streams must ask for their files in the
order they were planned, or a run at that bound would wait forever (`OutOfOrder`).

`ReportExporter` runs one window's export: failures have named outcomes there. A FAILED
export is retried once, then its window is split in two down to single days; an expired
link is refreshed by polling again; a forgotten export (404) is requested again; a
PENDING export past its deadline is an error, never an empty window. A window that
fails for good ends the run within seconds: nothing more is requested, exports in
flight are abandoned, and only the files already downloaded before it in emission
order are still read.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import typing as t
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote

from tap_aircall_analytics.api.budget import (  # a poll due sooner than the grain goes now
    CLOCK_GRAIN_SECONDS,
    RequestBudget,
)
from tap_aircall_analytics.api.client import (
    AircallClient,
    AircallError,
    ExportJob,
    ExportNotFound,
    LinkExpired,
    TransientError,
    redact,
)
from tap_aircall_analytics.api.polls import RECHECK_SECONDS, ExportTimings, PollPolicy, PollSchedule
from tap_aircall_analytics.clock import Stopped
from tap_aircall_analytics.config.catalogue import STATUS_COMPLETED, STATUS_FAILED, STATUS_PENDING, Report
from tap_aircall_analytics.planning.bookmarks import ExportsInFlight, PendingExport
from tap_aircall_analytics.planning.windows import Window

logger = logging.getLogger("tap_aircall_analytics")

DOWNLOAD_TRIES = 5
WORKDIR_PREFIX = "tap-aircall-analytics-"
PROGRESS_SECONDS = 3  # while a stream waits for its next file, the run-wide picture is logged this often
STOP_GRACE_SECONDS = 3  # how long a stopped run waits for its worker threads before removing their files
MAX_EXPORT_REQUESTS = 3  # requests of one window's export, counting those the API forgot (404)


class WindowFailed(AircallError):
    """A window could not be exported; the stream stops before it."""


class OutOfOrder(AircallError):
    """A stream asked for its files before an earlier stream of the plan had read all of its own."""


class NoRoom(Exception):
    """A download would take the run's files past `max_disk_mb`: it stops until files are read."""

    def __init__(self, needed: int) -> None:
        super().__init__(f"{needed} bytes do not fit within max_disk_mb")
        self.needed = needed


class FileTooLarge(AircallError):
    """A downloaded file would be larger than max_disk_mb: its window fails."""


class DiskSpace:
    """The room `max_disk_mb` gives a run's files on disk: claimed as bytes arrive, given back when deleted.

    Files waiting to be read and downloads under way stay within the bound together. A
    download claims its Content-Length before its body is read (when the body is the file
    as it is) and every byte past that as it arrives; a claim that would cross the bound
    raises NoRoom, and the download waits for room and starts again. One claim is always
    granted: that of the file the streams are waiting for, since nothing can be read (and
    no room made) before it, up to the bound itself: a file larger than the bound fails its window.
    Any other part of the run that writes big files can claim and give back room here too.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0  # the most bytes claimed at once, for the run summary
        self._changed = threading.Condition()

    @property
    def full(self) -> bool:
        """True when nothing more fits: no new export is requested then."""
        return self.used >= self.limit

    def claim(self, nbytes: int, *, always: bool = False) -> None:
        """Take `nbytes` more; raise NoRoom if they cross the bound (unless `always`)."""
        with self._changed:
            if not always and self.used + nbytes > self.limit:
                raise NoRoom(nbytes)
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    def give_back(self, nbytes: int) -> None:
        """Return `nbytes` (a file deleted, a download stopped) and wake the downloads waiting for room."""
        with self._changed:
            self.used -= nbytes
            self._changed.notify_all()

    def wait_for_room(self, nbytes: int, always: Callable[[], bool], stop: threading.Event) -> None:
        """Block until `nbytes` fit or `always()` holds; raise Stopped if the run stops meanwhile."""
        with self._changed:
            while self.used + nbytes > self.limit and not always():
                if stop.is_set():
                    raise Stopped("the run was stopped")
                self._changed.wait(1)  # woken by give_back and wake; the timeout only sees a stop

    def wake(self) -> None:
        """Have the waiting downloads look again (the file the streams wait for changed, or the run stops)."""
        with self._changed:
            self._changed.notify_all()


@dataclass
class DiskClaim:
    """What one download has claimed of the run's DiskSpace; `always` when the streams wait for its file."""

    space: DiskSpace
    always: Callable[[], bool]
    stop: threading.Event
    bytes: int = 0

    def __call__(self, total: int) -> None:
        """Claim up to `total` bytes for the file (called before they are written).

        A file larger than the bound itself fails its window, the one the streams wait for included.
        """
        if total > self.space.limit:
            raise FileTooLarge(
                f"the file is larger than max_disk_mb ({self.space.limit / 1e6:g} MB) allows: "
                "raise max_disk_mb, or lower window_days"
            )
        if total > self.bytes:
            try:
                self.space.claim(total - self.bytes, always=self.always())
            except NoRoom:
                raise NoRoom(total) from None  # a new attempt claims the file from its first byte
            self.bytes = total

    def keep(self, size: int) -> None:
        """The file is whole at `size` bytes: keep those claimed, give back any claimed beyond."""
        self.space.give_back(self.bytes - size)
        self.bytes = size

    def give_back(self) -> None:
        """The download failed: its file is deleted, its bytes are free again."""
        self.space.give_back(self.bytes)
        self.bytes = 0

    def wait_for_room(self, nbytes: int) -> None:
        """Block until another attempt at `nbytes` may start (or this file is the one waited for)."""
        self.space.wait_for_room(nbytes, self.always, self.stop)


class _ExportFailed(Exception):
    """One export ended FAILED, or in a status as final (its window may still succeed smaller).

    Its text is Aircall's errorMessage, after the status when that is not FAILED.
    """

    def __init__(self, export: ExportJob) -> None:
        self.status = export.status
        self.message = export.error_message or "no errorMessage given"
        super().__init__(self.message if self.status == STATUS_FAILED else f"{self.status} ({self.message})")


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
    resumed: int = 0  # exports an earlier run requested, polled instead of requested again
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


class ExportPipeline:
    """Every export of a run, across streams, under one limit; files handed back in order."""

    def __init__(
        self,
        *,
        max_concurrent: int,
        max_disk_bytes: float,
        progress: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.budget = budget  # the run's API budget: the progress line says when requests wait on it
        self.disk = DiskSpace(max_disk_bytes)
        self.stop = stop or threading.Event()
        self._progress = progress or (lambda message: logger.info("%s", message))
        self._exporters: dict[str, ReportExporter] = {}
        self._jobs: list[_Job] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._next = 0  # the first job not yet requested
        self._in_flight = 0
        self._waited_for: _Job | None = None  # the job the streams wait for: its downloads always have room
        self._failure: BaseException | None = None
        self._failed: Future[None] = Future()  # done when a failure ends the run: wakes the main thread
        self.workdir: Path | None = None
        self._files = 0  # downloaded files not yet read
        self.peak_files = 0  # the most files and exports at once, for the run summary
        self.peak_in_flight = 0

    def add(self, exporter: ReportExporter, windows: list[Window]) -> None:
        """Plan a stream's windows, after those added before (the order streams are emitted in)."""
        self._exporters[exporter.stream] = exporter
        self._jobs.extend(_Job(exporter, window) for window in windows)

    def windows(self, stream: str) -> list[Window]:
        """The windows planned for `stream`, in order."""
        return [job.window for job in self._jobs if job.exporter.stream == stream]

    def exporter(self, stream: str) -> ReportExporter:
        """The exporter of `stream` (its client and its stats)."""
        return self._exporters[stream]

    @property
    def peak_disk(self) -> int:
        """The most bytes of files on disk at once, downloads under way included."""
        return self.disk.peak

    def start(self) -> ExportPipeline:
        """Create the download folder and start requesting exports."""
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        for number in range(min(self.max_concurrent, len(self._jobs))):
            worker = threading.Thread(target=self._work, name=f"export-{number + 1}", daemon=True)
            worker.start()
            self._workers.append(worker)
        with self._lock:
            self._fill()
        return self

    def close(self) -> None:
        """Abandon what is in flight and remove every downloaded file."""
        self.stop.set()
        self.disk.wake()
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        finished = time.monotonic()
        for exporter in self._exporters.values():
            exporter.stats.finished = exporter.stats.finished or finished

    def __enter__(self) -> ExportPipeline:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def files(self, stream: str) -> Iterator[ExportedFile]:
        """Yield the downloaded file(s) of each window of `stream`, in window order.

        A split window yields one file per part, in order. Each file is deleted once the
        caller asks for the next one (or stops asking). Streams ask in the order they were
        added, each for all of its files: files are downloaded in that order within
        `max_disk_mb`, so a stream that asked out of turn would wait forever (OutOfOrder).
        """
        self._check_turn(stream)
        for job in self._jobs:
            if job.exporter.stream != stream:
                continue
            for file in self._wait(job):
                try:
                    yield file
                finally:
                    file.path.unlink(missing_ok=True)
                    self.disk.give_back(file.size)
                    with self._lock:
                        self._files -= 1
                        self._fill()
            job.read = True
        self._exporters[stream].stats.finished = time.monotonic()

    # --- the main thread --------------------------------------------------------

    def _check_turn(self, stream: str) -> None:
        """Raise OutOfOrder unless `stream` is the planned stream whose files come next."""
        planned = [job for job in self._jobs if job.exporter.stream == stream]
        if any(job.read for job in planned):
            raise OutOfOrder(f"{stream}'s files were asked for a second time: each file is deleted once read")
        first_unread = next((job for job in self._jobs if not job.read), None)
        if planned and first_unread is not None and first_unread.exporter.stream != stream:
            order = ", ".join(dict.fromkeys(job.exporter.stream for job in self._jobs))
            raise OutOfOrder(
                f"{stream}'s files were asked for before {first_unread.exporter.stream}'s were all read: the run "
                f"downloads files in the order its streams were planned ({order}), and streams must be synced "
                "in that order"
            )

    def _wait(self, job: _Job) -> list[ExportedFile]:
        """The files of `job` once downloaded; the run's failure if one came first."""
        self._waited_for = job
        self.disk.wake()  # its downloads may now take the room they need
        while True:
            failure = self._failure
            if failure is not None and not (job.future.done() and job.future.exception() is None):
                raise failure
            if job.future.done():
                return job.future.result()
            either: list[Future[t.Any]] = [job.future, self._failed]
            if not wait(either, timeout=PROGRESS_SECONDS, return_when=FIRST_COMPLETED).done:
                self._report(job)

    def _report(self, waiting_for: _Job) -> None:
        """Log the run-wide picture: exports ready, pending and queued, and MB on disk."""
        with self._lock:
            ready = sum(
                1
                for job in self._jobs[: self._next]
                if job.future.done() and job.future.exception() is None and not job.read
            )
            queued = len(self._jobs) - self._next
            pending, disk = self._in_flight, self.disk.used
        budget = self.budget.waiting(time.time()) if self.budget is not None else None
        rate = "" if budget is None or budget[0] < 1 else f"; waiting {budget[0]:.0f} s for the rate limit: {budget[1]}"
        self._progress(
            f"waiting for {waiting_for.exporter.stream} {waiting_for.window}: exports ready {ready}, "
            f"pending {pending}, queued {queued}; {disk / 1e6:.1f} MB on disk{rate}"
        )

    # --- the worker threads -----------------------------------------------------

    def _fill(self) -> None:
        """Request the next jobs in order while a slot is free and the disk bound allows (lock held)."""
        while (
            not self.stop.is_set()
            and self._in_flight < self.max_concurrent
            and self._next < len(self._jobs)
            and not self.disk.full
        ):
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            self._queue.put(self._jobs[self._next])
            self._next += 1

    def _claims(self, job: _Job) -> Callable[[], DiskClaim]:
        """New claims on the run's disk for the downloads of `job`: always granted once the streams wait for it."""
        return partial(DiskClaim, self.disk, lambda: self._waited_for is job, self.stop)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                assert self.workdir is not None
                files = job.exporter.export_window(job.window, self.workdir, self._claims(job))
            except BaseException as error:
                with self._lock:
                    first = self._failure is None and not self.stop.is_set()
                    if first:
                        self._failure = error
                    self.stop.set()  # the run ends: abandon every export in flight
                    self._in_flight -= 1
                job.future.set_exception(error)
                if first:
                    self._failed.set_result(None)
                continue
            with self._lock:
                self._files += len(files)
                self.peak_files = max(self.peak_files, self._files)
                self._in_flight -= 1
                job.future.set_result(files)
                self._fill()


@dataclass
class _Job:
    """One window of one stream, as the pipeline schedules it."""

    exporter: ReportExporter
    window: Window
    future: Future[list[ExportedFile]] = field(default_factory=Future)
    read: bool = False  # every file of the window was read (and deleted)


def _phases(schedule: PollSchedule) -> str:
    """What an export's polls were for, when not all on time: `: 2 before any export was done, 1 after a miss`."""
    blind, _, after_miss = schedule.phases()
    said = [f"{blind} before any export was done"] if blind else []
    said += [f"{after_miss} after a miss"] if after_miss else []
    return ": " + ", ".join(said) if said else ""


class ReportExporter:
    """The export flow of one report: request, poll, download, retry, split."""

    def __init__(
        self,
        client: AircallClient,
        report: Report,
        request_body: Callable[[Window], dict],
        *,
        poll: PollPolicy,
        timings: ExportTimings | None = None,
        progress: Callable[[str], None] | None = None,
        in_flight: ExportsInFlight | None = None,
    ) -> None:
        self.client = client
        self.in_flight = in_flight  # the run's exports in flight, kept in the state
        self.report = report
        self.stream = report.stream_name
        self.request_body = request_body
        self.poll = poll
        self.timings = timings or ExportTimings()
        self.stats = ExportStats()
        self._progress = progress or (lambda message: logger.info("%s", message))

    def export_window(
        self, window: Window, workdir: Path, claims: Callable[[], DiskClaim] | None = None
    ) -> list[ExportedFile]:
        """Export one window into `workdir`: one file, or one per part if it had to be split.

        Each download claims its room on disk from a new `claims()` (none: no bound).
        """
        self.stats.add(windows=1)
        try:
            return self._export_or_split(window, workdir, claims)
        except WindowFailed:
            raise
        except AircallError as error:
            raise WindowFailed(f"{self.stream} {window}: {error}") from None

    def _export_or_split(
        self, window: Window, workdir: Path, claims: Callable[[], DiskClaim] | None
    ) -> list[ExportedFile]:
        for attempt in (1, 2):
            try:
                return [self._export(window, workdir, claims)]
            except _ExportFailed as failure:
                self.stats.add(failed_exports=1)
                reason, seen = str(failure), f"{failure.status} ({failure.message})"
                if attempt == 1:
                    self._window_progress(window, f"export {seen}; retrying once")
        if window.days == 1:
            raise WindowFailed(f"{self.stream} {window}: the export failed twice, even for one day: {reason}")
        first, second = window.split()
        self.stats.add(splits=1)
        self._window_progress(window, f"export {seen} again; splitting into {first} and {second}")
        return self._export_or_split(first, workdir, claims) + self._export_or_split(second, workdir, claims)

    def _export(self, window: Window, workdir: Path, claims: Callable[[], DiskClaim] | None) -> ExportedFile:
        earlier = self.in_flight.resume(self.stream, window.first, window.last) if self.in_flight else None
        if earlier is not None and self.client.clock.now() - earlier.requested_at > self.poll.timeout:
            earlier = None  # past export_timeout_minutes already: requested again
        for _ in range(MAX_EXPORT_REQUESTS):
            try:
                if earlier is not None:  # requested by a run that stopped: polled, not paid for again
                    self._window_progress(
                        window, f"export {earlier.export_id} was requested by an earlier run; polling it"
                    )
                    resumed = ExportJob(earlier.export_id, STATUS_PENDING)
                    export = self._await(resumed, window, requested_at=earlier.requested_at)
                    self.stats.add(resumed=1)
                else:
                    export = self._await(self._request(window), window)
                earlier = None
                return self._download(export, window, workdir, claims)
            except ExportNotFound:
                earlier = None
                self._window_progress(window, "export is gone (404); requesting it again")
        raise WindowFailed(f"{self.stream} {window}: the API kept forgetting the export (404)")

    def _request(self, window: Window) -> ExportJob:
        requested_at = self.client.clock.now()
        export = self.client.create_export(self.request_body(window))
        self.stats.add(exports=1)
        if self.in_flight is not None:
            pending = PendingExport(window.first, window.last, export.export_id, requested_at)
            self.in_flight.requested(self.stream, pending)
        self._window_progress(window, f"export {export.export_id} requested")
        return export

    def _await(self, export: ExportJob, window: Window, requested_at: float | None = None) -> ExportJob:
        """Poll until the export is done, when `PollSchedule` says (see polls.py); times count from its request."""
        clock = self.client.clock
        started = clock.now() if requested_at is None else min(requested_at, clock.now())
        # an export an earlier run requested may have been ready for long: its time teaches nothing
        schedule = PollSchedule(self.timings, self.report.api_name, window.days, self.poll, learns=requested_at is None)
        statuses = {STATUS_PENDING}  # those seen so far: one the tap does not know is said once
        try:
            while not export.done:
                if export.status not in statuses:
                    statuses.add(export.status)
                    self._window_progress(
                        window, f"export {export.export_id} is {export.status}, a status the tap does not know; waiting"
                    )
                elapsed = clock.now() - started
                if elapsed > self.poll.timeout:
                    raise WindowFailed(
                        f"{self.stream} {window}: export {export.export_id} still {export.status} after "
                        f"{elapsed / 60:.1f} minutes (export_timeout_minutes); the window was not read"
                    )
                due, may_come_sooner = schedule.next_poll()
                if due - elapsed > CLOCK_GRAIN_SECONDS:
                    clock.sleep(min(due - elapsed, RECHECK_SECONDS) if may_come_sooner else due - elapsed)
                    continue
                export = self.client.get_export(export.export_id)
                schedule.polled(clock.now() - started, export.done)
        finally:
            schedule.abandon()
        if export.failed:
            raise _ExportFailed(export)
        self._window_progress(
            window,
            f"export {export.export_id} ready after {clock.now() - started:.1f} s "
            f"({schedule.polls} poll(s){_phases(schedule)})",
        )
        return export

    def _download(
        self, export: ExportJob, window: Window, workdir: Path, claims: Callable[[], DiskClaim] | None = None
    ) -> ExportedFile:
        path = (
            workdir / f"{quote(self.stream, safe='')}_{window.first}_{window.last}_{quote(export.export_id, safe='')}"
            f".{'zip' if export.zipped else 'csv'}"
        )
        attempt = 0
        while attempt < DOWNLOAD_TRIES:
            if export.status != STATUS_COMPLETED or not export.download_url or export.link_expired():
                export = self._refresh(export, window, "link expired")
            try:
                started = time.monotonic()
                size = self._fetch(export.link, path, claims)
            except NoRoom as full:  # not a failed try: the download waits its turn for room
                assert claims is not None  # only a claim says NoRoom
                self._window_progress(window, f"{full.needed / 1e6:.1f} MB wait for room on disk (max_disk_mb)")
                claims().wait_for_room(full.needed)
                continue
            except LinkExpired:
                attempt += 1
                export = self._refresh(export, window, "link refused (403)")
                continue
            except TransientError as error:
                attempt += 1
                if attempt == DOWNLOAD_TRIES:
                    raise WindowFailed(f"{self.stream} {window}: {error}") from None
                self._window_progress(window, f"download interrupted ({error}); retrying")
                continue
            except OSError as error:
                path.unlink(missing_ok=True)
                if error.errno == errno.ENOSPC:
                    raise WindowFailed(disk_full(f"{self.stream} {window}", workdir, "the download")) from None
                raise
            self.stats.add(bytes=size)
            seconds = max(time.monotonic() - started, 1e-6)
            self._window_progress(
                window, f"downloaded {size / 1e6:.1f} MB in {seconds:.1f} s from {redact(export.link)}"
            )
            return ExportedFile(window, path, export.zipped, size, export.export_id)
        raise WindowFailed(f"{self.stream} {window}: the download link kept being refused")

    def _fetch(self, link: str, path: Path, claims: Callable[[], DiskClaim] | None) -> int:
        """Download one file, its room on disk claimed as it arrives; a failed one leaves no file and no claim."""
        claim = claims() if claims is not None else None
        try:
            size = self.client.download(link, path, claim)
        except BaseException:
            path.unlink(missing_ok=True)
            if claim is not None:
                claim.give_back()
            raise
        if claim is not None:
            claim.keep(size)
        return size

    def _refresh(self, export: ExportJob, window: Window, why: str) -> ExportJob:
        self.stats.add(link_refreshes=1)
        self._window_progress(window, f"{why}; polling export {export.export_id} for a fresh link")
        fresh = self.client.get_export(export.export_id)
        if fresh.status != STATUS_COMPLETED:
            fresh = self._await(fresh, window)
        return fresh  # without a link, `ExportJob.link` fails the window when it is read

    def _window_progress(self, window: Window, message: str) -> None:
        self._progress(f"{self.stream} {window}: {message}")


def disk_full(where: str, folder: Path, what: str) -> str:
    """The line that says a disk filled up: where, in which folder, and what to do."""
    return (
        f"{where}: no space left in {folder} for {what}; free some space, point TMPDIR at a larger disk "
        "or lower max_disk_mb, then run again (the window is not bookmarked)"
    )


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
