"""A scheduled volume's backups: counts by status, the newest one, and its health against its
schedules, as the addon families say it of addons. Each read is the whole listing (a volume
keeps days of snapshots, one or two pages), on the cadence of `cadence.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from exporter.api import VOLUME_BACKUPS_ENDPOINT
from exporter.budget import Spend
from exporter.config import AddonRules
from exporter.durations import DAY
from exporter.families import Table, age, by_label, gauge
from exporter.inventory import Volume, VolumeBackup, read_volume_backup
from exporter.resources.cadenced import Cadenced, Judged
from exporter.resources.unit import Listing, Reads, read_all
from exporter.resources.volume_schedules import VolumeSchedules
from exporter.resources.volumes import Volumes
from exporter.schedule import overdue_seconds
from exporter.volumes import MAX_STATUSES, VolumeSummary, summarize_volume

if TYPE_CHECKING:
    from exporter.context import AccountLoops

Key = tuple[str, str]  # (project, volume)
Read = tuple[float, list[Any]]  # the listing, as of when its read began


class VolumeRow(NamedTuple):
    summary: VolumeSummary
    rules: AddonRules


def _overdue(row: VolumeRow, now: float) -> float:
    summary, rules = row.summary, row.rules
    return overdue_seconds(
        summary.offsets,
        summary.last_completed,
        summary.oldest_created,
        now=now,
        tolerance=rules.tolerance,
        grace=rules.grace,
    )


VOLUME_HEALTH: Table[VolumeRow] = Table(
    labels=("project", "volume"),
    key=lambda row: (row.summary.project, row.summary.volume),
    families=(
        by_label(
            "northflank_volume_backups",
            "The volume's backups listed, by status (free text in the API: lower case, `_` as "
            f"`-`; past {MAX_STATUSES - 1} statuses the rest are `other`). Cached from the last "
            "read.",
            "status",
            lambda row: row.summary.backups_by_status,
        ),
        gauge(
            "northflank_volume_backup_last_completed_timestamp_seconds",
            "createdAt of the volume's newest backup whose status says it completed (a volume "
            "backup has no completedAt).",
            lambda row, now: row.summary.last_completed,
        ),
        gauge(
            "northflank_volume_backup_last_completed_age_seconds",
            "Seconds since the createdAt of the volume's newest completed backup, as of the "
            "last rendering.",
            lambda row, now: age(row.summary.last_completed, now),
        ),
        gauge(
            "northflank_volume_backup_expected_interval_seconds",
            "Longest gap between two consecutive slots of the volume's schedules.",
            lambda row, now: row.summary.expected_interval,
        ),
        gauge(
            "northflank_volume_backup_overdue_seconds",
            "Seconds past the first schedule slot no completed backup answers, plus the grace; "
            "0 while on schedule.",
            _overdue,
        ),
        gauge(
            "northflank_volume_backup_missed_slots",
            "Schedule slots in the lookback with no backup of any status created near them.",
            lambda row, now: row.summary.missed_slots,
        ),
        gauge(
            "northflank_volume_backup_last_missed_slot_timestamp_seconds",
            "The newest schedule slot in the lookback with no backup created near it; absent "
            "when none.",
            lambda row, now: row.summary.last_missed_slot,
        ),
    ),
)


class VolumeBackups(Cadenced[Volume, Read, VolumeSummary]):
    reads = Reads(
        Listing.VOLUME_BACKUPS, VOLUME_BACKUPS_ENDPOINT, "GetVolumeBackupsEndpoint", "List"
    )
    table = VOLUME_HEALTH

    def __init__(self, loops: AccountLoops, volumes: Volumes, schedules: VolumeSchedules) -> None:
        super().__init__(loops)
        self._volumes = volumes
        self._schedules = schedules

    def wanted(self) -> Mapping[Key, Volume]:
        """Every active volume that declares a schedule."""
        scheduled = {}
        for volume in self._schedules.known():
            if volume.schedules and volume.active:
                scheduled[(volume.project, volume.id)] = volume
        return scheduled

    def spend(self, key: Key) -> Spend:
        """A poll: a volume's listing is read after its slots and when one turns overdue, and
        its overdue gauge is worked out at every rendering from the last read, so a read that
        comes late shows a backup that landed as overdue meanwhile. As background, on 1,000
        addons (bench/coverage.py), those reads waited for resyncs, restores and listings in
        every hour the budget was full."""
        return Spend.POLL

    async def fetch(self, key: Key, subject: Volume) -> Read:
        return self.loops.clock(), await self.loops.client.volume_backups(
            *key, spend=self.spend(key)
        )

    def fold(self, key: Key, subject: Volume, answer: Read, now: float) -> bool:
        now, raw = answer
        backups = read_all(self.loops, raw, self.reads.listing, read_volume_backup)
        summary = summarize_volume(
            subject,
            _unexpired(backups, subject, now),
            now=now,
            rules=self.loops.addons,
            known_since=self._volumes.first_seen.get(key, now),
        )
        judged = Judged(
            offsets=() if summary is None else summary.offsets,
            answered_until=None if summary is None else summary.last_completed,
            oldest_created=None if summary is None else summary.oldest_created,
            last_duration=None,
        )
        self.listings.read(key, summary, judged, now)
        return True

    def rows(self) -> tuple[VolumeRow, ...]:
        rules = self.loops.addons
        return tuple(VolumeRow(summary, rules) for summary in self.listings.summaries())


def _unexpired(backups: list[VolumeBackup], volume: Volume, now: float) -> list[VolumeBackup]:
    """A volume's backups within the longest retention its schedules declare (a listing may
    still show one a little past it; without a retention, all are kept)."""
    days = [s.retention_days for s in volume.schedules or () if s.retention_days is not None]
    if not days:
        return backups
    return [backup for backup in backups if backup.created + max(days) * DAY > now]
