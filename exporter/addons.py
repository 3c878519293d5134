"""Pure per-addon aggregation: one addon's backups folded into an AddonSummary.

Read from the rows of a destination's store that belong to the addon, column by column.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from exporter.backups import FAILED_STATUSES, RUNNING_STATUSES, Schedule, by_status
from exporter.schedule import WeekOffsets, longest_gap, missed_slots, week_offsets
from exporter.store import BackupStore

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


def summarize_addon(
    project: str,
    addon: str,
    rows: list[int],
    store: BackupStore,
    *,
    now: float,
    warn_until: float,
    rules: AddonRules,
) -> AddonSummary:
    """One addon's backups (`rows` of the store, in listing order, none expired) folded into
    its summary with C-level passes over its columns. Ties go to the first in listing order."""
    columns = _Columns.at(store, rows)
    names = store.status_names
    counts = Counter(columns.statuses)
    newest = columns.created.index(max(columns.created))
    ref = store.addon_refs[store.addons[rows[newest]]]
    ordered = sorted(columns.created)
    recent = ordered[bisect.bisect_left(ordered, now - rules.lookback - rules.tolerance) :]
    schedules = store.schedule_lists[_newest_scheduled(columns, newest)]
    finished = _Completed.of(columns, _with_status(columns, counts, names, {"completed"}))
    offsets = week_offsets(schedules)
    missed = None
    if offsets:
        missed = missed_slots(
            offsets,
            recent,
            ordered[0],
            now=now,
            tolerance=rules.tolerance,
            lookback=rules.lookback,
        )
    return AddonSummary(
        project=project,
        addon=addon,
        project_name=ref.project_name or "",
        addon_name=ref.addon_name or "",
        addon_type=ref.addon_type or "",
        addon_version=ref.addon_version or "",
        backups_by_status=by_status(Counter({names[i]: n for i, n in counts.items()})),
        last_completed=finished.last,
        last_completed_size=finished.last_size,
        recent_size_median=finished.recent_size_median,
        last_completed_duration=finished.last_duration,
        newest_completed_created=finished.newest_created,
        last_failure=_last_failure(columns, _with_status(columns, counts, names, FAILED_STATUSES)),
        oldest_running_created=_oldest_running(
            columns, _with_status(columns, counts, names, RUNNING_STATUSES)
        ),
        restorable_until=finished.restorable_until,
        expiring=len(list(filter(warn_until.__ge__, columns.expires))),  # NaN compares false
        oldest_created=ordered[0],
        schedules=schedules,
        offsets=offsets,
        expected_interval=longest_gap(offsets) if offsets else None,
        missed_slots=missed,
    )


class _Columns(NamedTuple):
    """One addon's backups field by field, in listing order; statuses and schedules are
    indices into the store's tables."""

    statuses: tuple[int, ...]
    created: tuple[float, ...]
    completed: tuple[float, ...]  # NaN: not finished
    expires: tuple[float, ...]  # NaN: never
    sizes: tuple[int, ...]
    schedules: tuple[int, ...]  # 0: none listed

    @classmethod
    def at(cls, store: BackupStore, rows: list[int]) -> _Columns:
        if len(rows) == 1:  # itemgetter of one row gives a value, not a tuple
            (row,) = rows
            return cls(*((getattr(store, name)[row],) for name in cls._fields))
        pick = operator.itemgetter(*rows)  # the values at `rows`, in C
        return cls(*(pick(getattr(store, name)) for name in cls._fields))


Mask = list[bool]


def _with_status(
    columns: _Columns, counts: Counter[int], names: list[str], wanted: Collection[str]
) -> Mask | None:
    """Which rows have one of the `wanted` statuses; None when none has."""
    found = {i for i in counts if names[i] in wanted}
    if not found:
        return None
    return list(map(found.__contains__, columns.statuses))


def _newest_scheduled(columns: _Columns, newest: int) -> int:
    """The schedule list of the newest backup that lists one (0: none does)."""
    schedules = columns.schedules
    if 0 not in schedules:
        return schedules[newest]
    listed = [(at, -row) for row, at in enumerate(columns.created) if schedules[row]]
    return schedules[-max(listed)[1]] if listed else 0


@dataclass(frozen=True)
class _Completed:
    last: float | None = None
    last_size: int | None = None
    last_duration: float | None = None
    newest_created: float | None = None
    restorable_until: float | None = None
    recent_size_median: float | None = None

    @classmethod
    def of(cls, columns: _Columns, completed: Mask | None) -> _Completed:
        """What the completed backups (the rows `completed` marks) tell."""
        if completed is None:
            return cls()
        finished = list(itertools.compress(columns.completed, completed))
        started = list(itertools.compress(columns.created, completed))
        sizes = list(itertools.compress(columns.sizes, completed))
        last = finished.index(max(finished))
        recent = sorted(zip(finished, sizes, strict=True))[-RECENT_SIZES:]
        expiries = itertools.compress(columns.expires, completed)
        return cls(
            last=finished[last],
            last_size=sizes[last],
            last_duration=max(0.0, finished[last] - started[last]),
            newest_created=max(started),
            restorable_until=max(filter(math.isfinite, expiries), default=None),
            recent_size_median=_median(sorted(size for _, size in recent)),
        )


def _median(ordered: list[int]) -> float:
    """statistics.median of sorted values, without its generality (this runs once per addon)."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _last_failure(columns: _Columns, failed: Mask | None) -> float | None:
    """When the newest failure ended (or began, when it never ended)."""
    if failed is None:
        return None
    ended = itertools.compress(columns.completed, failed)
    began = itertools.compress(columns.created, failed)
    return max(start if math.isnan(end) else end for end, start in zip(ended, began, strict=True))


def _oldest_running(columns: _Columns, running: Mask | None) -> float | None:
    if running is None:
        return None
    return min(itertools.compress(columns.created, running))
