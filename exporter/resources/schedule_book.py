"""What addons and volumes declare: their backup schedules as last read, and when a read of
them is due again. Shared by the two schedule units (`addon_schedules`, `volume_schedules`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.inventory import CoverageSchedule, InvalidItem

if TYPE_CHECKING:
    from exporter.context import AccountLoops

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (project, addon) or (project, volume)

# A paced read that finds the schedules as they were doubles the time to the next, up to this
# many times the max age; a change brings the max age back.
UNCHANGED_STRETCH = 4
# What an addon's status says while it runs and its own backups and restores come and go (the
# clients' status enum): no reason to read its schedules again. Read again on each, an hourly
# addon's schedules were read about every other listing that met a backup under way (the
# simulator lists `backup` while one runs; tests/test_coverage.py).
RUNNING_PHASES = frozenset({"running", "backup", "restore"})


def phase(status: str) -> str:
    """A status as a reason to read schedules again: every running phase is one."""
    return "running" if status in RUNNING_PHASES else status


@dataclass(frozen=True)
class KnownSchedules:
    read_at: float
    status: str  # the addon's (or volume's) status when they were read
    schedules: tuple[CoverageSchedule, ...]
    stretch: int = 1  # times max_age until a paced read is due again


def schedules_due(
    known: KnownSchedules | None, status: str, max_age: float, now: float, paced: bool = False
) -> bool:
    """A new addon's (or volume's) schedules are read at once; known ones when its status
    changed or the last read is `max_age` old (schedules rarely change); `paced`: `max_age`
    times the stretch that reads finding them unchanged have earned."""
    if known is None or phase(known.status) != phase(status):
        return True
    return now - known.read_at >= max_age * (known.stretch if paced else 1)


class ScheduleBook:
    """The schedules last read for each key; one unreadable entry keeps what was known, since
    a count missing one schedule would be wrong rather than unknown."""

    def __init__(self, loops: AccountLoops, kind: str) -> None:
        self._loops = loops
        self._kind = kind  # "addon" or "volume", for log lines
        self.known: dict[Key, KnownSchedules] = {}

    def due(
        self, key: Key, status: str, now: float, max_age: float | None = None, paced: bool = False
    ) -> bool:
        age = self._loops.coverage.schedules_max_age if max_age is None else max_age
        return schedules_due(self.known.get(key), status, age, now, paced)

    def fold(
        self,
        key: Key,
        status: str,
        raw: list[Any],
        read: Callable[[Any], CoverageSchedule],
        now: float,
    ) -> bool:
        schedules = []
        for item in raw:
            try:
                schedules.append(read(item))
            except InvalidItem as problem:
                log.warning(
                    self._loops.coverage_line("%s=%s/%s has a schedule that cannot be read: %s"),
                    self._kind,
                    *key,
                    problem,
                )
                return False
        before = self.known.get(key)
        stretch = 1
        if before is not None and before.schedules == tuple(schedules):
            stretch = min(before.stretch * 2, UNCHANGED_STRETCH)
        self.known[key] = KnownSchedules(now, status, tuple(schedules), stretch)
        return True

    def never_read(self, key: Key) -> bool:
        return key not in self.known

    def schedules(self, key: Key) -> tuple[CoverageSchedule, ...] | None:
        known = self.known.get(key)
        return None if known is None else known.schedules

    def forget_all_but(self, keys: Set[Key]) -> None:
        for gone in set(self.known) - keys:
            del self.known[gone]
