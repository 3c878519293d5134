"""Named situations (`--scenario NAME`) and what a destination-only view misses in a healthy
account (`--fleet`, and the demo): each on an addon or a volume of its own."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from exporter.simulator.addons import ADDON_KINDS, MANAGED, SCHEDULE_CHOICES, SimAddon
from exporter.simulator.units import HOUR, draws
from exporter.simulator.volumes import SimVolume


def _scenario(behaviour: str, kind: str, schedule: dict[str, Any], keep: int) -> SimAddon:
    version = dict(ADDON_KINDS)[kind]
    return SimAddon(
        project_id="scenarios",
        project_name="Scenarios",
        addon_id=f"{behaviour}-{kind}",
        addon_name=f"{behaviour.replace('-', ' ').capitalize()} {kind}",
        addon_type=kind,
        addon_version=version,
        schedules=(schedule,),
        keep=keep,
        base_size=800_000_000,
        behaviour=behaviour,
    )


def _restored(history: str, kind: str, schedule: dict[str, Any]) -> SimAddon:
    """A healthy addon in the first destination with a restore history of its own."""
    return replace(
        _scenario("restores", kind, schedule, 14),
        addon_id=f"restore-{history}-{kind}",
        addon_name=f"Restore {history} {kind}",
        restores=history,
    )


# Named situations, each on an addon of its own in the first destination (`--scenario NAME`).
SCENARIOS: dict[str, SimAddon] = {
    # stopped being backed up three slots before the simulator started
    "stopped": _scenario("stopped", "postgresql", {"interval": "hourly", "minute": [15]}, 48),
    # the scheduler skips every odd hour's run; manual backups at half past keep it fresh
    "skipped-runs": _scenario("skipped-runs", "mysql", {"interval": "hourly", "minute": [0]}, 48),
    # a backup stuck in progress since five hours before the start
    "stuck": _scenario("stuck", "mongodb", {"interval": "hourly", "minute": [5]}, 48),
    # every backup failed or was aborted
    "never-completed": _scenario(
        "never-completed", "redis", {"interval": "daily", "minute": [0], "hour": [4]}, 10
    ),
    # recent backups fail; the last restorable one expires 40 minutes after the start
    "expiring": _scenario(
        "expiring", "postgresql", {"interval": "daily", "minute": [0], "hour": [1]}, 10
    ),
    # the newest completed backup is a twentieth of the usual size
    "shrunk": _scenario("shrunk", "mysql", {"interval": "daily", "minute": [30], "hour": [3]}, 14),
    # restored in a drill three days ago, and every 30 days before
    "restore-drilled": _restored(
        "drilled", "postgresql", {"interval": "daily", "minute": [20], "hour": [2]}
    ),
    # its newest restore failed
    "restore-failed": _restored(
        "failed", "mysql", {"interval": "daily", "minute": [25], "hour": [2]}
    ),
    # a restore in progress since ten hours before the start
    "restore-stuck": _restored(
        "stuck", "mongodb", {"interval": "daily", "minute": [35], "hour": [2]}
    ),
    # restored every day for 130 days: its restores fill two pages
    "restore-paged": _restored(
        "paged", "redis", {"interval": "daily", "minute": [40], "hour": [2]}
    ),
}


def _elsewhere(
    project: str,
    word: str,
    kind: str,
    schedules: tuple[dict[str, Any], ...],
    keep: int,
    **details: Any,
) -> SimAddon:
    """An addon no destination keeps: by default backed up to managed storage."""
    behaviour = details.get("behaviour", "normal")
    return SimAddon(
        project_id=project,
        project_name=project.title(),
        addon_id=f"{word}-{kind}",
        addon_name=f"{word.replace('-', ' ').capitalize()} {kind}",
        addon_type=kind,
        addon_version=dict(ADDON_KINDS)[kind],
        schedules=schedules,
        keep=keep,
        base_size=300_000_000,
        behaviour=behaviour,
        status=details.get("status", "running"),
        target=details.get("target", MANAGED),
        backup_type=details.get("backup_type", "dump"),
        copies=details.get("copies", ()),
        imported_before=details.get("imported_before"),
    )


# What a destination-only view misses, in a healthy account (`fleet=True`, and the demo).
FLEET_ADDONS = (
    _elsewhere(
        "billing",
        "invoices",
        "postgresql",
        ({"interval": "daily", "minute": [10], "hour": [1]},),
        14,
        imported_before=HOUR,  # newer than its last backup, and no backup of it
    ),
    _elsewhere(
        "identity",
        "tokens",
        "redis",
        ({"interval": "hourly", "minute": [20]},),
        48,
        backup_type="snapshot",
    ),
    _elsewhere(
        "analytics",
        "warehouse",
        "mysql",
        ({"interval": "daily", "minute": [40], "hour": [5]},),
        7,
        backup_type="snapshot",
        copies=("primary-backups",),
    ),
    # paused: reported as paused, never as unprotected
    _elsewhere("storefront", "archive", "mongodb", (), 0, status="paused"),
)


FLEET_VOLUMES = (
    SimVolume(
        "storefront",
        "Storefront",
        "uploads",
        "Uploads",
        ({"interval": "daily", "minute": [0], "hour": [3]},),
    ),
    # its item leaves backupSchedules out: they are read from its backup-schedules
    SimVolume(
        "analytics",
        "Analytics",
        "exports",
        "Exports",
        ({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]},),
        retention_days=30,
        embedded=False,
    ),
)


def managed_fleet(seed: int, count: int) -> tuple[SimAddon, ...]:
    """`count` addons backed up to managed storage only, with the usual mix of schedules."""
    made = []
    for number in range(count):
        draw = draws(seed, "managed", number)
        kind = ADDON_KINDS[int(draw[0] * len(ADDON_KINDS))][0]
        schedules = SCHEDULE_CHOICES[int(draw[1] * len(SCHEDULE_CHOICES))]
        keep = 48 if schedules[0]["interval"] == "hourly" else 14
        made.append(_elsewhere("fleet", f"managed-{number:03d}", kind, schedules, keep))
    return tuple(made)


# Situations only the inventory shows (`--scenario NAME`), in the project "scenarios".
COVERAGE_SCENARIOS: dict[str, SimAddon | SimVolume] = {
    # no backup schedule at all
    "unprotected": _elsewhere("scenarios", "unprotected", "postgresql", (), 0),
    # a daily dump into primary-backups that never arrives there
    "not-arriving": _elsewhere(
        "scenarios",
        "not-arriving",
        "mongodb",
        ({"interval": "daily", "minute": [0], "hour": [2]},),
        10,
        target="primary-backups",
        behaviour="not-arriving",
    ),
    # backed up to managed storage until three slots before the start
    "managed-stopped": _elsewhere(
        "scenarios",
        "managed-stopped",
        "mysql",
        ({"interval": "hourly", "minute": [25]},),
        48,
        behaviour="stopped",
    ),
    # a volume without a backup schedule (its item says nothing, its backup-schedules none)
    "volume-unprotected": SimVolume(
        "scenarios", "Scenarios", "scratch", "Scratch", (), embedded=False
    ),
    # a volume whose hourly snapshots stopped three slots before the start
    "volume-stopped": SimVolume(
        "scenarios",
        "Scenarios",
        "media",
        "Media",
        ({"interval": "hourly", "minute": [35]},),
        retention_days=2,
        behaviour="stopped",
    ),
}
