"""Spending the API rate limit: a rolling hour of this exporter's own requests, and pauses.

The promises, for one token:

- No rolling hour ever holds more than `requests_per_hour` of the exporter's requests, the first
  hour included: every request is logged with the time it was sent, and one waits while the
  last hour's log is full. Within that, a request goes at once, so a read the budget can afford
  runs at the API's own pace (and `poll.concurrency`).
- Requests are spent in order of value (`Spend`), whichever loop asks: each kind may fill a
  smaller share of the rolling hour than the kind before it (SHARES), so when the hour runs
  short the more valuable request goes and the less valuable waits. Polls may fill the whole
  hour; a first read and what may reveal an unprotected database nine tenths; resyncs, the rest
  of a coverage round and refreshes three quarters. The last tenth is the polls' alone: a
  larger account has its interval stretched for the rest of that hour (`interval_for`) rather
  than its polls starved until the first read leaves the window.
- Requests stop while the API reports fewer than `reserve` requests left in its window, and
  after a 429, until the window resets: other tools (CI, the CLI, scripts) share the token.

The log lives in memory: a restarted exporter does not know what its predecessor sent, so in
the hour after a restart the API may see up to the old process's spend plus the new one's
first read (at most 1.9 times the budget). The reserve, which the API's own counters drive,
still keeps the token's other users whole.

`RateLimitWindow` is the one record of what the API says of the token's window and of the pause
that calls for; it lives as long as the process, and each budget built for the account (at
start, at every reload) spends against the same one.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from enum import Enum, IntEnum

from exporter.durations import HOUR, format_duration

log = logging.getLogger(__name__)


class Spend(IntEnum):
    """What a request is for, the most valuable first (docs/design.md, "What is read first")."""

    POLL = 0  # a destination's poll after its first read; a managed or volume backup listing
    DISCOVERY = 1  # a first read, and what may reveal a database that nothing protects
    BACKGROUND = 2  # resyncs, cadenced reads, the rest of a coverage round: they can wait
    REFRESH = 3  # what only adds detail to the protected: the schedules of listed addons


# The share of the rolling hour each kind may fill. Discovery's nine tenths: at 1,000 addons
# (bench/coverage.py) every first read and the round's reads that reveal the unprotected addons
# take 234 requests, which three quarters (225) cut an hour short (every unprotected addon on
# /metrics after 1 h 15 s, now 15 s); the 30 left are the polls' in that hour, which spent 18
# there. Background keeps three quarters, as before.
# Refreshes (the schedules of addons a destination lists, 990 of 1,000 in bench/coverage.py)
# seven tenths: as background, their first reads and re-reads filled three quarters of the
# hour for the first 32 hours, and every volume's read after its slot waited for them.
SHARES = {Spend.POLL: 1.0, Spend.DISCOVERY: 0.9, Spend.BACKGROUND: 0.75, Spend.REFRESH: 0.7}
# The API logs a request when it arrives, a little after we send it: each request stays in our
# rolling hour this much longer, so that the API's log never sees more than the budget.
FLIGHT_MARGIN = 5.0
# When the API gives no reset time, pause this long before asking again.
UNKNOWN_RESET_PAUSE = 60.0
# x-ratelimit-reset counts whole seconds: waking on the dot could land just before the reset.
RESET_MARGIN = 1.0


# The loop a request is sent for (`AccountLoops.run` sets it; the tasks a loop starts inherit
# it): a wait is that loop's, and /-/healthy holds only that loop's stall check for it.
SPENDING_LOOP: ContextVar[str] = ContextVar("spending_loop", default="")

# x-ratelimit-reset counts whole seconds, so one window's reset time wobbles by about that.
SAME_WINDOW_SLACK = 5.0


class Pause(Enum):
    """Why requests are paused: what would end the pause sooner differs."""

    RESERVE = "reserve"  # the API's window is down to rate_limit.reserve: a lower one would
    RATE_LIMITED = "rate limited"  # the API answered 429: only its window resetting


class RateLimitWindow:
    """The API's rate-limit window for one token, as its answers tell it, and our pause."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.limit: float | None = None
        self.remaining: float | None = None
        self.reset_at: float | None = None
        self.paused_until = 0.0
        self.pause_reason = ""  # the pause's cause, as a log line says it
        self.pause_cause: Pause | None = None
        self.throttled_seconds = 0.0  # how long requests of this token waited, in all

    def observe(self, limit: float | None, remaining: float | None, reset_at: float | None) -> None:
        """The x-ratelimit-* headers of one answer. The lowest `remaining` of a window is kept:
        concurrent answers arrive out of order, and only a later reset time means a new window."""
        if limit is not None:
            self.limit = limit
        previous_reset = self.reset_at
        new_window = (
            reset_at is not None
            and previous_reset is not None
            and reset_at > previous_reset + SAME_WINDOW_SLACK
        )
        if remaining is not None and (
            new_window or self.remaining is None or remaining < self.remaining
        ):
            self.remaining = remaining
        if reset_at is not None and (new_window or previous_reset is None):
            self.reset_at = reset_at

    def pause(self, reset_at: float | None, cause: Pause, why: str) -> None:
        """No request of this token until the window resets (or a while, when unknown)."""
        now = self._clock()
        if reset_at is not None and reset_at > now:
            until = reset_at + RESET_MARGIN
        else:
            until = now + UNKNOWN_RESET_PAUSE
        if until > self.paused_until + 1:
            log.warning("pausing API requests for %s: %s", format_duration(until - now), why)
            self.paused_until = until
            self.pause_reason = why
            self.pause_cause = cause


