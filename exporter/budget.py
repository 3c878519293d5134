"""Spending the API rate limit like money: a token bucket per API token, and pauses.

The bucket holds one minute's worth of requests and refills so that no hour, the first one
included, sees more than `requests_per_hour`. Whatever the bucket says, requests stop while the
API reports fewer than `reserve` requests left in its window, and after a 429, until the
window resets: other tools (CI, the CLI, scripts) share the token.

`RateLimitWindow` is the one record of what the API says of the token's window and of the pause
that calls for; it lives as long as the process, and each budget built for the account (at
start, at every reload) spends against the same one.
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


# x-ratelimit-reset counts whole seconds, so one window's reset time wobbles by about that.
SAME_WINDOW_SLACK = 5.0


class RateLimitWindow:
    """The API's rate-limit window for one token, as its answers tell it, and our pause."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.limit: float | None = None
        self.remaining: float | None = None
        self.reset_at: float | None = None
        self.paused_until = 0.0
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

    def pause(self, reset_at: float | None, why: str) -> None:
        """No request of this token until the window resets (or a while, when unknown)."""
        now = self._clock()
        if reset_at is not None and reset_at > now:
            until = reset_at + RESET_MARGIN
        else:
            until = now + UNKNOWN_RESET_PAUSE
        if until > self.paused_until + 1:
            log.warning("pausing API requests for %s: %s", format_duration(until - now), why)
            self.paused_until = until


class RequestBudget:
    def __init__(
        self,
        requests_per_hour: float,
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
        self.capacity = max(1.0, requests_per_hour / 60)
        # Refill so that the first full bucket plus an hour's refill is the hourly budget.
        self._rate = (requests_per_hour - self.capacity) / HOUR
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def paused_until(self) -> float:
        return self.window.paused_until

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    async def acquire(self) -> None:
        """Wait until a request may be sent, then spend it."""
        async with self._lock:
            while (paused := self.window.paused_until - self._clock()) > 0:
                await self._wait(paused)
            self._refill(self._clock())
            # Take the token now, on credit: the wait below is exactly what repays it, and no
            # float rounding can leave a waiter a hair short of a whole token forever.
            self._tokens -= 1
            if self._tokens < 0:
                await self._wait(-self._tokens / self._rate)

    async def _wait(self, seconds: float) -> None:
        self.window.throttled_seconds += seconds
        await self._sleep(seconds)

    def check_reserve(self, remaining: float | None, reset_at: float | None) -> None:
        """Below the reserve, stop until the window resets."""
        if remaining is not None and remaining < self.reserve:
            self.window.pause(
                reset_at, f"only {remaining:.0f} requests left, reserve is {self.reserve:.0f}"
            )

    def rate_limited(self, reset_at: float | None) -> None:
        """A 429: every destination of this token waits for the reset."""
        self.window.pause(reset_at, "the API answered 429")

    def sustainable_interval(self, requests_per_cycle: float, interval: float) -> float:
        """The poll interval at which `requests_per_cycle` each cycle stays within budget."""
        return max(interval, requests_per_cycle * HOUR / self.requests_per_hour)
