"""Pure per-addon aggregation: one addon's backups folded into an AddonSummary.

Nothing here does I/O or reads a clock. Where two backups tie (same creation or completion
time), the first in listing order wins.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from exporter.config import AddonRules
from exporter.model import FAILED_STATUSES, RUNNING_STATUSES, Backup, Schedule, by_status
from exporter.schedule import WeekOffsets, longest_gap, missed_slot_times, week_offsets

# How many of the newest completed backups the median size is taken over.
RECENT_SIZES = 10


@dataclass(frozen=True)
class ReadSchedules:
    """An addon's schedules that send backups to one destination, as its backup-schedules
    said when read (`rescheduled.py`): newer than its backups when it was rescheduled."""

    schedules: tuple[Schedule, ...]
    read_at: float
    # when they took effect: the newest updatedAt among them, never later than when they were
    # first read (rescheduled._changed_at); None: unknown, and then the read itself stands in
    changed_at: float | None


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
    consecutive_failures: int
    oldest_running_created: float | None
    restorable_until: float | None
    expiring: int
    oldest_created: float
    schedules: tuple[Schedule, ...]
    offsets: WeekOffsets
    expected_interval: float | None
    missed_slots: int | None
    last_missed_slot: float | None
    # when the schedules it is judged by took effect, where they are newer than its backups
    schedules_since: float | None = None

    @property
    def answered_until(self) -> float | None:
        """Slots up to here need no backup: the newest completed backup's creation, or when the
        schedules it is judged by took effect, whichever is later (None: neither)."""
        if self.schedules_since is None:
            return self.newest_completed_created
        if self.newest_completed_created is None:
            return self.schedules_since
        return max(self.newest_completed_created, self.schedules_since)

    @property
    def never_completed(self) -> bool:
        return self.last_completed is None


def summarize_addon(
    project: str,
    addon: str,
    backups: list[Backup],
    *,
    now: float,
    warn_until: float,
    rules: AddonRules,
    declared: tuple[Schedule, ...] | None = None,
    read: ReadSchedules | None = None,
) -> AddonSummary:
    """Fold one addon's backups (at least one, in listing order, none expired). `declared` are
    its schedules when known apart from the backups (its backup-schedules, for managed
    storage, whose listing shows none); else those its newest scheduled backup lists, unless
    `read` is newer and says otherwise (the addon was rescheduled since). Imports of outside
    data count by status and in nothing else: they are not backups of the addon."""
    newest = max(backups, key=lambda backup: backup.created)  # the first of a tie
    counted = backups
    backups = [backup for backup in counted if not backup.imported] or counted[:0]
    completed = [backup for backup in backups if backup.status == "completed"]
    schedules, rescheduled = _judged_by(backups, declared, read)
    offsets = week_offsets(schedules)
    created = sorted(backup.created for backup in backups)
    oldest = created[0] if created else newest.created  # an addon listed with imports only
    missed = None
    if offsets:
        since = _judged_since(backups, schedules, declared, rescheduled, oldest)
        missed = missed_slot_times(
            offsets, created, since, now=now, tolerance=rules.tolerance, lookback=rules.lookback
        )
    last = _last_completed(completed)
    newest_completed_created = max((b.created for b in completed), default=None)
    return AddonSummary(
        project=project,
        addon=addon,
        project_name=newest.project_name or "",
        addon_name=newest.addon_name or "",
        addon_type=newest.addon_type or "",
        addon_version=newest.addon_version or "",
        backups_by_status=by_status(Counter(backup.status for backup in counted)),
        last_completed=None if last is None else last.completed,
        last_completed_size=None if last is None else last.size,
        recent_size_median=_recent_size_median(completed),
        last_completed_duration=_duration(last),
        newest_completed_created=newest_completed_created,
        last_failure=_last_failure(backups),
        consecutive_failures=_failures_since(backups, newest_completed_created),
        oldest_running_created=_oldest_running(backups),
        restorable_until=max((b.expires for b in completed if b.expires is not None), default=None),
        expiring=sum(1 for b in backups if b.expires is not None and b.expires <= warn_until),
        oldest_created=oldest,
        schedules=schedules,
        offsets=offsets,
        expected_interval=longest_gap(offsets) if offsets else None,
        missed_slots=None if missed is None else len(missed),
        last_missed_slot=missed[-1] if missed else None,
        schedules_since=rescheduled,
    )


def _oldest_running(backups: list[Backup]) -> float | None:
    return min((b.created for b in backups if b.status in RUNNING_STATUSES), default=None)


def _judged_since(
    backups: list[Backup],
    schedules: tuple[Schedule, ...],
    declared: tuple[Schedule, ...] | None,
    rescheduled: float | None,
    oldest: float,
) -> float:
    """From when the addon's slots are judged: when it was rescheduled, else from when its
    schedules were first declared; never before its oldest listed backup."""
    if rescheduled is not None:
        since = rescheduled
    elif declared is not None:
        since = oldest
    else:
        since = _declared_since(backups, schedules)
    return max(oldest, since)


def _judged_by(
    backups: list[Backup], declared: tuple[Schedule, ...] | None, read: ReadSchedules | None
) -> tuple[tuple[Schedule, ...], float | None]:
    """The schedules the addon is judged by, and when they took effect where they are newer
    than its backups (else None)."""
    if declared is not None:
        return declared, None
    declaring = _newest_scheduled(backups)
    if declaring is None:
        return (), None
    if read is not None:
        rescheduled = _rescheduled(declaring, read)
        if rescheduled is not None:
            return read.schedules, rescheduled
    return declaring.schedules, None


def _rescheduled(declaring: Backup, read: ReadSchedules) -> float | None:
    """When the addon was rescheduled, if `read` is newer than its newest scheduled backup
    (`declaring`) and differs from what that backup lists; else None (the backups tell the
    schedule in effect). From the schedules' updatedAt, and never before that backup; without
    one, from the read."""
    if read.read_at <= declaring.created or set(read.schedules) == set(declaring.schedules):
        return None
    changed = read.read_at if read.changed_at is None else read.changed_at
    return max(changed, declaring.created)


def _newest_scheduled(backups: list[Backup]) -> Backup | None:
    """The newest backup that lists schedules: its schedules are those in effect, as far as the
    backups tell (a backup taken by hand lists none, and a schedule change shows first on the
    backups taken after it)."""
    declaring: Backup | None = None
    for backup in backups:
        if backup.schedules and (declaring is None or backup.created > declaring.created):
            declaring = backup
    return declaring


def _declared_since(backups: list[Backup], schedules: tuple[Schedule, ...]) -> float:
    """When the current schedules were first declared: the oldest backup of the newest
    unbroken run of scheduled backups that list them. Slots of a schedule before it took
    effect were never meant to be run, so they are not missed."""
    since = None
    for backup in sorted(backups, key=lambda b: b.created, reverse=True):
        if not backup.schedules:
            continue  # taken by hand: says nothing of the schedule
        if backup.schedules != schedules:
            break
        since = backup.created
    return since if since is not None else min(backup.created for backup in backups)


def _failures_since(backups: list[Backup], completed_created: float | None) -> int:
    """Failed or aborted backups created after the newest completed one: a run of failures,
    where one alone (a blip the next run answers) is 1."""
    return sum(
        1
        for backup in backups
        if backup.status in FAILED_STATUSES
        and (completed_created is None or backup.created > completed_created)
    )


def _last_completed(completed: list[Backup]) -> Backup | None:
    """The completed backup that completed last (a long run may finish after a newer one)."""
    last: Backup | None = None
    last_at: float | None = None
    for backup in completed:
        at = backup.completed
        if at is not None and (last_at is None or at > last_at):
            last, last_at = backup, at
    return last


def _duration(backup: Backup | None) -> float | None:
    if backup is None or backup.completed is None:
        return None
    return max(0.0, backup.completed - backup.created)


def _recent_size_median(completed: list[Backup]) -> float | None:
    """The median size of the RECENT_SIZES backups that completed last."""
    by_completion = sorted((b.completed, b.size) for b in completed if b.completed is not None)
    if not by_completion:
        return None
    sizes = sorted(size for _, size in by_completion[-RECENT_SIZES:])
    middle = len(sizes) // 2
    if len(sizes) % 2:
        return sizes[middle]
    return (sizes[middle - 1] + sizes[middle]) / 2


def _last_failure(backups: list[Backup]) -> float | None:
    """When the newest failure ended (or began, when it never ended)."""
    ends = [
        backup.created if backup.completed is None else backup.completed
        for backup in backups
        if backup.status in FAILED_STATUSES
    ]
    return max(ends, default=None)
