"""An addon's backup schedules: what backs it up, and where its backups should arrive. An
active addon that declares none is unprotected.

Only an addon that no destination lists with scheduled backups can be unprotected, so in a
round those addons' schedules are read first (`Spend.DISCOVERY`); the others' can wait: on a
large account their re-reads stretch to fit LISTED_REFRESH_SHARE of the budget, and each one's
is paced by change (`schedule_book.UNCHANGED_STRETCH`). On 1,000 addons those re-reads filled
the quarter they were given, the largest part of the steady cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Set
from typing import TYPE_CHECKING, Any, NamedTuple

from exporter.api import ADDON_SCHEDULES_ENDPOINT
from exporter.budget import Spend
from exporter.durations import HOUR, format_duration
from exporter.families import Family, Kind, Sample, Table, gauge
from exporter.inventory import MANAGED_STORAGE, Addon, CoverageSchedule, read_addon_schedule
from exporter.resources.addons import Addons
from exporter.resources.schedule_book import ScheduleBook
from exporter.resources.unit import Listing, Reads, Unit
from exporter.schedule import first_slot_at_or_after, week_offsets

if TYPE_CHECKING:
    from exporter.context import AccountLoops

log = logging.getLogger("exporter.coverage")

# Re-reading the schedules of addons that destinations list may take this share of the budget.
LISTED_REFRESH_SHARE = 0.25

Key = tuple[str, str]  # (project, addon)


class CoveredAddon(NamedTuple):
    addon: Addon
    schedules: tuple[CoverageSchedule, ...] | None  # None: not read successfully yet
    judged: bool  # it gets per-addon series (addons.*)

    @property
    def unprotected(self) -> bool | None:
        """An active addon that declares no schedule (None when its schedules are unknown)."""
        if self.schedules is None:
            return None
        return self.addon.active and not self.schedules

    @property
    def managed(self) -> tuple[CoverageSchedule, ...]:
        """Its schedules that keep backups in managed storage."""
        return tuple(s for s in self.schedules or () if s.destination == MANAGED_STORAGE)


def _schedule_info(row: CoveredAddon, now: float) -> Iterator[Sample]:
    for declared in row.schedules or ():
        for destination, role in declared.destinations:
            labels = (declared.id, declared.schedule.interval, declared.backup_type)
            yield (*labels, destination, role), {}


def _first_slots(row: CoveredAddon, now: float) -> Iterator[Sample]:
    if not row.judged:
        return
    for declared in row.schedules or ():
        if declared.created is not None:
            offsets = week_offsets((declared.schedule,))
            yield (declared.id,), first_slot_at_or_after(offsets, declared.created)


def _count(row: CoveredAddon, now: float) -> float | None:
    return None if row.schedules is None else len(row.schedules)


def _unprotected(row: CoveredAddon, now: float) -> float | None:
    unprotected = row.unprotected
    return None if unprotected is None else float(unprotected)


ADDON_COVERAGE: Table[CoveredAddon] = Table(
    labels=("project", "addon"),
    key=lambda row: (row.addon.project, row.addon.id),
    families=(
        gauge(
            "northflank_coverage_addon_backup_schedules",
            "Backup schedules the addon declares (0: nothing backs it up).",
            _count,
        ),
        gauge(
            "northflank_coverage_addon_unprotected",
            "1 when the addon declares no backup schedule and is not paused, deleting or deleted.",
            _unprotected,
        ),
        Family(
            "northflank_coverage_addon_backup_schedule",
            "One series per backup schedule and place it sends backups to: a custom "
            f"destination id, or {MANAGED_STORAGE} (role primary), plus each additional "
            "destination a snapshot is copied to (role additional). Always 1.",
            _schedule_info,
            kind=Kind.INFO,
            labels=("schedule", "interval", "backup_type", "destination", "role"),
        ),
        Family(
            "northflank_coverage_addon_backup_schedule_first_slot_timestamp_seconds",
            "The schedule's first slot after it was created: from then on its backups should "
            "arrive. Only for addons that get per-addon series (addons.*), which the alert on "
            "backups that never arrive joins with.",
            _first_slots,
            labels=("schedule",),
        ),
    ),
)


class AddonSchedules(Unit[Key, Addon, list[Any]]):
    reads = Reads(
        Listing.ADDON_SCHEDULES,
        ADDON_SCHEDULES_ENDPOINT,
        "GetAddonBackupSchedulesEndpoint",
        "GetAddonBackupSchedulesResponse",
    )
    table = ADDON_COVERAGE

    def __init__(self, loops: AccountLoops, addons: Addons, listed: Callable[[], set[Key]]) -> None:
        """`listed`: the addons some destination lists with scheduled backups (protected)."""
        super().__init__(loops)
        self._addons = addons
        self._listed = listed
        self.book = ScheduleBook(loops, "addon")
        self._listed_now: set[Key] | None = None  # as of this round, once its addons are known
        self._listed_max_age = loops.coverage.schedules_max_age

    def wanted(self) -> Mapping[Key, Addon]:
        return self._addons.addons

    def begin_round(self) -> None:
        self._listed_now = None

    def before_walk(self) -> None:
        if self._listed_now is None:
            listed = self._listed()
            self._listed_now = {key for key in self._addons.addons if key in listed}
            self._stretch_listed_max_age(len(self._listed_now))

    def spend(self, key: Key) -> Spend:
        listed = self._listed_now if self._listed_now is not None else self._listed()
        return Spend.REFRESH if key in listed else Spend.DISCOVERY

    def due(self, key: Key, subject: Addon, now: float) -> bool:
        listed = self._listed_now is not None and key in self._listed_now
        if listed:  # protected whatever they say: paced by change
            return self.book.due(key, subject.status, now, self._listed_max_age, paced=True)
        return self.book.due(key, subject.status, now)

    def never_read(self, key: Key) -> bool:
        return self.book.never_read(key)

    async def fetch(self, key: Key, subject: Addon) -> list[Any]:
        return await self.loops.client.addon_schedules(*key, spend=self.spend(key))

    def fold(self, key: Key, subject: Addon, answer: list[Any], now: float) -> bool:
        return self.book.fold(key, subject.status, answer, read_addon_schedule, now)

    def forget_all_but(self, keys: Set[Key]) -> None:
        self.book.forget_all_but(keys)

    def rows(self) -> tuple[CoveredAddon, ...]:
        rules = self.loops.addons
        return tuple(
            CoveredAddon(addon, self.book.schedules(key), rules.wants(*key))
            for key, addon in self._addons.addons.items()
        )

    def managed(self) -> dict[Key, tuple[CoverageSchedule, ...]]:
        """The addons with per-addon series whose schedules keep backups in managed storage,
        with those schedules."""
        wanted = {}
        for row in self.rows():
            if row.judged and row.managed:
                wanted[(row.addon.project, row.addon.id)] = row.managed
        return wanted

    def _stretch_listed_max_age(self, listed: int) -> None:
        """Re-reading the schedules of addons that destinations list (protected: the read only
        adds what they also send to managed storage) may take at most LISTED_REFRESH_SHARE of
        the budget: on a large account their max age stretches, with one line when it does."""
        configured = self.loops.coverage.schedules_max_age
        budget = self.loops.budget
        needed = (
            0.0
            if budget is None
            else listed * HOUR / (LISTED_REFRESH_SHARE * budget.requests_per_hour)
        )
        stretched = max(configured, needed)
        if stretched > configured and stretched > self._listed_max_age * 1.1:
            log.warning(
                self.loops.coverage_line(
                    "the schedules of the %d addons that destinations list are read again every "
                    "%s instead of coverage.schedules_max_age=%s, so that it takes at most a "
                    "quarter of rate_limit.requests_per_hour=%d, and up to 4 times less often "
                    "while they do not change (addons no destination lists keep %s)"
                ),
                listed,
                format_duration(stretched),
                format_duration(configured),
                budget.requests_per_hour if budget else 0,
                format_duration(configured),
            )
        self._listed_max_age = stretched
