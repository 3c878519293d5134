"""Pure per-addon aggregation: one addon's backups folded into an AddonSummary.

Fed by the destination's single pass over the pages; keeps per addon only a handful of
numbers plus the creation times that fall inside the missed-slot lookback.
"""

from __future__ import annotations

import heapq
import re
import statistics
from collections import Counter
from dataclasses import dataclass

from exporter.backups import FAILED_STATUSES, RUNNING_STATUSES, Backup, Schedule, by_status
from exporter.schedule import WeekOffsets, longest_gap, missed_slots, week_offsets

# How many of the newest completed backups the median size is taken over.
RECENT_SIZES = 10


@dataclass(frozen=True)
class AddonRules:
    """Which addons get series, and how schedules are judged."""

    enabled: bool = True
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    tolerance: float = 300.0
    grace: float = 3600.0
    lookback: float = 7 * 86400.0

    def wants(self, project: str, addon: str) -> bool:
        """include/exclude are anchored regular expressions over "project/addon"."""
        if not self.enabled:
            return False
        key = f"{project}/{addon}"
        if self.include and not any(p.fullmatch(key) for p in self.include):
            return False
        return not any(p.fullmatch(key) for p in self.exclude)


@dataclass(frozen=True)
class AddonSummary:
    project: str
    addon: str
    project_name: str
    addon_name: str
    addon_type: str
    addon_version: str
    backups_by_status: tuple[tuple[str, int], ...]
    last_completed: float | None
    last_completed_size: int | None
    recent_size_median: float | None
    last_completed_duration: float | None
    newest_completed_created: float | None
    last_failure: float | None
    oldest_running_created: float | None
    restorable_until: float | None
    expiring: int
    oldest_created: float
    schedules: tuple[Schedule, ...]
    offsets: WeekOffsets
    expected_interval: float | None
    missed_slots: int | None

    @property
    def never_completed(self) -> bool:
        return self.last_completed is None


def _newer(candidate: float | None, current: float | None) -> bool:
    return candidate is not None and (current is None or candidate > current)


class AddonAccumulator:
    def __init__(
        self, project: str, addon: str, now: float, warn_until: float, rules: AddonRules
    ) -> None:
        self.project = project
        self.addon = addon
        self._now = now
        self._warn_until = warn_until
        self._rules = rules
        self._keep_created_after = now - rules.lookback - rules.tolerance
        self._counts: Counter[str] = Counter()
        self._newest: Backup | None = None
        self._last_completed: Backup | None = None
        self._recent_sizes: list[tuple[float, int]] = []  # heap of (completed, size)
        self._newest_completed_created: float | None = None
        self._last_failure: float | None = None
        self._oldest_running: float | None = None
        self._restorable_until: float | None = None
        self._expiring = 0
        self._oldest_created: float | None = None
        self._schedules: tuple[Schedule, ...] = ()
        self._schedules_created: float | None = None
        self._recent_created: list[float] = []

    def add(self, backup: Backup) -> None:
        status = backup.status
        counts = self._counts
        counts[status] = counts.get(status, 0) + 1
        created = backup.created
        if self._newest is None or created > self._newest.created:
            self._newest = backup
        if self._oldest_created is None or created < self._oldest_created:
            self._oldest_created = created
        if created >= self._keep_created_after:
            self._recent_created.append(created)
        if backup.schedules and (
            self._schedules_created is None or created > self._schedules_created
        ):
            self._schedules, self._schedules_created = backup.schedules, created
        if status == "completed":
            self._note_completed(backup)
        elif status in FAILED_STATUSES:
            failed_at = backup.completed if backup.completed is not None else created
            if _newer(failed_at, self._last_failure):
                self._last_failure = failed_at
        elif status in RUNNING_STATUSES and (
            self._oldest_running is None or created < self._oldest_running
        ):
            self._oldest_running = created
        expires = backup.expires
        if expires is not None and self._now < expires <= self._warn_until:
            self._expiring += 1

    def _note_completed(self, backup: Backup) -> None:
        completed, created, expires = backup.completed, backup.created, backup.expires
        last = self._last_completed
        if last is None or (
            completed is not None and (last.completed is None or completed > last.completed)
        ):
            self._last_completed = backup
        self._remember_size(completed or created, backup.size)
        newest = self._newest_completed_created
        if newest is None or created > newest:
            self._newest_completed_created = created
        if expires is not None and (
            self._restorable_until is None or expires > self._restorable_until
        ):
            self._restorable_until = expires

    def _remember_size(self, completed: float, size: int) -> None:
        """Keep the sizes of the RECENT_SIZES newest completed backups."""
        recent = self._recent_sizes
        if len(recent) < RECENT_SIZES:
            heapq.heappush(recent, (completed, size))
        elif completed >= recent[0][0] and (completed, size) > recent[0]:
            heapq.heapreplace(recent, (completed, size))

    def summary(self) -> AddonSummary:
        newest = self._newest
        assert newest is not None and self._oldest_created is not None, "summary of no backups"
        last = self._last_completed
        offsets = week_offsets(self._schedules)
        missed = None
        if offsets:
            missed = missed_slots(
                offsets,
                sorted(self._recent_created),
                self._oldest_created,
                now=self._now,
                tolerance=self._rules.tolerance,
                lookback=self._rules.lookback,
            )
        return AddonSummary(
            project=self.project,
            addon=self.addon,
            project_name=newest.project_name or "",
            addon_name=newest.addon_name or "",
            addon_type=newest.addon_type or "",
            addon_version=newest.addon_version or "",
            backups_by_status=by_status(self._counts),
            last_completed=None if last is None else last.completed,
            last_completed_size=None if last is None else last.size,
            recent_size_median=(
                statistics.median(size for _, size in self._recent_sizes)
                if self._recent_sizes
                else None
            ),
            last_completed_duration=None
            if last is None or last.completed is None
            else max(0.0, last.completed - last.created),
            newest_completed_created=self._newest_completed_created,
            last_failure=self._last_failure,
            oldest_running_created=self._oldest_running,
            restorable_until=self._restorable_until,
            expiring=self._expiring,
            oldest_created=self._oldest_created,
            schedules=self._schedules,
            offsets=offsets,
            expected_interval=longest_gap(offsets) if offsets else None,
            missed_slots=missed,
        )
