"""The company's API budget: requests paced from the rate-limit headers, a reserve left for others.

Aircall's rate limit is per company: every integration a company runs (its CRM sync, its
helpdesk, its own scripts) draws on the same `X-AircallApi-Remaining`, and a tap that spends
it to zero makes the others fail until the window resets. So the run spends it deliberately:

- **The first request goes alone.** Until one request has been answered without an error, no
  other is sent, and after a refusal none: a refused credential or a missing add-on costs one
  request, and the first answer tells the budget the company's limit before the others go.
- **An even pace.** The tap spends its share of a window evenly through it, at most half
  of it ahead: the others' requests find room whenever they come, and the tap sees
  what they spend before it has spent its own.
- **A reserve stays for the others.** A request is sent only if it leaves `Remaining` at or
  above the larger of the reserve (`rate_limit_reserve`; by default a fifth of
  `X-AircallApi-Limit`) and what the company's other users are expected to spend before the
  window resets (learned from the headers: what `Remaining` fell by that the run did not
  spend), plus the largest burst of theirs seen between two answers, which the latest answer
  may not show yet. Otherwise it waits, never skips: pacing delays a window, never drops one.
- **The tap's own rate is capped** at `max_requests_per_minute` in any 60 seconds, when set.
- **A 429 holds every request** until its `Retry-After` (or the reset) has passed.

Time comes from a `Clock`, so tests drive the budget with a fake one and never wait.
"""

from __future__ import annotations

import collections
import threading
import typing as t
from dataclasses import dataclass, field

from tap_aircall_analytics.config.catalogue import LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER

if t.TYPE_CHECKING:
    from collections.abc import Mapping

RATE_WINDOW_SECONDS = 60.0  # Aircall's limits are per minute; the reset header says when this one ends
DEFAULT_RESERVE_FRACTION = 5  # without a `rate_limit_reserve`, a fifth of the limit is left to the others
STEP_SECONDS = 0.1  # a waiting request looks again this often: other answers change the budget
CLOCK_GRAIN_SECONDS = 1e-3  # the shortest wait: a shorter one may not move a clock at all
AHEAD_SECONDS = 30.0  # the tap spends evenly through a window, at most half of it ahead
MIN_RATE_SPAN_SECONDS = 15.0  # the others' rate is never read from less of a window than this


class Clock(t.Protocol):
    """Where the budget and the polls read the time and wait."""

    def now(self) -> float:
        """UNIX time, in seconds (the unit of `X-AircallApi-Reset`)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`; raise an exception at once if the run stops meanwhile."""
        ...


@dataclass
class _Window:
    """What the headers said of one rate window (they name it by its reset time)."""

    reset: float
    remaining: int  # the lowest Remaining any answer of this window gave (the limit, for an assumed window)
    after: float  # the reset of the window before: an answer naming it or an earlier one is stale
    assumed: bool = False  # the last window is over and no answer has named the new one yet
    ours: int = 0  # the run's requests answered in this window
    sent: int = 0  # the run's requests sent since the window began
    others: int = 0  # what the company's other users spent in it, as far as the headers tell


