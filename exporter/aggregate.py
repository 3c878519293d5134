"""Pure aggregation of one destination's backups into the summary the collector renders.

Nothing here does I/O or reads a clock: the poll's `now` is passed in, so the same backups
always give the same summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from exporter.addons import AddonSummary, ReadSchedules, summarize_addon
from exporter.backups import read_page, wire_item
from exporter.config import AddonRules
from exporter.model import Backup, by_status
from exporter.store import BackupStore


@dataclass(frozen=True)
class DestinationSummary:
    """What one complete poll of a destination found; immutable, rendered by the collector."""

    backups_by_status: tuple[tuple[str, int], ...]
    bytes_by_status: tuple[tuple[str, int], ...]
    last_completed: float | None
    expiring: int
    next_expiry: float | None
    total: int
    invalid: int
    addons: tuple[AddonSummary, ...] = ()


AddonKey = tuple[str, str]  # (project id, "" when none; addon id)


def summarize_store(
    store: BackupStore,
    now: float,
    warning_window: float,
    rules: AddonRules | None = None,
    invalid: int = 0,
    *,
    read: Callable[[str, str], ReadSchedules | None] | None = None,
) -> DestinationSummary:
    """The summary of every backup the store holds that has not expired by `now`; `read`
    gives what was read of an addon's backup-schedules (project, addon), if anything."""
    rules = rules or AddonRules(enabled=False)
    warn_until = now + warning_window
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    last_completed: float | None = None
    next_expiry: float | None = None
    expiring = 0
    by_addon: dict[AddonKey, list[Backup]] = {}
    for backup in store:
        if backup.is_expired(now):
            continue
        counts[backup.status] += 1
        sizes[backup.status] += backup.size
        if backup.status == "completed" and backup.completed is not None:
            last_completed = _latest(last_completed, backup.completed)
        if backup.expires is not None:
            next_expiry = _earliest(next_expiry, backup.expires)
            if backup.expires <= warn_until:
                expiring += 1
        if rules.enabled and backup.addon_id is not None:
            key = (backup.project_id or "", backup.addon_id)
            by_addon.setdefault(key, []).append(backup)
    addons = []
    for (project, addon), backups in sorted(by_addon.items()):
        if rules.wants(project, addon):
            addons.append(
                summarize_addon(
                    project,
                    addon,
                    backups,
                    now=now,
                    warn_until=warn_until,
                    rules=rules,
                    read=None if read is None else read(project, addon),
                )
            )
    return DestinationSummary(
        backups_by_status=by_status(counts),
        bytes_by_status=by_status(sizes),
        last_completed=last_completed,
        expiring=expiring,
        next_expiry=next_expiry,
        total=sum(counts.values()),
        invalid=invalid,
        addons=tuple(addons),
    )


def _latest(known: float | None, moment: float) -> float:
    return moment if known is None else max(known, moment)


def _earliest(known: float | None, moment: float) -> float:
    return moment if known is None else min(known, moment)


def summarize(
    raw_backups: Iterable[Any],
    now: float,
    warning_window: float,
    rules: AddonRules | None = None,
    *,
    read: Callable[[str, str], ReadSchedules | None] | None = None,
) -> DestinationSummary:
    """Read and fold decoded JSON items at once (for tests and tools; the poller reads pages)."""
    page = read_page([wire_item(raw) for raw in raw_backups])
    store = BackupStore()
    store.extend(page.backups)
    return summarize_store(store, now, warning_window, rules, invalid=len(page.invalid), read=read)
