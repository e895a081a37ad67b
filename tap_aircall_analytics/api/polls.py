"""When to poll an export: near its expected completion, learned from the run's earlier exports.

Each poll that finds an export still PENDING spends one request of the company's rate
limit, and each second between an export's completion and the poll that sees it holds
one of the `max_concurrent_exports` slots. A fixed schedule (2, 4, 8, 16, 32 s) does both:
a 13-s export costs four polls and is seen at 14 s, a 20-s one at 30 s. So polls are timed
from what the run has seen:

- An export's expected time grows with its range: it is taken as a factor times
  (its days + `FIXED_COST_DAYS`), the factor learned per report (a month of one report
  takes longer than a month of another). A report with no export seen yet uses the run's,
  and so does a report not settled yet (fewer than SETTLED_OUTCOMES of its own exports)
  when the run's is later: one or two exports say little of a report's spread.
- The first poll goes at that time. The factor tracks the time at which about nine
  exports in ten are done: a first poll that finds the export PENDING raises it, one that
  finds it done lowers it a little, so a run converges on about 1.1 polls per export.
- A miss raises the factor no further than FIRST_ESTIMATE_MARGIN times what the missed export
  took: exports predicted together that miss together do not each push it up by a step.
- Until its first poll goes, an export's prediction follows what the run learns meanwhile.
- A prediction that misses is followed by polls backing off from a fifth of it, or from half
  of it while it is not settled (borrowed from other reports, or resting on fewer than
  SETTLED_OUTCOMES of the report's own exports: one export's time says little of the
  others' spread), up to `max_poll_interval_seconds` apart; `export_timeout_minutes` bounds
  the whole wait.
- Before any export has completed, nothing is known: one export (the scout) polls on the
  backoff schedule from `poll_interval_seconds`, and the others wait for what it learns
  (polling at most `max_poll_interval_seconds` apart meanwhile).
- What a run learned lasts: the factors travel in the state (bookmarks.py), so a daily
  run's exports are polled once, when they are expected ready, from the first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: An export's expected time is a factor times (its days + this): a fixed cost, as much as a
#: week of data, and a cost per day. A report whose exports are all one length only needs the
#: factor; the days matter for the last, shorter window of a backfill and for daily runs.
FIXED_COST_DAYS = 7
#: The share of first polls that may find their export PENDING. The factor goes up by
#: FACTOR_STEP on a miss and down by FACTOR_STEP * q / (1 - q) on a hit, which settles where
#: a fraction q of first polls miss. A miss costs a request; a tenth of first polls missing
#: keeps a backfill and each daily run near two requests an export (the request and one poll).
TARGET_MISS_SHARE = 0.10
FACTOR_STEP = 0.24  # down by 2.7% on a hit: a report faster than the run's guess is learned in a few dozen
#: The first estimate, from an export seen between two polls, is put at 1.4 times the middle of
#: the two: exports of one report and length vary by about half their time either way, and the
#: first wave of a run is polled on this one export's time.
FIRST_ESTIMATE_MARGIN = 1.4
MISS_BACKOFF = 0.2  # after a miss, the next poll comes this share of the prediction later (then doubling)
#: ... or this share, for a prediction not settled yet (borrowed from other reports or resting on fewer than
#: SETTLED_OUTCOMES of the report's exports): it may be off by far more than the spread of one report's times.
BORROWED_MISS_BACKOFF = 0.5
SETTLED_OUTCOMES = 3
ON_TIME = 1.1  # a first poll later than this times its prediction says nothing of a prediction that was early
RECHECK_SECONDS = 0.1  # how often an export waiting for the scout looks for what it learned


def _size(days: int) -> float:
    return days + FIXED_COST_DAYS


class ExportTimings:
    """What the run has learned of its exports' times, per report. Shared by every thread."""

    def __init__(self, learned: dict[str, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._factors: dict[str, float] = {}  # seconds per (day + FIXED_COST_DAYS), per report
        self._run_factor: float | None = None
        self._scout: object | None = None
        self._carried: set[str] = set()  # reports whose factor an earlier run learned
        self._outcomes: dict[str, int] = {}  # exports of each report learned from in this run
        self.restore(learned or {})

    def restore(self, learned: dict[str, float]) -> None:
        """Start from what earlier runs learned, per report (the state carries it): no scout is needed then."""
        with self._lock:
            self._factors.update(learned)
            self._carried.update(learned)
            if self._factors and self._run_factor is None:
                self._run_factor = max(self._factors.values())  # a report not seen yet: the slowest one known

    def learned(self) -> dict[str, float]:
        """What the run knows of each report's export time, for the state."""
        with self._lock:
            return dict(self._factors)

    def first_poll(self, report: str, days: int) -> float | None:
        """Seconds after its request to first poll an export of `days` days; None while nothing is known.

        Until the report is settled, its own factor rests on one or two exports: the run's, which
        every report's outcomes move, is taken when it is later.
        """
        with self._lock:
            run = self._run_factor
            if run is None:
                return None
            factor = self._factors.get(report, run)
            if not self._settled(report):
                factor = max(factor, run)
        return factor * _size(days)

    def _settled(self, report: str) -> bool:
        return report in self._carried or self._outcomes.get(report, 0) >= SETTLED_OUTCOMES

    def settled(self, report: str) -> bool:
        """True once the report's own export time is known: carried by the state, or from SETTLED_OUTCOMES exports."""
        with self._lock:
            return self._settled(report)

    def is_scout(self, schedule: object) -> bool:
        """True for the one export that polls on the backoff schedule while nothing is known."""
        with self._lock:
            if self._scout is None:
                self._scout = schedule
            return self._scout is schedule

    def release(self, schedule: object) -> None:
        """An export stops polling (done, failed or abandoned): another may scout."""
        with self._lock:
            if self._scout is schedule:
                self._scout = None

    def learn(self, report: str, days: int, *, pending_at: float, done_at: float, first_poll_hit: bool | None) -> None:
        """Learn from an export seen PENDING at `pending_at` and done at `done_at` (seconds after its request).

        `first_poll_hit` says whether its first poll at the predicted time found it done
        (None: it was not polled on a prediction, or that poll came too late to tell).
        """
        with self._lock:
            self._outcomes[report] = self._outcomes.get(report, 0) + 1
            if first_poll_hit is None:
                if report not in self._factors or self._run_factor is None:
                    factor = FIRST_ESTIMATE_MARGIN * (pending_at + done_at) / 2 / _size(days)
                    self._factors.setdefault(report, factor)
                    self._run_factor = self._run_factor or factor
                return
            assert self._run_factor is not None, "a first poll was predicted, so a factor is known"
            own = self._factors.get(report, self._run_factor)
            if first_poll_hit:
                change = 1 - FACTOR_STEP * TARGET_MISS_SHARE / (1 - TARGET_MISS_SHARE)
                self._factors[report], self._run_factor = own * change, self._run_factor * change
                return
            # A miss raises the factor, but not past what this export alone would have taught: exports
            # predicted together that miss together are not each a new surprise.
            ceiling = FIRST_ESTIMATE_MARGIN * done_at / _size(days)
            self._factors[report] = max(own, min(own * (1 + FACTOR_STEP), ceiling))
            self._run_factor = max(self._run_factor, min(self._run_factor * (1 + FACTOR_STEP), ceiling))


@dataclass(frozen=True)
class PollPolicy:
    """How often and how long an export is polled, from the settings."""

    first_wait: float  # poll_interval_seconds: the scout's first wait, doubling
    max_wait: float  # max_poll_interval_seconds: the longest wait between two polls
    timeout: float  # export_timeout_minutes, in seconds


class PollSchedule:
    """The polls of one export: when the next one goes, and what its outcome teaches the run."""

    def __init__(
        self, timings: ExportTimings, report: str, days: int, policy: PollPolicy, *, learns: bool = True
    ) -> None:
        self.timings = timings
        self.learns = learns  # False: its outcome teaches nothing (an export requested by an earlier run)
        self.report = report
        self.days = days
        self.policy = policy
        self.polls = 0
        self.last_answer = 0.0  # seconds after the request of the latest answer (the request's own: 0)
        self.predicted: float | None = None  # when the first poll on a prediction was due
        self._polls_before_prediction = 0
        self._first_poll_hit: bool | None = None
        self._blind_wait = policy.first_wait
        self._miss_backoff = MISS_BACKOFF

    def next_poll(self) -> tuple[float, bool]:
        """When to poll next (seconds after the request), and whether that may come sooner.

        It may come sooner while the export waits for the scout: the caller looks again
        every RECHECK_SECONDS.
        """
        policy = self.policy
        latest = self.last_answer + policy.max_wait
        if self.predicted is None or self.polls == self._polls_before_prediction:
            # until its first poll on a prediction goes, an export's prediction follows what the run learns
            predicted = self.timings.first_poll(self.report, self.days)
            if predicted is not None:
                self.predicted, self._polls_before_prediction = predicted, self.polls
                self._miss_backoff = MISS_BACKOFF if self.timings.settled(self.report) else BORROWED_MISS_BACKOFF
        if self.predicted is not None:
            misses = self.polls - self._polls_before_prediction
            if misses == 0:
                return min(self.predicted, latest), True
            return min(self.last_answer + self.predicted * self._miss_backoff * 2 ** (misses - 1), latest), False
        if self.timings.is_scout(self):
            return min(self.last_answer + self._blind_wait, latest), False
        return latest, True

    def polled(self, at: float, done: bool) -> None:
        """Count a poll answered `at` seconds after the request; learn from it if the export is done."""
        if self.predicted is not None and self.polls == self._polls_before_prediction:
            if not done:
                self._first_poll_hit = False
            elif at <= self.predicted * ON_TIME:
                self._first_poll_hit = True
        if self.predicted is None:
            self._blind_wait = min(self._blind_wait * 2, self.policy.max_wait)
        self.polls += 1
        if done and self.learns:
            self.timings.learn(
                self.report,
                self.days,
                pending_at=self.last_answer,
                done_at=at,
                first_poll_hit=self._first_poll_hit,
            )
        if done:
            self.timings.release(self)
        self.last_answer = at

    def phases(self) -> tuple[int, int, int]:
        """Its polls so far: before the run knew when to expect it, the first on a prediction, those after a miss."""
        if self.predicted is None:
            return self.polls, 0, 0
        on_prediction = min(1, self.polls - self._polls_before_prediction)
        return self._polls_before_prediction, on_prediction, self.polls - self._polls_before_prediction - on_prediction

    def abandon(self) -> None:
        """The export stops being polled without an outcome (an error, a stop)."""
        self.timings.release(self)
