"""An addon's backups in Northflank-managed storage: for addons whose schedules keep backups
there, their listing is read on the cadence of `cadence.py` and folded by the same
`summarize_addon` as a destination's backups, under the destination MANAGED_STORAGE, so every
per-addon alert works on them unchanged. The read is the destinations' incremental sync
(`sync.py`), so it is usually one page."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import replace
from typing import TYPE_CHECKING

from exporter.addons import AddonSummary, summarize_addon
from exporter.api import ADDON_BACKUPS_ENDPOINT, MANAGED_BACKUPS_MAX_ITEMS
from exporter.budget import Spend
from exporter.collectors.addon_health import ADDON_HEALTH, AddonRow
from exporter.durations import DAY
from exporter.inventory import MANAGED_STORAGE, CoverageSchedule
from exporter.model import Backup
from exporter.resources.addon_schedules import AddonSchedules
from exporter.resources.addons import Addons
from exporter.resources.cadenced import Cadenced, Judged
from exporter.resources.unit import Listing, Pass, Reads
from exporter.schedule import last_slot, week_offsets
from exporter.sync import Syncer, SyncResult

if TYPE_CHECKING:
    from exporter.context import AccountLoops

Key = tuple[str, str]  # (project, addon)
Managed = tuple[CoverageSchedule, ...]  # the addon's schedules that keep backups there


# A read's answer, as of when it began: the sync judges expiry and slots from then.
Read = tuple[float, SyncResult]


class ManagedBackups(Cadenced[Managed, Read, AddonSummary]):
    reads = Reads(
        Listing.MANAGED_BACKUPS,
        ADDON_BACKUPS_ENDPOINT,
        "GetAddonBackupsEndpoint",
        "GetAddonBackupsResponse",
    )
    # in a round, right after the schedules that found them: an addon backed up only to
    # managed storage is one no destination lists, and its health comes with its coverage
    passes = frozenset({Pass.ROUND, Pass.CADENCE})
    table = ADDON_HEALTH

    def __init__(self, loops: AccountLoops, addons: Addons, schedules: AddonSchedules) -> None:
        super().__init__(loops)
        self._addons = addons
        self._schedules = schedules
        poll = loops.poll
        self._syncer = Syncer(
            loops.client.addon_backup_pages,
            poll.full_resync_interval,
            poll.incremental,
            max_items=MANAGED_BACKUPS_MAX_ITEMS,
        )

    def wanted(self) -> Mapping[Key, Managed]:
        return self._schedules.managed()

    def spend(self, key: Key) -> Spend:
        """Read in a round with what reveals; each request spends as its sync says (the first
        read discovery, a resync background, an incremental read a poll)."""
        return Spend.DISCOVERY

    async def fetch(self, key: Key, subject: Managed) -> Read:
        began = self.loops.clock()
        return began, await self._syncer.sync(f"{key[0]}/{key[1]}", began)

    def fold(self, key: Key, subject: Managed, answer: Read, now: float) -> bool:
        now, result = answer
        tolerance = self.loops.addons.tolerance
        backups = []
        for backup in result.store:
            kept = _with_expiry(backup, subject, tolerance)
            if not kept.is_expired(now):
                backups.append(kept)
        slots = tuple(declared.schedule for declared in subject)
        summary = self._summarize(key, backups, subject, now) if backups else None
        judged = Judged(
            offsets=week_offsets(slots),
            answered_until=None if summary is None else summary.newest_completed_created,
            oldest_created=None if summary is None else summary.oldest_created,
            last_duration=None if summary is None else summary.last_completed_duration,
        )
        self.listings.read(key, summary, judged, now)
        return True

    def _summarize(
        self, key: Key, backups: list[Backup], managed: Managed, now: float
    ) -> AddonSummary:
        summary = summarize_addon(
            key[0],
            key[1],
            backups,
            now=now,
            warn_until=now + self.loops.expiry_warning_window,
            rules=self.loops.addons,
            declared=tuple(declared.schedule for declared in managed),
        )
        addon = self._addons.addons[key]
        # the listing names neither the project, the addon nor its type: the inventory does
        return replace(
            summary,
            project_name=addon.project_name,
            addon_name=addon.name,
            addon_type=addon.type,
        )

    def forget_all_but(self, keys: Set[Key]) -> None:
        super().forget_all_but(keys)
        self._syncer.forget_all_but({f"{p}/{a}" for p, a in keys})

    def rows(self) -> tuple[AddonRow, ...]:
        rules = self.loops.addons
        return tuple(
            AddonRow(MANAGED_STORAGE, summary, rules) for summary in self.listings.summaries()
        )


def _with_expiry(backup: Backup, managed: Managed, tolerance: float) -> Backup:
    """The backup with its expiry, where its listing gives none (managed storage) and the
    schedule whose slot it answers says how long it is kept: createdAt + retentionTime days.
    A backup no schedule's slot explains (one taken by hand) keeps no expiry: unknown."""
    if backup.expires is not None:
        return backup
    kept = None
    for declared in managed:
        offsets = week_offsets((declared.schedule,))
        if declared.retention_days is None or not offsets:
            continue
        if backup.created - last_slot(offsets, backup.created + tolerance) <= tolerance:
            days = declared.retention_days
            kept = days if kept is None else max(kept, days)
    return backup if kept is None else backup._replace(expires=backup.created + kept * DAY)
