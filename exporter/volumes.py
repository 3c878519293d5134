"""Pure per-volume aggregation: one volume's backups folded into a VolumeSummary.

A volume backup has a free-text status and no completedAt (`inventory.VolumeBackup`): the
newest backup whose status means it can be restored stands for the volume's newest backup, at
its createdAt. Slots, overdue and missed runs are judged as for addons (`schedule.py`), against
the volume's declared schedules. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from exporter.config import AddonRules
from exporter.inventory import Volume, VolumeBackup
from exporter.schedule import WeekOffsets, longest_gap, missed_slot_times, week_offsets

# Distinct statuses published per volume; the rest are counted under "other" (free text must
# not grow the series without bound).
MAX_STATUSES = 12


@dataclass(frozen=True)
class VolumeSummary:
    project: str
    volume: str
    project_name: str
    volume_name: str
    backups_by_status: tuple[tuple[str, int], ...]
    last_completed: float | None  # createdAt of the newest backup that can be restored
    oldest_created: float  # of its listed backups, or since when it was scheduled
    offsets: WeekOffsets
    expected_interval: float | None
    missed_slots: int | None
    last_missed_slot: float | None


def summarize_volume(
    volume: Volume,
    backups: list[VolumeBackup],
    *,
    now: float,
    rules: AddonRules,
    known_since: float,
) -> VolumeSummary | None:
    """Fold the volume's listed backups against its schedules; None when it declares none
    (an unprotected volume has coverage's series, not health). `known_since`: when the
    exporter first saw the volume, for one that lists no backup and tells no creation time."""
    schedules = tuple(declared.schedule for declared in volume.schedules or ())
    offsets = week_offsets(schedules)
    if not offsets:
        return None
    created = sorted(backup.created for backup in backups)
    since = _scheduled_since(volume, created, known_since)
    missed = missed_slot_times(
        offsets,
        created,
        since,
        now=now,
        tolerance=rules.tolerance,
        lookback=rules.lookback,
    )
    completed = [backup.created for backup in backups if backup.completed]
    return VolumeSummary(
        project=volume.project,
        volume=volume.id,
        project_name=volume.project_name,
        volume_name=volume.name,
        backups_by_status=_by_status(backups),
        last_completed=max(completed, default=None),
        oldest_created=since,
        offsets=offsets,
        expected_interval=longest_gap(offsets),
        missed_slots=len(missed),
        last_missed_slot=missed[-1] if missed else None,
    )


def _scheduled_since(volume: Volume, created: list[float], known_since: float) -> float:
    """From when its slots are judged: its oldest listed backup; with none, the latest of when
    the volume and its schedules were created; failing both, when the exporter first saw it."""
    if created:
        return created[0]
    moments = [s.created for s in volume.schedules or () if s.created is not None]
    if volume.created is not None:
        moments.append(volume.created)
    return max(moments) if moments else known_since


def _by_status(backups: list[VolumeBackup]) -> tuple[tuple[str, int], ...]:
    counts = Counter(backup.status for backup in backups)
    kept = sorted(counts, key=lambda status: (-counts[status], status))[: MAX_STATUSES - 1]
    other = sum(number for status, number in counts.items() if status not in kept)
    shown = [(status, counts[status]) for status in sorted(kept)]
    if other:
        shown.append(("other", other))
    return tuple(shown)
