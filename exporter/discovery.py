"""Which destinations an account's poller polls: those the API lists (or the configured ones,
resolved to their names), less those another shard owns."""

from __future__ import annotations

import logging

from exporter.api import DESTINATIONS_ENDPOINT, ApiError, needs
from exporter.context import AccountLoops
from exporter.model import Destination
from exporter.shard import Shard


class Discovery:
    def __init__(
        self, loops: AccountLoops, shard: Shard, log: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        self._loops = loops
        self._shard = shard
        self._log = log
        self.up: bool | None = None  # the last listing succeeded (None before the first)
        self.known = False  # the destinations are known: listed once, or configured

    async def current(self, before: dict[str, Destination]) -> list[Destination]:
        """The destinations to poll now, with their names; `before`: those polled until now,
        kept when the listing fails."""
        try:
            listed: list[Destination] | None = await self._loops.client.list_destinations()
        except ApiError as error:
            self._log.warning(
                "listing backup destinations failed code=%s: %s%s",
                error.code,
                error,
                needs(DESTINATIONS_ENDPOINT, error),
            )
            listed = None
        self.up = listed is not None
        configured = self._loops.account.destinations
        self.known = self.known or listed is not None or bool(configured)
        if configured:
            mine = [ident for ident in configured if self._mine(ident)]
            return [await self._resolve(ident, listed, before) for ident in mine]
        if listed is not None:
            return [d for d in {d.id: d for d in listed}.values() if self._mine(d.id)]
        return list(before.values())

    def _mine(self, destination: str) -> bool:
        """Whether this exporter's shard polls the destination (always, when unsharded)."""
        return self._shard.owns(self._loops.account.name, destination)

    async def _resolve(
        self, ident: str, listed: list[Destination] | None, before: dict[str, Destination]
    ) -> Destination:
        """A configured destination's details: from the list, else from before, else asked for."""
        for destination in listed or ():
            if destination.id == ident:
                return destination
        known = before.get(ident)
        if known is not None and known.name:
            return known
        try:
            return await self._loops.client.get_destination(ident)
        except ApiError as error:
            self._log.warning(
                "destination=%s details unavailable code=%s: %s", ident, error.code, error
            )
            return Destination(id=ident, name="", usage="")
