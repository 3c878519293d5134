"""Wires config, client, poller, collector and web server into one running exporter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from exporter.budget import RequestBudget
from exporter.client import NorthflankClient, RequestStats
from exporter.collector import SnapshotCollector
from exporter.config import Config
from exporter.poller import Poller
from exporter.web import WebServer, make_app

log = logging.getLogger(__name__)


class Exporter:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """`clock` and `sleep` replace real time in tests that simulate hours in seconds."""
        self.config = config
        self.stats = RequestStats()
        self._clock = clock
        real_sleep = sleep or asyncio.sleep
        self.budget = RequestBudget(
            config.rate_limit.requests_per_hour,
            config.rate_limit.reserve,
            clock=clock,
            sleep=real_sleep,
        )
        self.client = NorthflankClient(
            config.northflank,
            config.poll,
            self.stats,
            clock=clock,
            sleep=real_sleep,
            budget=self.budget,
        )
        self.poller = Poller(
            config, self.client, self.stats, budget=self.budget, clock=clock, sleep=sleep
        )
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.registry.register(SnapshotCollector(lambda: self.poller.snapshot, clock=clock))
        self.web: WebServer | None = None

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def poll_once(self) -> bool:
        return await self.poller.poll_all()

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve HTTP and poll until `stop` is set, then close everything in order."""
        self.web = WebServer(
            make_app(self.registry, lambda: self.poller.snapshot),
            self.config.listen_host,
            self.config.listen_port,
        )
        self.web.start()
        log.info(
            "listening on %s:%d; polling %s every %.0fs",
            self.config.listen_host or "*",
            self.web.port,
            self.config.northflank.api_url,
            self.config.poll.interval,
        )
        polling = asyncio.create_task(self.poller.run(stop))
        try:
            await stop.wait()
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            self.web.stop()
            await self.client.aclose()
