"""Polls every destination on an interval and swaps in a new Snapshot as results arrive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from exporter.budget import RequestBudget, Spend
from exporter.context import AccountLoops
from exporter.destination_read import DestinationReads
from exporter.discovery import Discovery
from exporter.durations import format_duration
from exporter.model import Destination
from exporter.poll_schedule import PollTiming
from exporter.progress import CycleProgress, Say, cycle_why_slow
from exporter.read_plan import ReadPlan
from exporter.shard import Shard
from exporter.snapshot import DestinationState, Snapshot
from exporter.store import BackupStore

log = logging.getLogger(__name__)


class _AccountLog(logging.LoggerAdapter[logging.Logger]):
    """Names the account first on every line."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"account={self.extra['account'] if self.extra else ''} {msg}", kwargs


class Poller:
    """Polls one account's destinations and publishes what it finds as a Snapshot."""

    def __init__(
        self,
        loops: AccountLoops,
        *,
        shard: Shard,
        name_in_logs: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        snapshot: Snapshot | None = None,
    ) -> None:
        """`name_in_logs` prefixes log lines with the account (when there are several);
        `loops.render` shows the published snapshot on /metrics: it runs after every cycle,
        and after each destination's first read so that its numbers need not wait for the
        others; `snapshot` is what to export until the first poll (a reload's predecessor's)."""
        self._loops = loops
        self._log: logging.LoggerAdapter[logging.Logger] = (
            _AccountLog(log, {"account": loops.account.name})
            if name_in_logs
            else logging.LoggerAdapter(log)
        )
        self.loop_name = f"poll:{loops.account.name}"
        self._monotonic = monotonic
        self._reads = DestinationReads(loops, self._log, self._page_read)
        self._syncer = self._reads.syncer
        self._progress: CycleProgress | None = None
        # Polls that outlived their cycle, by destination; one poll-slot pool for all cycles.
        self._busy: dict[str, asyncio.Future[bool]] = {}
        self._limit = asyncio.Semaphore(loops.poll.concurrency)
        self.effective_interval = loops.poll.interval
        # Set when the first cycle is over: the account's inventory waits for it (coverage.py).
        self.first_cycle_over = asyncio.Event()
        self._states: dict[str, DestinationState] = {}
        self._discovery = Discovery(loops, shard, self._log)
        timing = PollTiming(
            loops.poll.interval, loops.addons.tolerance, loops.addons.grace, loops.poll.around_slots
        )
        self._plan = ReadPlan(timing, self._log)
        self.snapshot = snapshot or Snapshot()

    def held_stores(self) -> list[BackupStore]:
        return self._syncer.stores()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every effective interval (start to start) until `stop` is set; a cycle that
        fails is logged and counted, and the next one comes at the usual time."""
        self._loops.health.tells_waits(self.loop_name, self.slot_waits)
        try:
            await self._loops.run(self.loop_name, self._cycle, stop)
        finally:
            stragglers = list(self._busy.values())
            for poll in stragglers:
                poll.cancel()
            await asyncio.gather(*stragglers, return_exceptions=True)

    async def _cycle(self) -> float:
        """One poll cycle; the seconds until the next one should start: the interval (start to
        start), or sooner when a destination's read falls due first (`poll_schedule`). A
        destination still being polled when the interval is up is left to finish on its own
        (a straggler): it delays only itself, and the next cycles poll the others on time and
        skip it."""
        started = self._monotonic()
        around_slots = self._plan.around_slots
        await self.poll_all(straggle_after=self.effective_interval, due_only=around_slots)
        if not around_slots:
            return max(self.effective_interval - (self._monotonic() - started), 0.0)
        now = self._loops.clock()
        self._plan.tell(self._plan.put_off(self.snapshot, now), now)
        until_interval = self.effective_interval - (self._monotonic() - started)
        return max(min(until_interval, self._until_next_read()), 0.0)

    def slot_waits(self) -> str | None:
        """What /-/healthy says the loop waits for, besides the budget: from the published
        snapshot, which a web server thread may read while this loop goes on."""
        snapshot = self.snapshot
        waiting = self._plan.put_off(snapshot, self._loops.clock())
        return self._plan.told_waits(waiting, len(snapshot.destinations))

    def _until_next_read(self) -> float:
        now = self._loops.clock()
        due = [_due_at(s) for s in self._states.values() if s.destination.id not in self._busy]
        return min(due, default=now + self.effective_interval) - now

    async def poll_all(self, straggle_after: float | None = None, due_only: bool = False) -> bool:
        """One cycle over every destination; True when every request gave a usable answer.
        With `straggle_after`, the cycle waits that long (in the event loop's own time) for its
        polls; any still running go on as stragglers that later cycles skip until they end.
        With `due_only` (the serving loop, around the slots), only the destinations whose next
        read is due (`poll_schedule`); else every one (`--once`, a test's poll)."""
        now = self._loops.clock()
        listed_ok = await self._refresh_destinations(due_only, now)
        due = [
            state.destination
            for state in self._states.values()
            if state.destination.id not in self._busy and (not due_only or now >= _due_at(state))
        ]
        polls = {asyncio.ensure_future(self._bounded(d)): d.id for d in due}
        if self._progress is None:  # else a straggler's read is still being told about
            self._progress = CycleProgress(tuple(polls.values()), self._loops.clock())
        try:
            done, pending = (
                await asyncio.wait(polls, timeout=straggle_after) if polls else (set(), set())
            )
        except asyncio.CancelledError:
            for poll in polls:
                poll.cancel()
            self._progress = None
            raise
        for poll in pending:
            self._straggling(polls[poll], poll)
        if not self._busy:
            self._progress = None
        results = [poll.result() for poll in done]
        self._syncer.forget_all_but(set(self._states))
        if self._loops.budget is not None:
            cost = 1 + sum(
                self._syncer.requests_per_poll(d, self._loops.poll.interval) for d in self._states
            )
            before = self.effective_interval
            self.effective_interval = stretched_interval(
                self._loops.budget, cost, self._loops.poll.interval, before, self._log
            )
            if self.effective_interval != before:  # every next read is planned on it
                self._states = {ident: self._planned(s) for ident, s in self._states.items()}
        self._publish()
        if self._loops.render is not None:
            self._loops.render()
        self.first_cycle_over.set()
        return listed_ok and all(results) and not pending

    async def _bounded(self, destination: Destination) -> bool:
        async with self._limit:
            return await self._poll_destination(destination)

    def _straggling(self, ident: str, poll: asyncio.Future[bool]) -> None:
        self._log.warning(
            "destination=%s is still being polled after %s: the other destinations go on "
            "without it",
            ident,
            format_duration(self.effective_interval),
        )
        self._busy[ident] = poll
        poll.add_done_callback(lambda _: self._straggler_done(ident))

    def _straggler_done(self, ident: str) -> None:
        self._busy.pop(ident, None)
        if not self._busy:
            self._progress = None  # the long read it was part of is over

    def _page_read(self, destination: str, spend: Spend, read: int, estimate: int | None) -> None:
        self._loops.health.progress(self.loop_name, self._loops.poll.interval)
        progress = self._progress
        if progress is None:
            return
        progress.page_read(destination, spend, read, estimate)
        self._tell_progress(progress)

    def _seconds_left(self, progress: CycleProgress) -> float:
        if self._loops.budget is None:
            return 0.0
        return self._loops.budget.seconds_to_send(progress.requests_left(), progress.slowest_spend)

    def _tell_progress(self, progress: CycleProgress) -> None:
        """Say once when the rest of the cycle cannot be read at once, and how long it will
        take; then how far it has got (`progress.Telling`)."""
        budget = self._loops.budget
        # said at the first wait, not at the first page: what the budget lets go at once takes
        # seconds, and by then each read's estimate has seen more pages (at 2.5 budgets: 156
        # pages, estimated 161 from the first pages, an hour too many)
        if (
            budget is not None
            and not progress.telling.announced
            and budget.allows_now(progress.slowest_spend) > 0
        ):
            return
        seconds = self._seconds_left(progress)
        say = progress.telling.what_to_say(self._loops.clock(), seconds)
        if say is Say.FIRST:
            assert self._loops.budget is not None  # only a budget makes a read wait
            now = self._loops.clock()
            self._log.warning(cycle_why_slow(progress, self._loops.budget, seconds, now))
        elif say is Say.AGAIN:
            self._log.info(progress.progress_line(seconds))
        if say is not None:
            self._publish()

    async def _refresh_destinations(self, due_only: bool, now: float) -> bool:
        """Learn which destinations exist (or resolve the configured ones) and their names:
        every cycle; with `due_only`, at most every heartbeat after a good listing."""
        if due_only and not self._plan.listing_due(now):
            return True
        before = {ident: state.destination for ident, state in self._states.items()}
        current = await self._discovery.current(before)
        self._states = {
            d.id: replace(self._states[d.id], destination=d)
            if d.id in self._states
            else DestinationState(d)
            for d in current
        }
        self._plan.listed(now, bool(self._discovery.up))
        return bool(self._discovery.up)

    def _planned(self, state: DestinationState) -> DestinationState:
        """The state with its next read, worked out once each time the state changes."""
        return replace(state, next_read=self._plan.next_read(state, self.effective_interval))

    async def _poll_destination(self, destination: Destination) -> bool:
        self._plan.reading(destination.id, self._loops.clock())
        started = self._monotonic()
        # until its first good read, a destination's numbers wait for nothing else, and /metrics
        # shows them at once
        never_read = self._states[destination.id].last_success is None
        read = await self._reads.read(destination.id, never_read)
        if self._progress is not None:
            self._progress.finished(destination.id)
        state = self._states.get(destination.id)
        if state is not None:  # else no longer polled
            duration = self._monotonic() - started
            recorded = self._reads.record(destination.id, state, read, duration)
            self._states[destination.id] = self._planned(recorded)
        if destination.id in self._states:
            self._publish()
            if never_read and read.summary is not None and self._loops.render is not None:
                self._loops.render()
        return read.error is None

    def _publish(self) -> None:
        states = tuple(self._states.values())
        progress = self._progress
        self.snapshot = Snapshot(
            destinations=states,
            api_requests=tuple(sorted(self._loops.stats.requests.items())),
            rate_limit_remaining=self._loops.client.window.remaining,
            discovery_up=self._discovery.up,
            ready=self._discovery.known and all(state.polled for state in states),
            addon_rules=self._loops.addons,
            budget_per_hour=None
            if self._loops.budget is None
            else self._loops.budget.requests_per_hour,
            rate_limit_reset_at=self._loops.client.window.reset_at,
            throttled_seconds=self._loops.client.window.throttled_seconds,
            connection_wait_seconds=self._loops.stats.connection_wait_seconds,
            effective_interval=self.effective_interval,
            pages_fetched=tuple(sorted(self._syncer.pages_fetched.items())),
            full_resyncs=tuple(sorted(self._syncer.resyncs.items())),
            poll_failures=tuple(sorted(self._reads.failures.items())),
            budget_remaining=None if self._loops.budget is None else self._loops.budget.remaining(),
            cycle_seconds_left=0.0 if progress is None else self._seconds_left(progress),
        )


def _due_at(state: DestinationState) -> float:
    """When the destination's next read is due: at once when none was planned (never read)."""
    return 0.0 if state.next_read is None else state.next_read


def stretched_interval(
    budget: RequestBudget,
    cost: float,
    interval: float,
    before: float,
    log: logging.LoggerAdapter[logging.Logger],
) -> float:
    """Poll less often when the configured interval would spend more than the budget, at
    `cost` requests a cycle; said when it starts (from `before`) and when it ends."""
    sustainable = budget.interval_for(cost, interval)
    if sustainable > interval and before <= interval:
        log.warning(
            "polling every %s instead of %s: a cycle costs about %.0f requests and the "
            "budget is %d requests an hour",
            format_duration(sustainable),
            format_duration(interval),
            cost,
            budget.requests_per_hour,
        )
    elif sustainable <= interval < before:
        log.info("polling every %s again: the budget allows it", format_duration(interval))
    return sustainable
