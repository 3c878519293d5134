"""Wires config, client, poller, collector and web server into one running exporter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.registry import Collector

from exporter.budget import RequestBudget
from exporter.client import NorthflankClient, RequestStats
from exporter.collector import SnapshotCollector
from exporter.config import Config
from exporter.exposition import Exposition
from exporter.poller import Poller
from exporter.snapshot import Snapshot
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
        # What /metrics and /-/ready show: the snapshot as of the last rendering.
        self.rendered: Snapshot = Snapshot()
        snapshot = SnapshotCollector(lambda: self.rendered, clock=clock)
        process = ProcessCollector(registry=None)
        # The snapshot is rendered once per poll cycle, the process metrics on every scrape.
        self.metrics = Exposition(_registry(snapshot), _registry(process), clock=clock)
        self._build(config)
        self.render()
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
            after_cycle=self.render,
        )

    def render(self) -> None:
        """Render the poller's current snapshot for /metrics (once per poll cycle)."""
        self.rendered = self.poller.snapshot
        self.metrics.refresh()

    def exposition(self) -> bytes:
        """What a plain scrape of /metrics returns now."""
        return self.metrics.text()

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        """Render again when no poll cycle has for a poll interval (a slow or paused poll), so
        ages and overdue seconds keep counting."""
        while not stop.is_set():
            interval = self.config.poll.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            rendered_at = self.metrics.rendered_at
            if rendered_at is None or self._clock() - rendered_at >= interval:
                self.render()

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
            make_app(self.metrics, lambda: self.rendered),
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
        refreshing = asyncio.create_task(self.keep_fresh(stop))
        try:
            await stop.wait()
        finally:
            self._polling.cancel()
            refreshing.cancel()
            await asyncio.gather(self._polling, refreshing, return_exceptions=True)
            self.web.stop()
            await self.client.aclose()


def _registry(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry
