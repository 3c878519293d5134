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
from exporter.webconfig import WebConfig

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
        self._clock = clock
        self._sleep = sleep
        self.stats = RequestStats()
        self._build(config)
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.registry.register(SnapshotCollector(lambda: self.poller.snapshot, clock=clock))
        self.web: WebServer | None = None
        self._polling: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    def _build(self, config: Config) -> None:
        """The parts that depend on the configuration: budget, client and poller."""
        self.config = config
        real_sleep = self._sleep or asyncio.sleep
        self.budget = RequestBudget(
            config.rate_limit.requests_per_hour,
            config.rate_limit.reserve,
            clock=self._clock,
            sleep=real_sleep,
        )
        self.client = NorthflankClient(
            config.northflank,
            config.poll,
            self.stats,
            clock=self._clock,
            sleep=real_sleep,
            budget=self.budget,
        )
        self.poller = Poller(
            config,
            self.client,
            self.stats,
            budget=self.budget,
            clock=self._clock,
            sleep=self._sleep,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def poll_once(self) -> bool:
        return await self.poller.poll_all()

    async def reload(self, config: Config) -> None:
        """Poll with a new configuration, keeping what is exported until the next poll."""
        if (config.listen_host, config.listen_port) != (
            self.config.listen_host,
            self.config.listen_port,
        ):
            log.warning("web.listen_address changed: it takes effect at the next restart")
        previous, old_client, old_budget = self.poller.snapshot, self.client, self.budget
        if self._polling is not None:
            self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        await old_client.aclose()
        self._build(config)
        self.poller.snapshot = previous
        # A pause for the API's rate limit outlives the configuration, and so does the counter.
        self.budget.paused_until = old_budget.paused_until
        self.budget.throttled_seconds = old_budget.throttled_seconds
        if self._stop is not None:
            self._polling = asyncio.create_task(self.poller.run(self._stop))
        log.info("configuration reloaded from %s", config.source)

    async def serve(self, stop: asyncio.Event, web_config: WebConfig | None = None) -> None:
        """Serve HTTP and poll until `stop` is set, then close everything in order."""
        self.web = WebServer(
            make_app(self.registry, lambda: self.poller.snapshot),
            self.config.listen_host,
            self.config.listen_port,
            web_config,
        )
        self.web.start()
        log.info(
            "listening on %s:%d%s; polling %s every %.0fs",
            self.config.listen_host or "*",
            self.web.port,
            " with TLS" if web_config and web_config.tls else "",
            self.config.northflank.api_url,
            self.config.poll.interval,
        )
        self._stop = stop
        self._polling = asyncio.create_task(self.poller.run(stop))
        try:
            await stop.wait()
        finally:
            self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
            self.web.stop()
            await self.client.aclose()
