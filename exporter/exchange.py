"""One request to the API and its answer: the budget's permission, one deadline for the whole
exchange, retries with jittered back-off that honours `Retry-After` and `x-ratelimit-reset`,
and what the rate-limit headers say. Every request is counted by endpoint and outcome."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec

from exporter import __version__
from exporter.api import BUDGET, ApiError
from exporter.budget import BudgetSpent, RateLimitWindow, RequestBudget, Spend
from exporter.config import PollSettings
from exporter.durations import HOUR
from exporter.logs import scrub

log = logging.getLogger("exporter.client")

_NOT_RETRIED = frozenset({"400", "401", "403", "404", BUDGET})
_MAX_MESSAGE = 200


class RequestStats:
    """Requests made, by endpoint and outcome, and how long they waited for a connection;
    written by the event loop only."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.connection_wait_seconds = 0.0

    def record(self, endpoint: str, code: str) -> None:
        self.requests[(endpoint, code)] += 1


def _decode_json(body: bytes) -> Any:
    """JSON in C; what msgspec refuses but JSON allows (a lone surrogate escape such as
    "\\ud800") is read by the standard library instead, and made encodable by the readers."""
    try:
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            return json.loads(body)
    except RecursionError:  # nested deeper than any answer of the API: not an answer
        raise ValueError("JSON nested too deeply") from None


# The API's rate-limit window lasts an hour: no hint of it asks for a longer wait.
LONGEST_HINT = 1.0 * HOUR
# A reset hint past this is an epoch timestamp, not seconds (a 2001 date as seconds is 31 years).
EPOCH_FROM = 1e9


