"""The company's API budget: the tap's own requests counted, the limiter read as evidence, a reserve kept.

Aircall's rate limit is per company: every integration a company runs (its CRM sync, its
helpdesk, its own scripts) draws on the same `X-AircallApi-Remaining`, and a tap that spends
it to zero makes the others fail. Aircall publishes the three headers, not how its limiter
counts: fixed windows, a sliding log and a token bucket all send them, and `X-AircallApi-Reset`
may be a UNIX time or the seconds left. So the budget assumes no shape:

- **Its own ledger.** The budget knows when each of the run's requests went (and, from the
  state, those of the run before that may still count), so what `Remaining` fell by that the
  tap did not spend is the others', never a previous run's.
- **The headers are evidence.** Reset is read by its magnitude: a UNIX time (at least
  `EPOCH_FLOOR`) or seconds left. A Reset that holds still while time passes is a fixed window;
  one that moves with each answer is a rolling limiter, a token bucket when `Remaining` never
  came near the limit (its capacity, `capacity`), a sliding log otherwise.
- **A fair share, evenly.** The tap takes at most the limit less the reserve less what the
  others were seen to spend, a minute, spread evenly (its own pacer, half a minute ahead at
  most, less for a small bucket). The reserve (`rate_limit_reserve`; by default a fifth of the
  limit) is also kept in `Remaining`, scaled to what the limiter can hold: a bucket of 20 of a
  limit of 120 keeps a sixth of the reserve.
- **No headers, or headers that make no sense** (a Limit of 0, Remaining above the Limit, a
  Reset that is neither a time nor seconds): the limiter is named once in the log, and the run
  paces itself at `DEFAULT_PER_MINUTE`, halving that on each 429. Nothing is waited on for ever.
- **A 429 holds every request** until its `Retry-After` (at most `MAX_RETRY_AFTER_SECONDS`), or
  the Reset, or a backoff.
- **The first request goes alone**, and after a refusal none: a refused credential costs one
  request. **The tap's own rate is capped** at `max_requests_per_minute` when set.

Time comes from a `Clock` (clock.py), so tests drive the budget with a `VirtualClock` and never wait.
"""

from __future__ import annotations

import collections
import email.utils
import logging
import math
import threading
import typing as t
from dataclasses import dataclass, field

from tap_aircall_analytics.config.catalogue import LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tap_aircall_analytics.clock import Clock

logger = logging.getLogger("tap_aircall_analytics")

RATE_WINDOW_SECONDS = 60.0  # Aircall's limits are per minute
DEFAULT_RESERVE_FRACTION = 5  # without a `rate_limit_reserve`, a fifth of the limit is left to the others
DEFAULT_PER_MINUTE = 48  # the pace without usable headers: a limit of 60 less its reserve
STEP_SECONDS = 0.1  # a waiting request looks again this often: other answers change the budget
CLOCK_GRAIN_SECONDS = 1e-3  # the shortest wait: a shorter one may not move a clock at all
EPOCH_FLOOR = 1e9  # a Reset at least this is a UNIX time (2001 on); below, seconds left
MAX_RESET_SECONDS = 3600.0  # a Reset further away than this (either way) is not understood ...
RESET_SLACK_SECONDS = 5.0  # ... but for whole seconds rounded up and a clock a few seconds off the API's
RESET_TOLERANCE_SECONDS = 1.5  # two Resets this close name the same moment, when sent as seconds left
MAX_RETRY_AFTER_SECONDS = 120.0  # a longer Retry-After (or an infinite one) is not waited for whole
BACKOFF_SECONDS = 1.0  # a 429 that says nothing of when: the first wait, doubling
SMALL_CAPACITY = 0.75  # a rolling limiter whose Remaining never went above this share of the limit is a bucket
SHORT_WINDOW_SECONDS = 10.0  # a limiter that forgets every request of the tap within this has a window of seconds
KEEP_SECONDS = 2 * RATE_WINDOW_SECONDS  # how long the ledger keeps a request
MAX_RATE_LIMIT = 1_000_000  # the largest request count X-AircallApi-Limit may give

FIXED, SLIDING, BUCKET = "fixed", "sliding", "bucket"