class BudgetSpent(Exception):
    """A request that would have to wait for the budget, where waiting is not allowed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request budget allows no request for {seconds:.0f}s")
        self.seconds = seconds


class RequestBudget:
    def __init__(
        self,
        requests_per_hour: int,
        reserve: float,
        window: RateLimitWindow | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.requests_per_hour = requests_per_hour
        self.reserve = reserve
        self.window = window or RateLimitWindow(clock)
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()  # when each request of the rolling hour was sent
        # One waiter of each kind at a time: a full read waiting for the hour to free up never
        # holds up the polls that a larger share allows.
        self._waiting = {spend: asyncio.Lock() for spend in Spend}
        # requests inside `acquire`, by the loop they are for and their kind
        self._waiters: Counter[tuple[str, Spend]] = Counter()
        # When the wait of each kind's request at the head of its queue ends (see held_until):
        # the requests queued behind it wait at least as long.
        self._waits_end = dict.fromkeys(Spend, 0.0)
        # When each loop's last wait ended: it had nothing to show for its time until then.
        self._waited_until: dict[str, float] = {}
        # False: a request that would wait raises BudgetSpent instead (`--once`, whose coverage
        # takes what the hour allows now and says what it left out).
        self.waits = True

    @property
    def paused_until(self) -> float:
        return self.window.paused_until

    def limit(self, spend: Spend) -> int:
        """How many requests of the rolling hour this kind of request may fill."""
        return max(1, math.floor(self.requests_per_hour * SHARES[spend]))

    def _forget_sent_before(self, now: float) -> None:
        while self._sent and self._sent[0] + HOUR + FLIGHT_MARGIN <= now:
            self._sent.popleft()

    def remaining(self) -> int:
        """Requests the budget still allows in the current rolling hour."""
        self._forget_sent_before(self._clock())
        return max(0, self.requests_per_hour - len(self._sent))

    def allows_now(self, spend: Spend = Spend.POLL) -> int:
        """How many requests of this kind may be sent now without waiting."""
        now = self._clock()
        if self.window.paused_until > now:
            return 0
        self._forget_sent_before(now)
        return max(0, self.limit(spend) - len(self._sent))

    def delay(self, spend: Spend = Spend.POLL) -> float:
        """How long a request must wait now: for a pause, or for old ones to leave the hour."""
        now = self._clock()
        if self.window.paused_until > now:
            return self.window.paused_until - now
        self._forget_sent_before(now)
        over = len(self._sent) - self.limit(spend)
        if over < 0:
            return 0.0
        return self._sent[over] + HOUR + FLIGHT_MARGIN - now

    async def acquire(self, spend: Spend = Spend.POLL) -> None:
        """Wait until a request may be sent, then log it as sent."""
        loop = SPENDING_LOOP.get()
        waiter = (loop, spend)
        self._waiters[waiter] += 1
        waited = self._waiting[spend].locked()  # queued behind a request of its kind
        try:
            async with self._waiting[spend]:
                while (seconds := self.delay(spend)) > 0:
                    if not self.waits:
                        raise BudgetSpent(seconds)
                    waited = True
                    await self._wait(spend, seconds)
                self._sent.append(self._clock())
        finally:
            self._waiters[waiter] -= 1
            if not self._waiters[waiter]:
                del self._waiters[waiter]
            if waited:
                self._waited_until[loop] = max(self._waited_until.get(loop, 0.0), self._clock())

    async def _wait(self, spend: Spend, seconds: float) -> None:
        """Wait, announced first (held_until); the throttled time counts what was waited, as
        it passes (a wait cut short by a stop counts only its part)."""
        began = self._clock()
        self._waits_end[spend] = max(self._waits_end[spend], began + seconds)
        try:
            await self._sleep(seconds)
        finally:
            self.window.throttled_seconds += max(0.0, min(self._clock() - began, seconds))

    def held_until(self, loop: str | None = None) -> float:
        """Until when this budget holds back the requests of `loop` (None: of any loop): a
        pause holds every loop; a wait for the rolling hour holds the loops with a request of
        that kind waiting (behind the one at the head of the queue, as long), and a loop's
        last wait, until it ended. A loop is waiting until then, not stalled (supervise.Health);
        another loop that spends the same budget is not: while a coverage round waits an hour,
        a poller that stops making progress is still called stalled."""
        held = self.window.paused_until
        for waiting_loop, until in self._waited_until.items():
            if loop is None or waiting_loop == loop:
                held = max(held, until)
        for waiting_loop, spend in self._waiters:
            if loop is None or waiting_loop == loop:
                held = max(held, self._waits_end[spend])
        return held

    def what_waits(self, loop: str | None = None) -> str:
        """What the budget holds back of `loop`'s requests (None: of every loop), for
        /-/healthy: each kind of request waiting, with the share of the rolling hour it may
        fill (a request that need not wait never yields inside `acquire`, so whoever asks sees
        only the ones waiting), and the pause, if any."""
        parts = []
        if self.window.paused_until > self._clock():
            parts.append(f"paused: {self.window.pause_reason}")
        for spend in Spend:
            waiting = sum(
                count
                for (waiting_loop, kind), count in self._waiters.items()
                if kind is spend and (loop is None or waiting_loop == loop)
            )
            if waiting:
                parts.append(
                    f"{spend.name.lower()}: {waiting} waiting, may fill "
                    f"{self.limit(spend)} of the hour's {self.requests_per_hour}"
                )
        return "; ".join(parts)

    def check_reserve(self, remaining: float | None, reset_at: float | None) -> None:
        """Below the reserve, stop until the window resets."""
        if remaining is not None and remaining < self.reserve:
            self.window.pause(
                reset_at,
                Pause.RESERVE,
                f"only {remaining:.0f} requests left, reserve is {self.reserve:.0f}",
            )

    def rate_limited(self, reset_at: float | None) -> None:
        """A 429: every destination of this token waits for the reset."""
        self.window.pause(reset_at, Pause.RATE_LIMITED, "the API answered 429")

    def seconds_to_send(self, requests: int, spend: Spend = Spend.BACKGROUND) -> float:
        """How long until `requests` more requests have been allowed, each sent as soon as the
        budget allows (the API's own pace aside): the estimate of a read's duration."""
        now = self._clock()
        start = max(now, self.window.paused_until)
        self._forget_sent_before(now)
        limit = self.limit(spend)
        if len(self._sent) + requests <= limit:
            return start - now
        # Each request waits for the one `limit` places before it to leave the hour, so only
        # the newest `limit` sends matter.
        newest = deque(self._sent, maxlen=limit)
        last = now
        for _ in range(requests):
            last = start if len(newest) < limit else max(start, newest[0] + HOUR + FLIGHT_MARGIN)
            newest.append(last)
        return last - now

    def interval_for(self, requests_per_cycle: float, interval: float) -> float:
        """The shortest poll interval, at least `interval`, at which a cycle of
        `requests_per_cycle` requests fits the budget: in the steady state, and in the hour
        after a burst (a first read) that already spent part of it."""
        shortest = max(interval, requests_per_cycle * HOUR / self.requests_per_hour)
        if self._cycles_fit(shortest, requests_per_cycle):
            return shortest
        longest = HOUR + FLIGHT_MARGIN  # by then everything sent so far has left the hour
        for _ in range(30):  # bisection to well under a second
            middle = (shortest + longest) / 2
            if self._cycles_fit(middle, requests_per_cycle):
                longest = middle
            else:
                shortest = middle
        return longest

    def _cycles_fit(self, interval: float, cost: float) -> bool:
        """Do cycles of `cost` every `interval` from now on fit beside what was sent?"""
        now = self._clock()
        self._forget_sent_before(now)
        cycles_in_hour = math.ceil((HOUR + FLIGHT_MARGIN) / interval) - 1
        if len(self._sent) + cycles_in_hour * cost <= self.requests_per_hour:
            return True  # even if nothing sent so far left the hour
        leaving = [sent + HOUR + FLIGHT_MARGIN for sent in self._sent]  # sorted
        for cycles in range(1, cycles_in_hour + 1):
            start = now + cycles * interval
            still_in_hour = len(leaving) - bisect.bisect_right(leaving, start)
            if still_in_hour + cycles * cost > self.requests_per_hour:
                return False
        return True
