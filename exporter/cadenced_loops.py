"""A loop for each resource unit read on a cadence (managed-storage and volume backups,
restores) rather than in the coverage rounds: each key read when its read falls due.

Each unit has a loop of its own, beside the rounds' (`coverage.py`), with its own stall check
in /-/healthy. A round's rest may last until the next round when the budget is short (the
first round of a large account reads every addon's schedules), and a unit's reads may wait for
the budget: in one loop, each waited for the others, and on 1,000 addons (bench/coverage.py)
the volumes' reads after their slots came 55 minutes late for the first 32 hours, each hourly
volume read every other hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from exporter.context import AccountLoops
from exporter.resources.unit import Unit
from exporter.supervise import first_of
from exporter.unit_reads import UnitReads

AnyUnit = Unit[Any, Any, Any]


def pause_until(loops: AccountLoops, due: float | None) -> float:
    """The seconds until `due`: at least one, at most a poll interval."""
    interval = loops.poll.interval
    if due is None:
        return interval
    return min(max(due - loops.clock(), 1.0), interval)


class CadencedLoops:
    def __init__(
        self,
        loops: AccountLoops,
        units: Sequence[AnyUnit],
        reads: UnitReads,
        show: Callable[[], None],
    ) -> None:
        """`show` publishes what the units know and puts it on /metrics."""
        self._loops = loops
        self._units = units
        self._reads = reads
        self._show = show
        # poll.concurrency reads at a time for each unit
        self._limits = {
            unit.reads.listing: asyncio.Semaphore(loops.poll.concurrency) for unit in units
        }

    @property
    def loop_names(self) -> list[str]:
        return [self._loop_name(unit) for unit in self._units]

    def _loop_name(self, unit: AnyUnit) -> str:
        return f"{unit.reads.listing.value}:{self._loops.account.name}"

    async def run(self, stop: asyncio.Event, after: asyncio.Event) -> None:
        """Each unit's loop, once `after` is set: the first round has read what may reveal
        an unprotected addon (docs/design.md, "What is read first")."""
        await first_of(after.wait(), stop.wait())
        await asyncio.gather(*(self._run(unit, stop) for unit in self._units))

    async def _run(self, unit: AnyUnit, stop: asyncio.Event) -> None:
        async def step() -> float:
            return await self.step((unit,))

        await self._loops.run(self._loop_name(unit), step, stop)

    async def step(self, units: Sequence[AnyUnit] | None = None) -> float:
        """Every due read of these units (None: of all), then publish; the seconds until the
        next is due."""
        walked = self._units if units is None else units
        for unit in walked:
            await self._reads.walk(unit, None, self._limits[unit.reads.listing])
        self._show()
        due = [at for at in (unit.next_due() for unit in walked) if at is not None]
        return pause_until(self._loops, min(due, default=None))