@dataclass
class _Answer:
    """What one answer's headers said, and which of the run's requests it answered."""

    seq: int  # the request's number in the run (1 for the first)
    sent_at: float
    remaining: int
    reset: float  # a UNIX time, whatever the header's style


@dataclass
class RequestBudget:
    """Paces every API request of a run (all threads) from its ledger and the rate-limit headers."""

    reserve: int | None = None  # None: a fifth of the limit the API reports
    max_per_minute: int | None = None
    limit: int | None = None  # from X-AircallApi-Limit, once an answer gave it
    capacity: int | None = None  # the most the limiter was seen to hold: the highest Remaining, plus one
    lowest_remaining: int | None = None  # the lowest Remaining the run's answers gave, for the run summary
    sent: int = 0
    rate_limited: int = 0  # 429s answered to the run
    waited: float = 0.0  # seconds requests waited on the budget, for the run summary
    _ledger: collections.deque[tuple[int, float]] = field(default_factory=collections.deque, repr=False)
    _latest: _Answer | None = field(default=None, repr=False)
    _reset_style: str | None = field(default=None, repr=False)  # "a UNIX time" or "seconds left"
    _steady: int = field(default=0, repr=False)  # new Resets that came with the limiter whole again: fixed windows
    # (sent_at, seconds): answers that show the limiter already forgot a request of the tap this recent
    _forgot: collections.deque[tuple[float, float]] = field(default_factory=collections.deque, repr=False)
    _moved: int = field(default=0, repr=False)  # new Resets that came with a little more room: a rolling limiter
    # fixed windows: (sent_at, seconds) between a Reset and the next, the limiter whole again: a window is no longer
    _turns: collections.deque[tuple[float, float]] = field(default_factory=collections.deque, repr=False)
    # (sent_at, seconds): how far away answers named the Reset: a window is at least this long (less a second)
    _reach: collections.deque[tuple[float, float]] = field(default_factory=collections.deque, repr=False)
    _refused_at: float = field(default=0.0, repr=False)  # when the latest request answered 429 went
    # fixed windows: (its Reset, the others' requests seen in it, the seconds of it the answers saw)
    _others_window: tuple[float, int, float] = field(default=(0.0, 0, 0.0), repr=False)
    _others_last_window: tuple[int, float] = field(default=(0, 0.0), repr=False)
    _window_after_seq: int = field(default=-1, repr=False)  # the last request answered in the window before
    _others_pairs: collections.deque[tuple[float, float]] = field(default_factory=collections.deque, repr=False)
    _others_level: int = field(default=0, repr=False)  # sliding: the others' requests in the last minute
    _largest_jump: int = field(default=0, repr=False)  # the most the others spent between two answers
    _shape_before: str = field(default=FIXED, repr=False)
    _pace_tokens: float | None = field(default=None, repr=False)
    _pace_at: float = field(default=0.0, repr=False)
    _blind_per_minute: float = field(default=float(DEFAULT_PER_MINUTE), repr=False)
    _not_understood: str | None = field(default=None, repr=False)  # what made no sense, named once
    _headers_seen: bool = field(default=False, repr=False)
    _backoff: float = field(default=BACKOFF_SECONDS, repr=False)
    _in_flight: int = field(default=0, repr=False)
    _accepted: bool = field(default=False, repr=False)
    _refused: bool = field(default=False, repr=False)
    _resume_at: float = field(default=0.0, repr=False)
    _waiting: tuple[float, str] | None = field(default=None, repr=False)  # (until, why) of the latest wait
    _mine: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- what the run and its summary read --------------------------------------

    @property
    def kept(self) -> int | None:
        """The reserve the run leaves to the company's other users, a minute (None until the limit is known)."""
        if self.reserve is not None:
            return self.reserve
        return None if self.limit is None else self.limit // DEFAULT_RESERVE_FRACTION

    @property
    def shape(self) -> str | None:
        """The limiter the answers show: fixed, sliding or bucket (None without usable headers)."""
        with self._lock:
            return self._shape()

    def describe(self) -> str:
        """The limiter as the run saw it, in words, for the run summary."""
        window = self._window()
        with self._lock:
            if self._not_understood is not None and self._latest is None:
                return f"not understood ({self._not_understood}): paced at {self._blind_per_minute:.0f} a minute"
            if self._latest is None or self.limit is None:
                return f"no rate-limit headers: paced at {self._blind_per_minute:.0f} a minute"
            shape = self._shape()
            words = {
                FIXED: f"fixed {window:.0f}-s windows of {self.limit}",
                SLIDING: f"a sliding {window:.0f}-s log of {self.limit}",
                BUCKET: f"a token bucket of {self.capacity} refilled at {self.limit} a minute",
            }[shape]
            odd = f"; some answers not understood ({self._not_understood})" if self._not_understood else ""
            return f"{words}, Reset as {self._reset_style}, reserve {self._reserve_held()} in Remaining{odd}"

    def waiting(self, now: float) -> tuple[float, str] | None:
        """(seconds, why) when requests are waiting on the budget now; None when none is."""
        with self._lock:
            if self._waiting is None or self._waiting[0] <= now:
                return None
            return self._waiting[0] - now, self._waiting[1]

    def recent_requests(self, now: float) -> list[float]:
        """When the requests that may still count against the limit went (this run's and the last's)."""
        with self._lock:
            return [moment for _, moment in self._ledger if moment > now - RATE_WINDOW_SECONDS]

    def remember(self, moments: Iterable[float]) -> None:
        """Put an earlier run's recent requests in the ledger: they are the tap's, not the others'."""
        with self._lock:
            earlier = sorted(float(moment) for moment in moments)
            self._ledger.extendleft((0, moment) for moment in reversed(earlier))

    # --- the requests -----------------------------------------------------------

    def acquire(self, clock: Clock) -> None:
        """Wait until a request may be sent, and count it as sent; `clock` waits for the caller's run."""
        started: float | None = None
        while True:
            with self._lock:
                now = clock.now()
                started = now if started is None else started
                delay, why = self._delay(now)
                if delay <= 0:
                    clock.sleep(0)  # a stopped run sends nothing more: looked at last, as the request is let go
                    self._in_flight += 1
                    self.sent += 1
                    self._mine.request = (self.sent, now)
                    self._ledger.append((self.sent, now))
                    while self._ledger and self._ledger[0][1] <= now - KEEP_SECONDS:
                        self._ledger.popleft()
                    if self._pace_tokens is not None:
                        self._pace_tokens -= 1
                    self.waited += now - started
                    self._waiting = None
                    return
                self._waiting = (now + delay, why)
            clock.sleep(max(min(delay, STEP_SECONDS), CLOCK_GRAIN_SECONDS))

    def settle(self, status: int | None, headers: Mapping[str, str] | None = None, *, now: float | None = None) -> None:
        """Learn from the answer to the request `acquire` let through on this thread (None: no answer)."""
        seq, sent_at = getattr(self._mine, "request", (self.sent, 0.0))
        with self._lock:
            self._in_flight -= 1
            if status is not None and status < 400:
                self._accepted = True
                self._backoff = BACKOFF_SECONDS
            elif status in (401, 403) and not self._accepted:
                self._refused = True  # a refused credential or add-on: the run ends, nothing more goes
            if status == 429:
                self.rate_limited += 1
                self._refused_at = sent_at
            if headers is not None:
                self._observe(headers, seq, sent_at, sent_at if now is None else now, rate_limited=status == 429)

    def back_off(self, headers: Mapping[str, str], now: float) -> float:
        """After a 429: hold every request until its Retry-After, the Reset or a backoff; return the wait."""
        given = headers.get("Retry-After")
        wait = _retry_after(given, now)
        with self._lock:
            if given and wait is None:
                self._name(f"Retry-After {given[:40]!r}, not a time to wait: the Reset or a backoff was waited instead")
            if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                self._name(f"Retry-After {headers.get('Retry-After')}, waited {MAX_RETRY_AFTER_SECONDS:.0f} s at most")
                wait = MAX_RETRY_AFTER_SECONDS
            if wait is None and self._latest is not None and self._latest.reset > now:
                wait = min(self._latest.reset - now, MAX_RETRY_AFTER_SECONDS)
            if wait is None:
                wait, self._backoff = self._backoff, min(self._backoff * 2, MAX_RETRY_AFTER_SECONDS)
            if self._latest is None:  # no headers to pace by: the pace itself was too fast
                self._blind_per_minute = max(1.0, self._blind_per_minute / 2)
            self._resume_at = max(self._resume_at, now + wait)
        return wait

    def hold_until(self, moment: float) -> None:
        """Hold every request until `moment` (UNIX time)."""
        with self._lock:
            self._resume_at = max(self._resume_at, moment)

    # --- with the lock held -----------------------------------------------------

    def _delay(self, now: float) -> tuple[float, str]:
        """Seconds until a request may go (0 or less: now), and why it waits."""
        window = self._window()
        if now < self._resume_at:
            return self._resume_at - now, "429 Too Many Requests, holding until Retry-After"
        if not self._accepted and (self._in_flight or self._refused):
            return STEP_SECONDS, "the first request goes alone"
        if self.max_per_minute is not None:
            mine = [moment for seq, moment in self._ledger if seq and moment > now - RATE_WINDOW_SECONDS]
            if len(mine) >= self.max_per_minute:
                return mine[-self.max_per_minute] + RATE_WINDOW_SECONDS - now, "max_requests_per_minute"
        if self.sent == 0:
            return 0.0, ""
        latest, limit = self._latest, self.limit
        if latest is None or limit is None:  # no headers (yet): the safe pace
            return self._paced(now, self._blind_per_minute, self._blind_per_minute / 4, "no rate-limit headers")
        others = self._others_per_minute(now)
        kept = self.kept or 0
        share = max(limit / 60, limit - kept - others)  # a window's; never less than a sixtieth of the limit
        shape = self._shape()
        burst = share / 2  # half a window ahead at most
        if shape == BUCKET:
            burst = max(1.0, (self._capacity() - self._reserve_held()) / 2)
        per = "a minute" if window == RATE_WINDOW_SECONDS else f"per {window:g} s"
        paced = self._paced(
            now, share, burst, f"pacing at {share:.0f} {per} (limit {limit}, reserve {kept}, others {others:.0f})"
        )
        if paced[0] > 0 and not self._look_at_next_window(now, shape):
            return paced
        remaining, refill_in = self._remaining_now(now, shape)
        floor = self._floor(now, shape, others)
        if remaining - 1 >= floor:
            return 0.0, ""
        self._pace_tokens = min(self._pace_tokens or 0.0, 1.0)  # no burst saved up while the limiter holds it
        return max(refill_in, CLOCK_GRAIN_SECONDS), f"Remaining {max(0, math.floor(remaining))}, reserve {floor}"

    def _look_at_next_window(self, now: float, shape: str) -> bool:
        """True when one request may go past the pacer to see a window of seconds turn: the answers so far named
        Resets seconds away and none has shown a window turn yet, the latest Reset has passed, nothing is in flight.
        One request a window at most: a fixed window of a minute shows itself with the first."""
        latest = self._latest
        if shape != FIXED or self._turns or latest is None or self._in_flight or latest.seq != self.sent:
            return False
        reach = max((seconds for _, seconds in self._reach), default=RATE_WINDOW_SECONDS)
        return reach <= SHORT_WINDOW_SECONDS and now >= latest.reset + self._reset_grain()

    def _paced(self, now: float, per_window: float, burst: float, why: str) -> tuple[float, str]:
        """The tap's own pacer: `per_window` requests a window, evenly, `burst` ahead at most."""
        window = self._window()
        burst = max(1.0, burst)
        rate = per_window / window
        if self._pace_tokens is None:
            self._pace_tokens, self._pace_at = burst - 1, now  # the first request has gone
        self._pace_tokens = min(burst, self._pace_tokens + rate * max(0.0, now - self._pace_at))
        self._pace_at = now
        if self._pace_tokens >= 1 - 1e-9:
            return 0.0, ""
        return (1 - self._pace_tokens) / rate, why

    def _shape(self) -> str:
        if self._moved * 4 > self._steady:
            limit = self.limit or 0
            return BUCKET if self._capacity() < limit else SLIDING
        return FIXED

    def _window(self) -> float:
        """The limiter's window: a minute, unless the answers show a shorter one.

        Fixed windows never turn twice within one window, and a sliding log whole again has
        forgotten the tap's request before: Resets that follow each other, the second with the
        limiter whole again, d seconds apart show a window of d seconds at most, once no answer
        named a Reset further away than that. Otherwise, a rolling limiter: every answer of the
        last minute shows it forgets within seconds.
        """
        shape = self._shape()
        if shape == FIXED:
            bounds = [seconds for _, seconds in self._turns]
        elif shape == SLIDING and self._latest and self._refused_at <= self._latest.sent_at - RATE_WINDOW_SECONDS:
            # a log that no longer counts a request of the tap sent s seconds ago keeps s seconds at most
            # (unless a refused request, which a log does not keep, is in the ledger)
            bounds = [seconds for _, seconds in self._forgot if seconds < RATE_WINDOW_SECONDS]
        else:
            bounds = []
        if bounds:
            shortest = min(bounds)
            reach = max((seconds for _, seconds in self._reach), default=0.0)
            if shortest < RATE_WINDOW_SECONDS and reach <= shortest + 1:  # a Reset is whole seconds
                return max(1.0, math.ceil(shortest - 1e-6))
        if self._forgot:
            longest = max(seconds for _, seconds in self._forgot)
            if longest <= SHORT_WINDOW_SECONDS:
                return max(1.0, math.ceil(longest))
        return RATE_WINDOW_SECONDS

    def _learn_memory(self, answer: _Answer) -> None:
        """How recent a request of the tap the limiter no longer counts: Remaining leaves room for fewer than
        the tap's latest requests. Under a minute's window, some answers show a long memory; under a
        window of seconds, none does. (A small bucket refills in seconds: not read this way.)"""
        for seen in (self._forgot, self._turns, self._reach):
            while seen and seen[0][0] <= answer.sent_at - RATE_WINDOW_SECONDS:
                seen.popleft()
        self._reach.append((answer.sent_at, answer.reset - answer.sent_at))
        limit = self.limit or 0
        if self._capacity() < limit:
            return
        counted = limit - answer.remaining  # the requests the limiter counts now, the others' included
        mine = [moment for seq, moment in self._ledger if seq <= answer.seq]
        if len(mine) > counted:
            self._forgot.append((answer.sent_at, answer.sent_at - mine[-counted - 1]))
        else:
            self._forgot.append((answer.sent_at, RATE_WINDOW_SECONDS))

    def _capacity(self) -> int:
        """What the limiter holds: the limit, unless Remaining never came near it (a small bucket)."""
        limit = self.limit or 1
        seen = min(self.capacity or limit, limit)
        return limit if seen >= SMALL_CAPACITY * limit else seen

    def _reserve_held(self) -> int:
        """The reserve kept in Remaining: the reserve, scaled to what the limiter holds."""
        kept, limit = self.kept or 0, self.limit or 1
        return math.ceil(kept * self._capacity() / limit) if self._capacity() < limit else kept

    def _mine_between(self, after: float, through_seq: int, *, since_seq: int = -1) -> int:
        """The tap's requests sent after `after` (UNIX time), numbered after since_seq and up to through_seq."""
        return sum(1 for seq, moment in self._ledger if moment >= after and since_seq < seq <= through_seq)

    def _others_per_minute(self, now: float) -> float:
        window = self._window()
        shape = self._shape()
        if shape == FIXED:
            # what they spent in the spans of this window and the last that answers saw
            _, others, seen = self._others_window
            last_others, last_seen = self._others_last_window
            return (others + last_others) * window / max(window / 4, seen + last_seen)
        if shape == SLIDING:
            return float(self._others_level)
        while self._others_pairs and self._others_pairs[0][0] <= now - window:
            self._others_pairs.popleft()
        if not self._others_pairs:
            return 0.0
        span = max(window / 4, now - self._others_pairs[0][0])
        return max(0.0, sum(count for _, count in self._others_pairs)) * window / min(span, window)

    def _remaining_now(self, now: float, shape: str) -> tuple[float, float]:
        """What Remaining is likely now after the tap's later requests, and seconds until it grows by one."""
        window = self._window()
        latest = self._latest
        assert latest is not None and self.limit is not None
        after = self.sent - latest.seq  # the tap's requests sent after the latest answered one
        rate = self.limit / window
        if shape == FIXED:
            turned = latest.reset + self._reset_grain()
            if now >= turned:  # a new window no answer named yet: one request at a time goes to see it
                stale = latest.sent_at < turned or now >= latest.sent_at + self._tolerance()
                return (self._capacity() if after == 0 and stale else -1.0), STEP_SECONDS
            return latest.remaining - after, latest.reset - now
        if shape == SLIDING:  # the requests of a minute before leave the log
            left = latest.sent_at - window
            mine_left = sum(1 for _, moment in self._ledger if left < moment <= now - window)
            others_left = self._others_level * max(0.0, now - latest.sent_at) / window
            remaining = min(self.limit, latest.remaining + mine_left + others_left) - after
            return remaining, 1 / rate
        remaining = min(self._capacity(), latest.remaining + rate * max(0.0, now - latest.sent_at)) - after
        return remaining, 1 / rate

    def _floor(self, now: float, shape: str, others: float) -> int:
        """What must stay in Remaining after one more request."""
        window = self._window()
        held = self._reserve_held()
        jump = min(self._largest_jump, held)  # a burst of theirs the latest answer may not show yet
        if shape == FIXED and self._latest is not None and now < self._latest.reset:
            # in a fixed window, what they will spend before the reset comes out of this window too
            expected = math.ceil(others * (self._latest.reset - now) / window)
            return held + max(jump, min(expected, self._capacity() // 2))
        return held + jump

    def _tolerance(self) -> float:
        """How far apart two Resets may be and name the same moment: sent as a time, they are equal."""
        return RESET_TOLERANCE_SECONDS if self._reset_style == "seconds left" else 0.5

    def _reset_grain(self) -> float:
        """How late a window may turn after its Reset: a second when Reset is the seconds left, rounded."""
        return 1.0 if self._reset_style == "seconds left" else 0.0

    def _name(self, what: str) -> None:
        """Say once in the log that the limiter's answers make no sense, and what the run does instead."""
        if self._not_understood is None:
            logger.warning(
                "The API's rate limit is not understood (%s): the tap paces itself without it "
                "(%d a minute when no header helps) and backs off on 429s",
                what,
                DEFAULT_PER_MINUTE,
            )
        self._not_understood = self._not_understood or what

    def _observe(self, headers: Mapping[str, str], seq: int, sent_at: float, now: float, *, rate_limited: bool) -> None:
        present = [name for name in (LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER) if name in headers]
        if not present:
            return
        shown = ", ".join(f"{name} {str(headers.get(name))[:20]}" for name in present)
        if len(present) < 3:
            self._name(f"only {shown}")
            return
        limit = rate_limit_of(headers)
        if limit is None:
            self._name(f"{LIMIT_HEADER} {headers[LIMIT_HEADER][:20]}")
            return
        try:
            remaining = int(headers[REMAINING_HEADER])
            reset_value = float(headers[RESET_HEADER])
        except ValueError:
            self._name(shown)
            return
        reset = self._reset(reset_value, now)
        if remaining < 0 or remaining > limit or reset is None:
            what = (
                f"{REMAINING_HEADER} {remaining} of {LIMIT_HEADER} {limit}"
                if not 0 <= remaining <= limit
                else f"{RESET_HEADER} {headers[RESET_HEADER][:20]}"
            )
            self._name(what)
            return
        self.limit = limit
        if not rate_limited:
            self.lowest_remaining = (
                remaining if self.lowest_remaining is None else min(self.lowest_remaining, remaining)
            )
            # the most the limiter was seen to hold: this request, and the last run's it may still count
            earlier = sum(1 for seq, moment in self._ledger if seq == 0 and moment > sent_at - RATE_WINDOW_SECONDS)
            self.capacity = max(self.capacity or 0, remaining + 1 + (earlier if self._latest is None else 0))
        answer = _Answer(seq, sent_at, 0 if rate_limited else remaining, reset)
        latest = self._latest
        if latest is not None and seq < latest.seq:
            return  # an answer overtaken by a later request's: the later one tells more
        self._learn_memory(answer)
        self._learn_shape(latest, answer)
        if not rate_limited:  # a 429 says the limiter is out, not who spent it: the hold covers it
            self._learn_others(latest, answer)
        self._latest = answer

    def _reset(self, value: float, now: float) -> float | None:
        """The Reset as a UNIX time, read by its magnitude; None when it is neither a time nor seconds left."""
        if not math.isfinite(value) or value < 0:
            return None
        if value >= EPOCH_FLOOR:
            if abs(value - now) > MAX_RESET_SECONDS + RESET_SLACK_SECONDS:
                return None
            self._reset_style = self._reset_style or "a UNIX time"
            return value
        if value > MAX_RESET_SECONDS + RESET_SLACK_SECONDS:
            return None
        self._reset_style = self._reset_style or "seconds left"
        return now + value

    def _learn_shape(self, before: _Answer | None, answer: _Answer) -> None:
        """A new Reset that comes with the limiter whole again is a fixed window's; with a little room, a rolling one's.

        Only a limiter that held more than a little at the Reset before tells the two apart: a
        window the tap and the others barely used is whole again either way (its Reset still
        says how long a window is at most). And an answer that names a Reset already past is
        never a fixed window's.
        """
        if answer.sent_at >= answer.reset + self._reset_grain() + self._tolerance():
            self._moved += 1
        if before is None or abs(answer.reset - before.reset) <= self._tolerance():
            return
        capacity = self._capacity()
        little = max(1, capacity // 8)  # what the others may have spent since, or a rolling limiter freed
        held_before = capacity - before.remaining
        held_now = capacity - answer.remaining - (answer.seq - before.seq)  # less the tap's requests since
        whole_again = answer.reset > before.reset and held_now <= little
        if whole_again:
            self._turns.append((answer.sent_at, answer.reset - before.reset))
        if held_before <= little and answer.reset > before.reset:
            return  # a window barely used: whole again under any limiter
        if whole_again:
            self._steady += 1
        else:
            self._moved += 1

    def _learn_others(self, before: _Answer | None, answer: _Answer) -> None:
        """What the others spent, as this answer shows it once the tap's own requests are counted out."""
        window = self._window()
        limit = self.limit
        assert limit is not None
        shape = self._shape()
        changed = shape != self._shape_before
        if changed:  # what the others spent was read another way until now
            self._shape_before, self._largest_jump = shape, 0
        if shape == FIXED:
            start = answer.reset - window
            reset, counted, seen = self._others_window
            if abs(answer.reset - reset) > self._tolerance():
                if answer.reset < reset:
                    return  # an answer of a window already over
                if reset:
                    self._others_last_window = (counted, seen)
                    self._window_after_seq = before.seq if before is not None else 0
                counted, seen = 0, 0.0
            # the tap's requests of this window: a Reset is whole seconds, so its start is known to a second;
            # those answered in the window before are not in it
            mine = self._mine_between(start - max(1.0, self._tolerance()), answer.seq, since_seq=self._window_after_seq)
            others = max(0, self._capacity() - answer.remaining - mine)
            self._largest_jump = max(self._largest_jump, others - counted)
            self._others_window = (answer.reset, max(counted, others), max(seen, answer.sent_at - start))
        elif shape == SLIDING:
            start = answer.sent_at - window
            others = max(0, self._capacity() - answer.remaining - self._mine_between(start + 1e-9, answer.seq))
            if not changed:
                self._largest_jump = max(self._largest_jump, others - self._others_level)
            self._others_level = others
        elif before is not None:  # a bucket: refilled at the limit's rate, up to its capacity
            refill = limit / window * max(0.0, answer.sent_at - before.sent_at)
            mine = answer.seq - before.seq
            spent = min(self._capacity(), before.remaining + refill) - mine - answer.remaining
            self._others_pairs.append((answer.sent_at, spent))
            self._largest_jump = max(self._largest_jump, round(spent))


def rate_limit_of(headers: Mapping[str, str]) -> int | None:
    """The limit an answer's X-AircallApi-Limit gives, when a whole number from 1 to MAX_RATE_LIMIT; else None.

    The one reader of the header: the budget and the plan's probe believe the same limits.
    """
    value = str(headers.get(LIMIT_HEADER, "")).strip()
    return int(value) if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_RATE_LIMIT else None


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After asks for (a number, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - now)
    if not math.isfinite(seconds) or seconds < 0:  # `inf` is not a time to wait: the Reset or a backoff is
        return None
    return seconds