def _header_number(headers: httpx.Headers, name: str) -> float | None:
    """A finite number, or None (absent, not a number, inf, nan)."""
    try:
        value = float(headers[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _answered_at(headers: httpx.Headers, now: float) -> float:
    """The moment the answer was made, by the server's own clock (its Date header), else ours:
    a date the server sends is read against its clock, whatever ours says."""
    try:
        return email.utils.parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return now


def _bounded(seconds: float) -> float:
    return min(max(0.0, seconds), LONGEST_HINT)


def _retry_after_seconds(headers: httpx.Headers, now: float) -> float | None:
    """Retry-After, in seconds or as an HTTP date (read against the answer's Date), within
    [0, an hour]."""
    value = headers.get("retry-after")
    if value is None:
        return None
    number = _header_number(headers, "retry-after")
    if number is not None:
        return _bounded(number)
    try:
        moment = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _bounded(moment - _answered_at(headers, now))


def _reset_seconds(headers: httpx.Headers, now: float) -> float | None:
    """x-ratelimit-reset: seconds until the window resets, within [0, an hour]; sent as an
    epoch timestamp (seconds or milliseconds) it is read against the answer's Date."""
    value = _header_number(headers, "x-ratelimit-reset")
    if value is None:
        return None
    if value >= EPOCH_FROM * 1000:
        value /= 1000
    if value >= EPOCH_FROM:
        return _bounded(value - _answered_at(headers, now))
    return _bounded(value)


def _one_line(text: str, token: str) -> str:
    """Whitespace folded, the token scrubbed, and only then cut: a message that echoes the token
    must not leave part of it behind."""
    return scrub(re.sub(r"\s+", " ", text).strip(), [token])[:_MAX_MESSAGE]


def _error_message(content: bytes, reason: str, token: str) -> str:
    """`error.message` from an error body, else the HTTP reason phrase."""
    try:
        body = _decode_json(content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return _one_line(error["message"], token)
    return reason or "error"


class _TooLarge(Exception):
    """A body that grew past poll.max_body_bytes as it was read (decompressed)."""


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The decompressed body, read as a stream and given up on past `limit` bytes."""
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


POOL_ACCOUNTS = 8


class Connections:
    """The connections to one API URL, shared by the accounts that poll it, and a slot for each:
    a request takes a slot before its deadline starts and keeps it until its answer is read, so
    it never queues inside httpx's pool, and the time it waits for a connection is counted as
    the exporter's own (RequestStats.connection_wait_seconds), never as the API's timeout."""

    def __init__(self, http: httpx.AsyncClient, size: int) -> None:
        self.http = http
        self.slots = asyncio.Semaphore(size)

    async def aclose(self) -> None:
        await self.http.aclose()


def http_pool(
    api_url: str,
    poll: PollSettings,
    transport: httpx.AsyncBaseTransport | None = None,
    accounts: int = 1,
) -> Connections:
    """The connections to one API URL, for `accounts` accounts polling side by side (each
    request carries its own token): one pool, not one per account, of at most
    POOL_ACCOUNTS accounts' worth of connections, and as many slots; a pool each would hold a
    descriptor per account (bench/README.md, "Speed choices")."""
    size = min(accounts, POOL_ACCOUNTS) * max(poll.concurrency, 1) + 2
    http = httpx.AsyncClient(
        base_url=api_url,
        headers={
            "Accept": "application/json",
            "User-Agent": f"northflank-backup-exporter/{__version__}",
        },
        timeout=httpx.Timeout(poll.timeout, pool=None),
        transport=transport,
        limits=httpx.Limits(max_connections=size),
    )
    return Connections(http, size)


class Exchange:
    """Requests to one API URL with one token."""

    def __init__(
        self,
        token: str,
        poll: PollSettings,
        stats: RequestStats,
        connections: Connections,
        *,
        budget: RequestBudget | None,
        window: RateLimitWindow,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._token = token
        self._poll = poll
        self._stats = stats
        self._connections = connections
        self._budget = budget
        self.window = window
        self._sleep = sleep
        self._clock = clock
        self._auth = {"Authorization": f"Bearer {token}"}  # per request: pools are shared

    async def get_json(
        self,
        endpoint: str,
        path: str,
        params: dict[str, str | int],
        spend: Spend = Spend.POLL,
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            outcome, wait_hint = await self._attempt(endpoint, path, params, spend)
            if isinstance(outcome, dict):
                return outcome
            error = outcome
            if error.code in _NOT_RETRIED or attempt >= self._poll.max_retries:
                raise error
            delay = self._backoff(attempt, wait_hint)
            if delay is None:
                raise ApiError(
                    f"{error} (the API asks to wait longer than {self._poll.max_retry_wait:.0f}s)",
                    error.code,
                )
            log.debug("retrying %s in %.1fs after: %s", path, delay, error)
            await self._sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int, hint: float | None) -> float | None:
        """Jittered exponential delay, never shorter than the server's hint; None if too long."""
        delay = self._poll.retry_backoff * (2.0**attempt) * random.uniform(0.5, 1.5)
        if hint is not None:
            if hint > self._poll.max_retry_wait:
                return None
            delay = max(delay, hint)
        return min(delay, self._poll.max_retry_wait)

    async def _attempt(
        self, endpoint: str, path: str, params: dict[str, str | int], spend: Spend
    ) -> tuple[dict[str, Any] | ApiError, float | None]:
        """One request: the decoded body, or the error with the server's wait hint if any."""
        if self._budget is not None:
            try:
                await self._budget.acquire(spend)
            except BudgetSpent as spent:
                return ApiError(f"GET {path}: {spent}", BUDGET), None
        async with self._connection():
            return await self._exchange(endpoint, path, params)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[None]:
        """A slot of the URL's connections, the wait for it counted (Connections)."""
        slots = self._connections.slots
        if not slots.locked():  # a free slot: no wait, and nothing added (not even microseconds)
            async with slots:
                yield
            return
        loop = asyncio.get_running_loop()  # a duration: the loop's monotonic clock
        began = loop.time()
        async with slots:
            self._stats.connection_wait_seconds += loop.time() - began
            yield

    async def _exchange(
        self, endpoint: str, path: str, params: dict[str, str | int]
    ) -> tuple[dict[str, Any] | ApiError, float | None]:
        """The request sent and its answer read, within one deadline."""
        limit = self._poll.max_body_bytes
        try:
            # One deadline for the whole exchange: an answer that trickles in a byte at a time
            # never resets it, as httpx's per-read timeout would.
            async with asyncio.timeout(self._poll.timeout):
                async with self._connections.http.stream(
                    "GET", path, params=params, headers=self._auth
                ) as response:
                    content = await _read_body(response, limit)
        except (TimeoutError, httpx.TimeoutException):
            self._stats.record(endpoint, "timeout")
            message = f"GET {path}: timed out after {self._poll.timeout:g}s without a whole answer"
            return ApiError(message, "timeout"), None
        except _TooLarge:
            self._stats.record(endpoint, "too_large")
            message = f"GET {path}: the answer is larger than poll.max_body_bytes ({limit})"
            return ApiError(message, "too_large"), None
        except httpx.HTTPError as problem:
            self._stats.record(endpoint, "error")
            kind = type(problem).__name__
            return ApiError(f"GET {path}: network error ({kind})", "error"), None
        self._stats.record(endpoint, str(response.status_code))
        self._note_rate_limit(response.headers)
        if response.status_code != 200:
            return self._status_error(response, content, path)
        try:
            body = _decode_json(content)
        except ValueError:
            message = f"GET {path}: HTTP 200 with a body that is not JSON"
            return ApiError(message, "invalid_body"), None
        if not isinstance(body, dict):
            return ApiError(
                f"GET {path}: HTTP 200 with a body that is not an object", "invalid_body"
            ), None
        return body, None

    def _status_error(
        self, response: httpx.Response, content: bytes, path: str
    ) -> tuple[ApiError, float | None]:
        status = response.status_code
        message = _error_message(content, response.reason_phrase, self._token)
        error = ApiError(f"GET {path}: HTTP {status}: {message}", str(status))
        if status != 429:
            return error, None
        hint = _retry_after_seconds(response.headers, self._clock())
        if hint is None:
            hint = _reset_seconds(response.headers, self._clock())
        if self._budget is not None:
            self._budget.rate_limited(None if hint is None else self._clock() + hint)
        return error, hint

    def _note_rate_limit(self, headers: httpx.Headers) -> None:
        limit = _header_number(headers, "x-ratelimit-limit")
        remaining = _header_number(headers, "x-ratelimit-remaining")
        reset = _reset_seconds(headers, self._clock())
        reset_at = None if reset is None else self._clock() + reset
        self.window.observe(limit, remaining, reset_at)
        if self._budget is not None:
            self._budget.check_reserve(remaining, reset_at)
