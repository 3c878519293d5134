"""Polls every destination on an interval and swaps in a new Snapshot as results arrive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from exporter.aggregate import DestinationAccumulator, DestinationSummary
from exporter.client import ApiError, Destination, NorthflankClient, RequestStats
from exporter.config import Config
from exporter.snapshot import DestinationState, Snapshot

log = logging.getLogger(__name__)


class Poller:
    def __init__(
        self,
        config: Config,
        client: NorthflankClient,
        stats: RequestStats,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._client = client
        self._stats = stats
        self._clock = clock
        self._monotonic = monotonic
        self._states: dict[str, DestinationState] = {}
        self._discovery_up: bool | None = None
        self._destinations_known = False
        self.snapshot = Snapshot()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `poll.interval` (start to start) until `stop` is set."""
        while not stop.is_set():
            started = self._monotonic()
            await self.poll_all()
            remaining = self._config.poll.interval - (self._monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(remaining, 0.0))

    async def poll_all(self) -> bool:
        """One cycle over every destination; True when every request gave a usable answer."""
        listed_ok = await self._refresh_destinations()
        limit = asyncio.Semaphore(self._config.poll.concurrency)

        async def bounded(destination: Destination) -> bool:
            async with limit:
                return await self._poll_destination(destination)

        states = list(self._states.values())
        results = await asyncio.gather(*(bounded(state.destination) for state in states))
        self._publish()
        return listed_ok and all(results)

    async def _refresh_destinations(self) -> bool:
        """Learn which destinations exist (or resolve the configured ones) and their names."""
        try:
            listed: list[Destination] | None = await self._client.list_destinations()
        except ApiError as error:
            log.warning("listing backup destinations failed code=%s: %s", error.code, error)
            listed = None
        self._discovery_up = listed is not None
        if self._config.destinations:
            current = [await self._resolve(ident, listed) for ident in self._config.destinations]
        elif listed is not None:
            current = list({d.id: d for d in listed}.values())
        else:
            current = [state.destination for state in self._states.values()]
        self._destinations_known = (
            self._destinations_known or listed is not None or bool(self._config.destinations)
        )
        self._states = {
            d.id: replace(self._states[d.id], destination=d)
            if d.id in self._states
            else DestinationState(d)
            for d in current
        }
        return listed is not None

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
            log.warning("destination=%s details unavailable code=%s: %s", ident, error.code, error)
            return Destination(id=ident, name="", usage="")

    async def _poll_destination(self, destination: Destination) -> bool:
        started = self._monotonic()
        accumulator = DestinationAccumulator(
            self._clock(), self._config.expiry_warning_window, self._config.addons
        )
        error: str | None = None
        summary: DestinationSummary | None = None
        try:
            async for page in self._client.backup_pages(destination.id):
                for raw in page:
                    accumulator.add_raw(raw)
            summary = accumulator.summary()
        except ApiError as problem:
            error = f"code={problem.code}: {problem}"
        except Exception as problem:  # a bug must not stop the other destinations
            log.exception("destination=%s poll crashed", destination.id)
            error = f"code=internal: {type(problem).__name__}"
        duration = self._monotonic() - started
        state = self._states[destination.id]
        if accumulator.invalid:
            log.warning(
                "destination=%s skipped %d invalid backups; first: %s",
                destination.id,
                accumulator.invalid,
                accumulator.first_invalid_reason,
            )
        if summary is not None:
            state = state.after_success(summary, self._clock(), duration)
        else:
            log.warning("destination=%s poll failed %s", destination.id, error)
            state = state.after_failure(
                self._clock(), duration, self._config.poll.stale_after, accumulator.invalid
            )
        if destination.id in self._states:
            self._states[destination.id] = state
            self._publish()
        return error is None

    def _publish(self) -> None:
        states = tuple(self._states.values())
        self.snapshot = Snapshot(
            destinations=states,
            api_requests=tuple(sorted(self._stats.requests.items())),
            rate_limit_remaining=self._stats.rate_limit_remaining,
            discovery_up=self._discovery_up,
            ready=self._destinations_known and all(state.polled for state in states),
            addon_rules=self._config.addons,
        )
