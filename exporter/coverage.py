"""Coverage: every addon and volume of an account, what backs it up, and its managed backups.

A destination's listing only shows databases that are backed up there. The resource units
(`exporter/resources/`) list projects, their addons and volumes, and each one's backup
schedules, so that a database with no schedule, or whose backups never arrive, is seen too;
and they read the managed-storage and volume backups those schedules call for.

The rounds' loop walks the units and holds no code of any one resource: every
coverage.interval a round reads the round units, first what may reveal an unprotected addon
(and shows it on /metrics), then the rest, which gives way to the next round when it falls due
first; keys never read go before re-reads. Each cadenced unit reads whatever is due in a loop
of its own (`cadenced_loops.py`). One account's loops run on one shard only (see
COVERAGE_SHARD_KEY). The order of everything the exporter reads is in docs/design.md ("What is
read first").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from exporter.budget import Spend
from exporter.cadenced_loops import CadencedLoops, pause_until
from exporter.context import AccountLoops
from exporter.durations import format_duration
from exporter.progress import InventoryProgress, Say, round_why_slow
from exporter.resources import Units, build_units
from exporter.resources.unit import ROUND_ORDER, Listing, Pass, Unit
from exporter.snapshot import CoverageSnapshot
from exporter.supervise import first_of
from exporter.unit_reads import RoundPart, UnitReads

log = logging.getLogger(__name__)

# The inventory of an account is taken by the shard that owns this pseudo-destination of it:
# no destination id is empty, so it collides with none, and every shard works out the same
# owner without talking to the others. Several accounts spread their inventories over shards.
COVERAGE_SHARD_KEY = ""

AnyUnit = Unit[Any, Any, Any]


class CoverageWatcher:
    """Walks one account's resource units: a round every coverage.interval, and each cadenced
    unit's reads when they fall due."""

    def __init__(
        self,
        loops: AccountLoops,
        *,
        snapshot: CoverageSnapshot | None = None,
        after: asyncio.Event | None = None,
        listed: Callable[[], set[tuple[str, str]]] | None = None,
    ) -> None:
        """`after` is set when the account's destinations have had their first read: the
        loop starts then, so that a large inventory never slows the destinations' first
        numbers (both are discovery, `budget.Spend`). `listed`: the addons some
        destination lists with scheduled backups (protected: their schedules come last)."""
        self._after = after
        self._loops = loops
        self.loop_name = f"coverage:{loops.account.name}"
        self.units: Units = build_units(loops, listed or set)
        self._limit = asyncio.Semaphore(loops.poll.concurrency)  # reads at a time in a round
        self._round_due = 0.0
        # When a round's background and refresh reads give way to the next round (None: never).
        self._yield_at: float | None = None
        self._yielded = False
        self._left_behind = 0  # requests a round that gave way left for the next ones
        self._round_ok: bool | None = None
        self._last_round: float | None = None
        self.reads = UnitReads(loops)
        self.problems = self.reads.problems
        self.cadenced = CadencedLoops(loops, self._units_in(Pass.CADENCE), self.reads, self._show)
        self._read_this_round: set[tuple[Listing, Any]] = set()
        self._progress: InventoryProgress | None = None  # the round under way
        self._discovered = asyncio.Event()  # the first round's discovery part is over
        self.snapshot = snapshot or CoverageSnapshot()

    @property
    def loop_names(self) -> list[str]:
        """The rounds' loop, then one loop per cadenced unit."""
        return [self.loop_name, *self.cadenced.loop_names]

    async def run(self, stop: asyncio.Event) -> None:
        """The rounds' loop, and each cadenced unit's (`cadenced_loops.py`)."""
        if self._after is not None:
            await first_of(self._after.wait(), stop.wait())
        await asyncio.gather(
            self._loops.run(self.loop_name, self._round_step, stop),
            self.cadenced.run(stop, after=self._discovered),
        )

    async def step(self) -> float:
        """A round if one is due, then every cadenced read that is due, then publish; the
        seconds until something is due again (at most a poll interval). `--once` and tests
        step both at once; serving, each has its loop (`run`)."""
        self.problems.left_out = {}
        until_round = await self._round_step()
        return min(until_round, await self.cadenced.step())

    async def _round_step(self) -> float:
        """A round if one is due, then publish; the seconds until the next is due."""
        clock = self._loops.clock
        if clock() >= self._round_due:
            interval = self._loops.coverage.interval
            await self.take_inventory(yield_at=clock() + interval)
            self._round_due = clock() if self._yielded else clock() + interval
            self._show()
        return pause_until(self._loops, self._round_due)

    @property
    def left_out(self) -> dict[str, int]:
        """Requests the budget left out of the last round, by listing (never waiting)."""
        return self.problems.left_out

    def _units_in(self, when: Pass) -> list[AnyUnit]:
        return [unit for unit in self.units if when in unit.passes]

    # --- a round ---

    async def take_inventory(self, yield_at: float | None = None) -> bool:
        """One round over the round units; what a listing that fails held before is kept.
        True when every read it made succeeded.

        What may reveal an unprotected addon comes first (`Spend.DISCOVERY`): only an addon
        no destination lists can be unprotected, so those addons' schedules are read, and
        shown on /metrics, before the volumes and the rest (a budget too small for the whole
        round finds them first). With `yield_at` (when the next round falls due), the rest
        gives way to the next round's first reads then, and goes on after them: the first
        round of a large account reads the schedules of every listed addon, hours of budget
        (1,000 addons: 990 schedules), and a database created meanwhile waited for all of
        them (`bench/coverage.py`: created 2 h after the start, on /metrics 6 h later; now
        within the next round). Cadenced reads, between rounds, no longer wait for it either."""
        for unit in self.units:
            unit.begin_round()
        self._read_this_round = set()
        self._progress = InventoryProgress(self._requests_due(Spend.DISCOVERY))
        self._yield_at, self._yielded = yield_at, False
        try:
            ok = await self._round()
        finally:
            self._progress = None
            self._yield_at = None
            self._discovered.set()  # a round that could not list still lets the cadence go
        # a round that gave way is judged by the reads it made; what it left is still due
        self._left_behind = 0
        if self._yielded:
            self._left_behind = sum(self._requests_due(Spend.DISCOVERY).values())
        self._round_ok = ok
        if ok:
            self._last_round = self._loops.clock()
            self.problems.told.clear()
        return ok

    async def _round(self) -> bool:
        ok = True
        for spend in ROUND_ORDER:
            for unit in self._units_in(Pass.ROUND):
                unit_ok = await self._walk(unit, spend)
                if not unit_ok and unit.blocks_round:
                    return False
                ok = ok and unit_ok
                if self._yielded:
                    return ok
                self._expect(spend)
            if spend is Spend.DISCOVERY:
                self._show()  # whatever may be unprotected is on /metrics now
                self._discovered.set()
        return ok

    def _requests_due(self, since: Spend) -> dict[str, int]:
        """What the rest of the round will cost, as far as the units know now (1 a listing:
        most fit a page); refined as the round learns how many there are of each."""
        now = self._loops.clock()
        due = {}
        for unit in self._units_in(Pass.ROUND):
            listing = unit.reads.listing
            due[listing.words] = sum(
                1
                for key, subject in unit.wanted().items()
                if unit.spend(key) >= since
                and (listing, key) not in self._read_this_round
                and unit.due(key, subject, now)
            )
        return due

    def _expect(self, since: Spend) -> None:
        if self._progress is not None:
            for listing, requests in self._requests_due(since).items():
                self._progress.expect(listing, requests)

    # --- a round, as the unit reads see it (unit_reads.RoundHooks) ---

    def gives_way(self, spend: Spend) -> bool:
        """Whether the rest of this round gives way to the next round, due now."""
        if spend < Spend.BACKGROUND or self._yield_at is None:
            return False
        if self._loops.clock() >= self._yield_at:
            self._yielded = True
        return self._yielded

    def before_read(self, listing: Listing, key: Any) -> None:
        """First say how long the rest will take when it must wait for the budget."""
        self._tell_progress()
        self._read_this_round.add((listing, key))

    def after_read(self, listing: Listing) -> None:
        if self._progress is not None:
            self._progress.sent_one(listing.words)

    async def _walk(self, unit: AnyUnit, spend: Spend) -> bool:
        """Read the unit's due keys of `spend`."""
        return await self.reads.walk(unit, RoundPart(spend, self), self._limit)

    # --- saying how a round goes ---

    def _tell_progress(self) -> None:
        progress = self._progress
        budget = self._loops.budget
        if progress is None or budget is None or not budget.waits:
            return  # `--once` never waits: it says at the end what it left out
        progress.seconds_left = budget.seconds_to_send(progress.requests_left())
        say = progress.telling.what_to_say(self._loops.clock(), progress.seconds_left)
        if say is Say.FIRST:
            why = round_why_slow(progress, budget, self._loops.clock(), self._yield_at)
            # a round going on with what the last one left was warned of then
            level = logging.INFO if self._left_behind else logging.WARNING
            log.log(level, self._loops.coverage_line(why))
        elif say is Say.AGAIN:
            log.info(
                self._loops.coverage_line(
                    "inventory progress: %d requests sent, about %d left (%s), about %s"
                ),
                progress.sent,
                progress.requests_left(),
                progress.described(),
                format_duration(progress.seconds_left),
            )
        if say is not None:
            self._show()

    # --- what is exported ---

    def _show(self) -> None:
        """Publish what is known now and put it on /metrics (mid-round too)."""
        self._publish()
        if self._loops.render is not None:
            self._loops.render()

    def _publish(self) -> None:
        up = None
        if self._round_ok is not None:
            up = self._round_ok and all(unit.up() for unit in self.units)
        progress = self._progress
        self.snapshot = CoverageSnapshot(
            up=up,
            last_success=self._last_round,
            published=tuple(
                (unit.table, unit.rows()) for unit in self.units if unit.table is not None
            ),
            listings_cut=tuple(sorted(self.problems.cut.items())),
            inventory_requests_left=self._left_behind
            if progress is None
            else progress.requests_left(),
            inventory_seconds_left=0.0 if progress is None else progress.seconds_left,
        )
