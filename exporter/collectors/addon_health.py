"""Each addon's backups as one destination (or managed storage, destination
"northflank-managed") lists them: health against its schedules. Two resources give these rows,
a destination's backups and an addon's managed-storage backups; both render through this one
table, so an alert reads them alike."""

from __future__ import annotations

from typing import NamedTuple

from exporter.addons import RECENT_SIZES, AddonSummary
from exporter.config import AddonRules
from exporter.families import CACHED, Family, Kind, Table, age, by_label, gauge, info
from exporter.schedule import last_slot, next_slot, overdue_seconds


class AddonRow(NamedTuple):
    destination: str
    summary: AddonSummary
    rules: AddonRules


def _last_scheduled(row: AddonRow, now: float) -> float | None:
    offsets = row.summary.offsets
    return last_slot(offsets, now) if offsets else None


def _next_scheduled(row: AddonRow, now: float) -> float | None:
    offsets = row.summary.offsets
    return next_slot(offsets, now) if offsets else None


def overdue_of(row: AddonRow, now: float) -> float | None:
    summary, rules = row.summary, row.rules
    if not summary.offsets:
        return None
    return overdue_seconds(
        summary.offsets,
        summary.answered_until,
        summary.oldest_created,
        now=now,
        tolerance=rules.tolerance,
        grace=rules.grace,
    )


def _intervals(row: AddonRow, now: float) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    intervals = sorted({schedule.interval for schedule in row.summary.schedules})
    return [((interval,), {}) for interval in intervals]


def _names(row: AddonRow) -> dict[str, str]:
    summary = row.summary
    return {
        "project_name": summary.project_name,
        "addon_name": summary.addon_name,
        "addon_type": summary.addon_type,
        "addon_version": summary.addon_version,
    }


ADDON_HEALTH: Table[AddonRow] = Table(
    labels=("destination", "project", "addon"),
    key=lambda row: (row.destination, row.summary.project, row.summary.addon),
    families=(
        info("northflank_addon", "Addons whose backups are listed (always 1).", _names),
        by_label(
            "northflank_addon_backups",
            f"The addon's backups, by status. {CACHED}",
            "status",
            lambda row: row.summary.backups_by_status,
        ),
        Family(
            "northflank_addon_backup_schedule",
            "Backup schedules the addon's newest scheduled backup declares (always 1).",
            _intervals,
            labels=("interval",),
            kind=Kind.INFO,
        ),
        gauge(
            "northflank_addon_backup_last_completed_timestamp_seconds",
            f"When the addon's newest completed backup completed. {CACHED}",
            lambda row, now: row.summary.last_completed,
        ),
        gauge(
            "northflank_addon_backup_last_completed_age_seconds",
            "Seconds since the addon's newest completed backup completed, as of the last "
            "rendering (every poll).",
            lambda row, now: age(row.summary.last_completed, now),
        ),
        gauge(
            "northflank_addon_backup_last_completed_size_bytes",
            f"Size of the addon's newest completed backup. {CACHED}",
            lambda row, now: row.summary.last_completed_size,
        ),
        gauge(
            "northflank_addon_backup_completed_size_median_bytes",
            f"Median size of the addon's {RECENT_SIZES} newest completed backups. {CACHED}",
            lambda row, now: row.summary.recent_size_median,
        ),
        gauge(
            "northflank_addon_backup_last_completed_duration_seconds",
            f"completedAt minus createdAt of the addon's newest completed backup. {CACHED}",
            lambda row, now: row.summary.last_completed_duration,
        ),
        gauge(
            "northflank_addon_backup_last_failure_timestamp_seconds",
            f"When the addon's newest failed or aborted backup ended (or began). {CACHED}",
            lambda row, now: row.summary.last_failure,
        ),
        gauge(
            "northflank_addon_backup_consecutive_failures",
            f"Failed or aborted backups created since the addon's newest completed one. {CACHED}",
            lambda row, now: row.summary.consecutive_failures,
        ),
        gauge(
            "northflank_addon_backup_running_age_seconds",
            "Age of the addon's oldest backup still scheduled, in progress or aborting, "
            "as of the last rendering (every poll).",
            lambda row, now: age(row.summary.oldest_running_created, now),
        ),
        gauge(
            "northflank_addon_backup_never_completed",
            f"1 when the addon has backups but none of them completed. {CACHED}",
            lambda row, now: 1.0 if row.summary.never_completed else 0.0,
        ),
        gauge(
            "northflank_addon_backup_restorable_until_timestamp_seconds",
            f"Latest expiredBy among the addon's completed backups. {CACHED}",
            lambda row, now: row.summary.restorable_until,
        ),
        gauge(
            "northflank_addon_backups_expiring",
            f"The addon's backups not yet expired that expire within the warning window. {CACHED}",
            lambda row, now: row.summary.expiring,
        ),
        gauge(
            "northflank_addon_backup_expected_interval_seconds",
            f"Longest gap between two consecutive slots of the addon's schedules. {CACHED}",
            lambda row, now: row.summary.expected_interval,
        ),
        gauge(
            "northflank_addon_backup_last_scheduled_timestamp_seconds",
            "The latest schedule slot at or before the last rendering (every poll).",
            _last_scheduled,
        ),
        gauge(
            "northflank_addon_backup_next_scheduled_timestamp_seconds",
            "The first schedule slot after the last rendering (every poll).",
            _next_scheduled,
        ),
        gauge(
            "northflank_addon_backup_overdue_seconds",
            "Seconds past the first schedule slot no completed backup answers, plus the grace; "
            "0 while on schedule.",
            overdue_of,
        ),
        gauge(
            "northflank_addon_backup_missed_slots",
            "Schedule slots in the lookback with no backup of any status created near them. "
            f"{CACHED}",
            lambda row, now: row.summary.missed_slots,
        ),
        gauge(
            "northflank_addon_backup_last_missed_slot_timestamp_seconds",
            "The newest schedule slot in the lookback with no backup of any status created near "
            f"it; absent when none. {CACHED}",
            lambda row, now: row.summary.last_missed_slot,
        ),
    ),
)
