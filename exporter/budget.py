"""Spending the API rate limit like money: a token bucket per API token, and pauses.

The bucket holds one minute's worth of requests and refills so that no hour, the first one
included, sees more than `requests_per_hour`. Whatever the bucket says, requests stop while the
API reports fewer than `reserve` requests left in its window, and after a 429, until the
window resets: other tools (CI, the CLI, scripts) share the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from exporter.durations import format_duration

log = logging.getLogger(__name__)

HOUR = 3600.0
# When the API gives no reset time, pause this long before asking again.
UNKNOWN_RESET_PAUSE = 60.0
# x-ratelimit-reset counts whole seconds: waking on the dot could land just before the reset.
RESET_MARGIN = 1.0


MIN_REQUESTS_PER_HOUR = 10


class RequestBudget:
    def __init__(
        self,
        requests_per_hour: float,
        reserve: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.requests_per_hour = requests_per_hour
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self.capacity = max(1.0, requests_per_hour / 60)
        # Refill so that the first full bucket plus an hour's refill is the hourly budget.
        self._rate = (requests_per_hour - self.capacity) / HOUR
        self._tokens = self.capacity
        self._updated = clock()
        self.paused_until = 0.0
        self.throttled_seconds = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    async def acquire(self) -> None:
        """Wait until a request may be sent, then spend it."""
        async with self._lock:
            while (paused := self.paused_until - self._clock()) > 0:
                await self._wait(paused)
            self._refill(self._clock())
            # Take the token now, on credit: the wait below is exactly what repays it, and no
            # float rounding can leave a waiter a hair short of a whole token forever.
            self._tokens -= 1
            if self._tokens < 0:
                await self._wait(-self._tokens / self._rate)

    async def _wait(self, seconds: float) -> None:
        self.throttled_seconds += seconds
        await self._sleep(seconds)

    def observe(self, remaining: float | None, reset_at: float | None) -> None:
        """Headers of a response: below the reserve, stop until the window resets."""
        if remaining is not None and remaining < self.reserve:
            self._pause(
                reset_at, f"only {remaining:.0f} requests left, reserve is {self.reserve:.0f}"
            )

    def rate_limited(self, reset_at: float | None) -> None:
        """A 429: every destination of this token waits for the reset."""
        self._pause(reset_at, "the API answered 429")

    def _pause(self, reset_at: float | None, why: str) -> None:
        now = self._clock()
        if reset_at is not None and reset_at > now:
            until = reset_at + RESET_MARGIN
        else:
            until = now + UNKNOWN_RESET_PAUSE
        if until > self.paused_until + 1:
            log.warning("pausing API requests for %s: %s", format_duration(until - now), why)
            self.paused_until = until

    def sustainable_interval(self, requests_per_cycle: float, interval: float) -> float:
        """The poll interval at which `requests_per_cycle` each cycle stays within budget."""
        return max(interval, requests_per_cycle * HOUR / self.requests_per_hour)