@dataclass
class RequestBudget:
    """Paces every API request of a run (all threads) from the rate-limit headers."""

    reserve: int | None = None  # None: a fifth of the limit the API reports
    max_per_minute: int | None = None
    limit: int | None = None  # from X-AircallApi-Limit, once an answer gave it
    lowest_remaining: int | None = None  # the lowest Remaining the run's answers gave, for the run summary
    sent: int = 0
    _window: _Window | None = field(default=None, repr=False)
    _others_last_window: int = 0
    _largest_jump: int = 0  # the most the others spent between two answers: what one answer may not show yet
    _in_flight: int = 0
    _accepted: bool = False  # a request was answered without an error: the others may follow
    _refused: bool = False  # the first request was refused (401, 403...): the others wait for the run to stop
    _resume_at: float = 0.0
    _recent: collections.deque[float] = field(default_factory=collections.deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def kept(self) -> int | None:
        """The reserve the run leaves to the company's other users (None until the limit is known)."""
        if self.reserve is not None:
            return self.reserve
        return None if self.limit is None else self.limit // DEFAULT_RESERVE_FRACTION

    def acquire(self, clock: Clock) -> None:
        """Wait until a request may be sent, and count it as sent; `clock` waits for the caller's run."""
        while True:
            clock.sleep(0)  # a stopped run sends nothing more
            with self._lock:
                now = clock.now()
                delay = self._delay(now)
                if delay <= 0:
                    self._in_flight += 1
                    self.sent += 1
                    self._recent.append(now)
                    if self._window is not None:
                        self._window.sent += 1
                    return
            clock.sleep(max(min(delay, STEP_SECONDS), CLOCK_GRAIN_SECONDS))

    def settle(self, status: int | None, headers: Mapping[str, str] | None = None) -> None:
        """Learn from the answer to a request `acquire` let through (None: it got no answer)."""
        with self._lock:
            self._in_flight -= 1
            if status is not None and status < 400:
                self._accepted = True
            elif status is not None and status < 500 and status != 429 and not self._accepted:
                self._refused = True  # a refused credential or add-on: the run ends, nothing more goes
            if headers is not None:
                self._observe(headers, rate_limited=status == 429)

    def hold_until(self, moment: float) -> None:
        """Hold every request until `moment` (UNIX time): after a 429, its Retry-After."""
        with self._lock:
            self._resume_at = max(self._resume_at, moment)

    # --- with the lock held -----------------------------------------------------

    def _delay(self, now: float) -> float:
        """Seconds until a request may go (0 or less: now)."""
        if now < self._resume_at:
            return self._resume_at - now
        if not self._accepted and (self._in_flight or self._refused):
            return STEP_SECONDS  # the first request goes alone; after its refusal, none
        while self._recent and self._recent[0] <= now - RATE_WINDOW_SECONDS:
            self._recent.popleft()
        if self.max_per_minute is not None and len(self._recent) >= self.max_per_minute:
            return self._recent[0] + RATE_WINDOW_SECONDS - now
        window = self._window
        if window is None or self.limit is None:
            return 0.0  # nothing known yet (or an API without the headers): the first answer tells
        if now >= window.reset:  # the budget is whole again, in a window no answer has named yet
            if not window.assumed:
                self._others_last_window = window.others
            after = window.after if window.assumed else window.reset
            window = self._window = _Window(now + RATE_WINDOW_SECONDS, self.limit, after, assumed=True)
        start = window.reset - RATE_WINDOW_SECONDS
        share = (self.limit - (self.kept or 0)) * min(1.0, (now - start + AHEAD_SECONDS) / RATE_WINDOW_SECONDS)
        if window.sent >= share:  # an even pace through the window, half of it ahead at most
            return min(window.reset - now, RATE_WINDOW_SECONDS / max(1, self.limit))
        if window.remaining - self._in_flight - 1 >= self._left_for_others(window, now):
            return 0.0
        return window.reset - now

    def _left_for_others(self, window: _Window, now: float) -> int:
        """What must stay in `Remaining` after one more request.

        The reserve, or what the others are expected to spend before the reset if that is
        more; and on top, the largest burst of theirs seen between two answers, which the
        latest answer may not show yet.
        """
        elapsed = max(MIN_RATE_SPAN_SECONDS, now - (window.reset - RATE_WINDOW_SECONDS))
        rate = max(self._others_last_window / RATE_WINDOW_SECONDS, window.others / elapsed)
        expected = int(rate * max(0.0, window.reset - now) + 0.999)
        return max(self.kept or 0, expected) + self._largest_jump

    def _observe(self, headers: Mapping[str, str], *, rate_limited: bool) -> None:
        try:
            limit = int(headers[LIMIT_HEADER]) if LIMIT_HEADER in headers else self.limit
            remaining = int(headers[REMAINING_HEADER])
            reset = float(headers[RESET_HEADER])
        except (KeyError, ValueError):
            return
        self.limit = limit
        if not rate_limited:
            self.lowest_remaining = (
                remaining if self.lowest_remaining is None else min(self.lowest_remaining, remaining)
            )
        window = self._window
        if window is not None and (reset <= window.after + 0.5 or (not window.assumed and reset < window.reset - 0.5)):
            return  # an answer from a window already over
        if window is None or window.assumed or reset > window.reset + 0.5:
            if window is not None and not window.assumed:
                self._others_last_window = window.others
            after = -1.0 if window is None else window.after if window.assumed else window.reset
            sent = window.sent if window is not None and window.assumed else 0  # sent in it before it was named
            window = self._window = _Window(reset, remaining, after, sent=sent)
        assert window is not None
        window.ours += 1
        window.remaining = 0 if rate_limited else min(window.remaining, remaining)
        if limit is not None:
            # requests of the run still unanswered may be in this count too: not the others'
            others = max(window.others, limit - remaining - window.ours - self._in_flight)
            # what the others spent between two answers (the first of a window: since it began)
            self._largest_jump = min(max(self._largest_jump, others - window.others), self.kept or 0)
            window.others = others
