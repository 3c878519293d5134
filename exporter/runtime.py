"""Wires config, clients, pollers, collector and web server into one running exporter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.registry import Collector

from exporter.budget import RateLimitWindow, RequestBudget
from exporter.client import NorthflankClient
from exporter.collector import Rendered, SnapshotCollector
from exporter.collectors.process import Reloads
from exporter.config import Account, Config
from exporter.context import AccountLoops
from exporter.coverage import COVERAGE_SHARD_KEY, CoverageWatcher
from exporter.durations import format_duration
from exporter.exchange import Connections, RequestStats, http_pool
from exporter.exposition import Exposition
from exporter.poller import Poller
from exporter.snapshot import CoverageSnapshot, Snapshot
from exporter.supervise import Health, supervised, waiting_with
from exporter.web import WebServer, make_app
from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)


@dataclass
class AccountParts:
    """What polls one account: its loops' context (account, client, budget, ...) and the two
    loops that run in it."""

    context: AccountLoops
    poller: Poller
    coverage: CoverageWatcher | None = None  # None: disabled, or another shard's work

    @property
    def account(self) -> Account:
        return self.context.account

    @property
    def budget(self) -> RequestBudget:
        assert self.context.budget is not None  # the exporter always gives one
        return self.context.budget

    def loops(self) -> list[str]:
        names = [self.poller.loop_name]
        if self.coverage is not None:
            names += self.coverage.loop_names
        return names


class Exporter:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`clock` and `sleep` replace real time in tests that simulate hours in seconds;
        `transport` carries the API's answers in place of the network (the alert backtest)."""
        self._clock = clock
        self._sleep = sleep
        self._transport = transport
        # What /metrics and /-/ready show: each account's snapshot as of the last rendering.
        self.rendered = Rendered()
        snapshot = SnapshotCollector(lambda: self.rendered, clock=clock)
        process = ProcessCollector(registry=None)
        # The snapshots are rendered once per poll cycle, the process metrics on every scrape.
        self.metrics = Exposition(_registry(snapshot), _registry(process), clock=clock)
        # Which long-running loops still make progress (/-/healthy), and how often they failed.
        self.health = Health(clock)
        # Each token's rate-limit window outlives the configuration: reloads keep it.
        self._windows: dict[str, RateLimitWindow] = {}
        # One connection pool per API URL, shared by its accounts (built with the parts).
        self._pools: dict[str, Connections] = {}
        self.config = config
        self.reloads = Reloads(successful=True, last_success=clock())
        self.parts = self._build(config, {})
        self.render()
        self.web: WebServer | None = None
        self._polling: asyncio.Future[list[None]] | None = None
        self._stop: asyncio.Event | None = None

    def _build(self, config: Config, previous: dict[str, AccountParts]) -> list[AccountParts]:
        """New parts for every account; an account polled before keeps exporting its last
        snapshot until its first poll."""
        parts = []
        urls = Counter(account.northflank.api_url for account in config.accounts)
        self._pools = {
            url: http_pool(url, config.poll, self._transport, accounts)
            for url, accounts in urls.items()
        }
        for account in config.accounts:
            before = previous.get(account.name)
            snapshot = None if before is None else before.poller.snapshot
            covered = (
                None if before is None or before.coverage is None else before.coverage.snapshot
            )
            parts.append(self._account_parts(config, account, snapshot, covered))
        return parts

    def _account_parts(
        self,
        config: Config,
        account: Account,
        snapshot: Snapshot | None,
        covered: CoverageSnapshot | None = None,
    ) -> AccountParts:
        window = self._windows.setdefault(account.name, RateLimitWindow(self._clock))
        stats = RequestStats()
        budget = RequestBudget(
            account.rate_limit.requests_per_hour,
            account.rate_limit.reserve,
            window,
            clock=self._clock,
            sleep=self._sleep,
        )
        client = NorthflankClient(
            account.northflank,
            config.poll,
            stats,
            clock=self._clock,
            sleep=self._sleep,
            budget=budget,
            http=self._pools[account.northflank.api_url],
        )
        loops = AccountLoops(
            account=account,
            client=client,
            stats=stats,
            poll=config.poll,
            addons=config.addons,
            coverage=config.coverage,
            restores=config.restores,
            expiry_warning_window=config.expiry_warning_window,
            health=self.health,
            budget=budget,
            clock=self._clock,
            sleep=self._sleep,
            render=self.render,
        )
        poller = Poller(
            loops,
            shard=config.shard,
            name_in_logs=len(config.accounts) > 1,
            snapshot=snapshot,
        )
        coverage = None

        def listed() -> set[tuple[str, str]]:  # as of the poller's latest snapshot
            return poller.snapshot.scheduled_addons()

        if config.coverage.enabled and config.shard.owns(account.name, COVERAGE_SHARD_KEY):
            coverage = CoverageWatcher(
                loops, snapshot=covered, after=poller.first_cycle_over, listed=listed
            )
        return AccountParts(loops, poller, coverage)

    def render(self) -> None:
        """Render every account's current snapshot for /metrics (after each poll cycle)."""
        self.rendered = self.gather()
        self.metrics.refresh()

    def gather(self) -> Rendered:
        """What a rendering now would show: every account's snapshot and coverage."""
        return Rendered(
            tuple((part.account.name, part.poller.snapshot) for part in self.parts),
            self.config.shard,
            tuple(sorted(self.health.failures.items())),
            tuple(
                (part.account.name, part.coverage.snapshot)
                for part in self.parts
                if part.coverage is not None
            ),
            tuple(account.northflank.token for account in self.config.accounts),
            self.reloads,
        )

    def ready(self) -> bool:
        """Every destination of every account polled (what /-/ready answers)."""
        return self.rendered.ready()

    def exposition(self) -> bytes:
        """What a plain scrape of /metrics returns now."""
        return self.metrics.text()

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        """Render again when no poll cycle has for a poll interval (a slow or paused poll), so
        ages and overdue seconds keep counting."""
        await supervised(
            "render",
            self._refresh,
            interval=self.config.poll.interval,
            health=self.health,
            stop=stop,
            wait=waiting_with(self._sleep),
        )

    async def _refresh(self) -> float:
        interval = self.config.poll.interval
        rendered_at = self.metrics.rendered_at
        if rendered_at is None or self._clock() - rendered_at >= interval:
            self.render()
        return interval

    async def poll_once(self, *, coverage_waits: bool = True, due_only: bool = False) -> bool:
        """One cycle of every account side by side, then their coverage (after the destinations,
        as when serving); True when every destination poll was clean. Coverage's health is
        northflank_coverage_up, not this result. `coverage_waits` False: coverage takes what
        the request budget allows now, and leaves the rest (`left_out`), never waiting.
        `due_only`: only the destinations whose read is due, as the serving loop reads them
        (`poll_schedule.py`; the alert backtest), else every one."""
        polls = (part.poller.poll_all(due_only=due_only) for part in self.parts)
        results = await asyncio.gather(*polls)
        watched = [(part.coverage, part.budget) for part in self.parts if part.coverage]
        for _, budget in watched:
            budget.waits = coverage_waits
        try:
            await asyncio.gather(*(coverage.step() for coverage, _ in watched))
        finally:
            for _, budget in watched:
                budget.waits = True
        return all(results)

    async def aclose(self) -> None:
        await asyncio.gather(*(part.context.client.aclose() for part in self.parts))
        await asyncio.gather(*(pool.aclose() for pool in self._pools.values()))

    def _start_polling(self, stop: asyncio.Event) -> None:
        loops = [part.poller.run(stop) for part in self.parts]
        loops += [part.coverage.run(stop) for part in self.parts if part.coverage is not None]
        self._polling = asyncio.ensure_future(asyncio.gather(*loops))

    async def _stop_polling(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        for part in self.parts:
            for loop in part.loops():
                self.health.forget(loop)

    async def reload(self, config: Config) -> None:
        """Poll with a new configuration, keeping what is exported until the next poll."""
        if (config.listen_host, config.listen_port) != (
            self.config.listen_host,
            self.config.listen_port,
        ):
            log.warning("web.listen_address changed: it takes effect at the next restart")
        previous = {part.account.name: part for part in self.parts}
        await self._stop_polling()
        await self.aclose()
        self.config = config
        self.parts = self._build(config, previous)
        self.reloads = Reloads(successful=True, last_success=self._clock())
        if self._stop is not None:
            self._start_polling(self._stop)
        log.info("configuration reloaded from %s", config.source)
        self.render()

    def reload_rejected(self) -> None:
        """A reload read a file it could not use: the running configuration goes on."""
        self.reloads = Reloads(successful=False, last_success=self.reloads.last_success)
        self.render()

    async def serve(self, stop: asyncio.Event, web_config: WebConfig | None = None) -> None:
        """Serve HTTP and poll until `stop` is set, then close everything in order."""
        self.web = WebServer(
            make_app(self.metrics, self.ready, self.health.stalled, self.health.waits),
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
            ", ".join(
                f"{part.account.name} ({part.account.northflank.api_url})" for part in self.parts
            ),
            self.config.poll.interval,
        )
        self._stop = stop
        self._start_polling(stop)
        refreshing = asyncio.create_task(self.keep_fresh(stop))
        try:
            await stop.wait()
        finally:
            await self._stop_polling()
            refreshing.cancel()
            await asyncio.gather(refreshing, return_exceptions=True)
            self.web.stop()
            await self.aclose()


def _registry(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def coverage_left_out(parts: list[AccountParts]) -> list[str]:
    """One line per account whose coverage the budget cut short, saying what was left out
    and how long it would take; none when nothing was left out."""
    lines = []
    for part in parts:
        if part.coverage is None or not part.coverage.left_out:
            continue
        left = part.coverage.left_out
        what = ", ".join(f"{number} {listing}" for listing, number in sorted(left.items()))
        seconds = part.budget.seconds_to_send(sum(left.values()))
        lines.append(
            f"account={part.account.name} coverage: the hour's request budget left out "
            f"{what} (at least {sum(left.values())} requests, about "
            f"{format_duration(seconds)} at rate_limit.requests_per_hour="
            f"{part.budget.requests_per_hour}); northflank_coverage_up is 0"
        )
    return lines
