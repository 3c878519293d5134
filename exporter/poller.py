"""Polls every destination on an interval and swaps in a new Snapshot as results arrive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from exporter.aggregate import DestinationSummary, summarize_store
from exporter.budget import RequestBudget
from exporter.client import ApiError, NorthflankClient, RequestStats
from exporter.config import Account, AddonRules, PollSettings
from exporter.durations import format_duration
from exporter.model import Destination
from exporter.shard import Shard
from exporter.snapshot import DestinationState, Snapshot
from exporter.store import BackupStore
from exporter.sync import Syncer

log = logging.getLogger(__name__)


class _AccountLog(logging.LoggerAdapter[logging.Logger]):
    """Names the account first on every line."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"account={self.extra['account'] if self.extra else ''} {msg}", kwargs


class Poller:
    """Polls one account's destinations and publishes what it finds as a Snapshot."""

    def __init__(
        self,
        account: Account,
        client: NorthflankClient,
        stats: RequestStats,
        *,
        poll: PollSettings,
        addons: AddonRules,
        expiry_warning_window: float,
        shard: Shard,
        name_in_logs: bool = False,
        budget: RequestBudget | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        after_cycle: Callable[[], None] | None = None,
        snapshot: Snapshot | None = None,
    ) -> None:
        """`name_in_logs` prefixes log lines with the account (when there are several);
        `after_cycle` runs when a cycle over every destination has published its snapshot;
        `snapshot` is what to export until the first poll (a reload's predecessor's)."""
        self._account = account
        self._poll = poll
        self._addons = addons
        self._expiry_warning_window = expiry_warning_window
        self._shard = shard
        self._log: logging.LoggerAdapter[logging.Logger] = (
            _AccountLog(log, {"account": account.name})
            if name_in_logs
            else logging.LoggerAdapter(log)
        )
        self._after_cycle = after_cycle
        self._client = client
        self._stats = stats
        self._budget = budget
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._syncer = Syncer(client.backup_pages, poll.full_resync_interval, poll.incremental)
        self.effective_interval = poll.interval
        self._failures: Counter[tuple[str, str]] = Counter()
        self._states: dict[str, DestinationState] = {}
        self._discovery_up: bool | None = None
        self._destinations_known = False
        self.snapshot = snapshot or Snapshot()

    def held_stores(self) -> list[BackupStore]:
        return self._syncer.stores()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every effective interval (start to start) until `stop` is set."""
        while not stop.is_set():
            started = self._monotonic()
            await self.poll_all()
            remaining = max(self.effective_interval - (self._monotonic() - started), 0.0)
            await self._wait(stop, remaining)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep until the next poll, or until `stop` is set."""
        waits = [asyncio.ensure_future(self._sleep(seconds)), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def poll_all(self) -> bool:
        """One cycle over every destination; True when every request gave a usable answer."""
        listed_ok = await self._refresh_destinations()
        limit = asyncio.Semaphore(self._poll.concurrency)

        async def bounded(destination: Destination) -> bool:
            async with limit:
                return await self._poll_destination(destination)

        states = list(self._states.values())
        results = await asyncio.gather(*(bounded(state.destination) for state in states))
        self._syncer.forget_all_but(set(self._states))
        self._stretch_interval()
        self._publish()
        if self._after_cycle is not None:
            self._after_cycle()
        return listed_ok and all(results)

    def _stretch_interval(self) -> None:
        """Poll less often when the configured interval would spend more than the budget."""
        if self._budget is None:
            return
        interval = self._poll.interval
        cost = 1 + sum(self._syncer.requests_per_poll(d, interval) for d in self._states)
        sustainable = self._budget.sustainable_interval(cost, interval)
        if sustainable > interval and self.effective_interval <= interval:
            self._log.warning(
                "polling every %s instead of %s: a cycle costs about %.0f requests and the "
                "budget is %d requests an hour",
                format_duration(sustainable),
                format_duration(interval),
                cost,
                self._budget.requests_per_hour,
            )
        elif sustainable <= interval < self.effective_interval:
            self._log.info(
                "polling every %s again: the budget allows it", format_duration(interval)
            )
        self.effective_interval = sustainable

    async def _refresh_destinations(self) -> bool:
        """Learn which destinations exist (or resolve the configured ones) and their names."""
        try:
            listed: list[Destination] | None = await self._client.list_destinations()
        except ApiError as error:
            self._log.warning("listing backup destinations failed code=%s: %s", error.code, error)
            listed = None
        self._discovery_up = listed is not None
        configured = [ident for ident in self._account.destinations if self._mine(ident)]
        if self._account.destinations:
            current = [await self._resolve(ident, listed) for ident in configured]
        elif listed is not None:
            current = [d for d in {d.id: d for d in listed}.values() if self._mine(d.id)]
        else:
            current = [state.destination for state in self._states.values()]
        self._destinations_known = (
            self._destinations_known or listed is not None or bool(self._account.destinations)
        )
        self._states = {
            d.id: replace(self._states[d.id], destination=d)
            if d.id in self._states
            else DestinationState(d)
            for d in current
        }
        return listed is not None

    def _mine(self, destination: str) -> bool:
        """Whether this exporter's shard polls the destination (always, when unsharded)."""
        return self._shard.owns(self._account.name, destination)

    async def _resolve(self, ident: str, listed: list[Destination] | None) -> Destination:
        """A configured destination's details: from the list, else from before, else asked for."""
        for destination in listed or ():
            if destination.id == ident:
                return destination
        known = self._states.get(ident)
        if known is not None and known.destination.name:
            return known.destination
        try:
            return await self._client.get_destination(ident)
        except ApiError as error:
            self._log.warning(
                "destination=%s details unavailable code=%s: %s", ident, error.code, error
            )
            return Destination(id=ident, name="", usage="")

    async def _poll_destination(self, destination: Destination) -> bool:
        started = self._monotonic()
        error: str | None = None
        summary: DestinationSummary | None = None
        try:
            now = self._clock()
            result = await self._syncer.sync(destination.id, now)
            summary = summarize_store(
                result.store,
                now,
                self._expiry_warning_window,
                self._addons,
                invalid=result.invalid,
            )
        except ApiError as problem:
            error = f"code={problem.code}: {problem}"
            self._failures[(destination.id, problem.code)] += 1
        except Exception as problem:  # a bug must not stop the other destinations
            self._log.exception("destination=%s poll crashed", destination.id)
            error = f"code=internal: {type(problem).__name__}"
            self._failures[(destination.id, "internal")] += 1
        duration = self._monotonic() - started
        state = self._states[destination.id]
        if summary is not None:
            if summary.invalid:
                self._log.warning(
                    "destination=%s skipped %d invalid backups; first: %s",
                    destination.id,
                    summary.invalid,
                    result.first_invalid,
                )
            state = state.after_success(summary, self._clock(), duration)
        else:
            self._log.warning("destination=%s poll failed %s", destination.id, error)
            state = state.after_failure(self._clock(), duration, self._poll.stale_after)
        if destination.id in self._states:
            self._states[destination.id] = state
            self._publish()
        return error is None

    def _publish(self) -> None:
        states = tuple(self._states.values())
        self.snapshot = Snapshot(
            destinations=states,
            api_requests=tuple(sorted(self._stats.requests.items())),
            rate_limit_remaining=self._client.window.remaining,
            discovery_up=self._discovery_up,
            ready=self._destinations_known and all(state.polled for state in states),
            addon_rules=self._addons,
            budget_per_hour=None if self._budget is None else self._budget.requests_per_hour,
            rate_limit_reset_at=self._client.window.reset_at,
            throttled_seconds=self._client.window.throttled_seconds,
            effective_interval=self.effective_interval,
            pages_fetched=tuple(sorted(self._syncer.pages_fetched.items())),
            full_resyncs=tuple(sorted(self._syncer.resyncs.items())),
            poll_failures=tuple(sorted(self._failures.items())),
        )
