"""Volume backup health: the fold on hand-built backups with hand-worked results, and the
exporter on the simulator's volumes (one whose item leaves its schedules out, one stopped)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.config import AddonRules
from exporter.inventory import (
    MANAGED_STORAGE,
    CoverageSchedule,
    InvalidItem,
    Volume,
    VolumeBackup,
    read_volume_backup,
    read_volume_schedule,
)
from exporter.model import Schedule
from exporter.runtime import Exporter
from exporter.volumes import MAX_STATUSES, summarize_volume
from tests.conftest import config_for, parse_samples, pick, poll_once
from tests.reference import epoch

HOUR = 3600.0
DAY = 86400.0
# Monday 2026-11-30 00:00 UTC
MONDAY = 1_795_996_800.0
DAILY_3AM = CoverageSchedule("s", Schedule("daily", (0,), (3,)), "snapshot", MANAGED_STORAGE)


def volume(schedules=(DAILY_3AM,), created=MONDAY - 30 * DAY):
    return Volume("p", "P", "v", "V", "BOUND", schedules, created)


def fold(backups, now, schedules=(DAILY_3AM,), known_since=0.0):
    return summarize_volume(
        volume(schedules), backups, now=now, rules=AddonRules(), known_since=known_since
    )


def test_the_newest_completed_backup_and_counts_by_status():
    backups = [
        VolumeBackup("a", "completed", MONDAY - DAY + 3 * HOUR + 10),
        VolumeBackup("b", "completed", MONDAY + 3 * HOUR + 12),
        VolumeBackup("c", "failed", MONDAY + DAY + 3 * HOUR + 9),
        VolumeBackup("d", "in-progress", MONDAY + 2 * DAY + 3 * HOUR + 5),
    ]
    summary = fold(backups, now=MONDAY + 2 * DAY + 3 * HOUR + 60)
    assert summary.backups_by_status == (("completed", 2), ("failed", 1), ("in-progress", 1))
    assert summary.last_completed == MONDAY + 3 * HOUR + 12  # a failure answers nothing
    assert summary.expected_interval == DAY
    assert summary.missed_slots == 0
    assert summary.oldest_created == MONDAY - DAY + 3 * HOUR + 10


def test_missed_slots_count_slots_with_no_backup_of_any_status():
    backups = [VolumeBackup("a", "completed", MONDAY - 2 * DAY + 3 * HOUR + 10)]
    summary = fold(backups, now=MONDAY + 12 * HOUR)
    # Saturday's backup; Sunday's and Monday's 03:00 slots passed with none
    assert summary.missed_slots == 2
    assert summary.last_missed_slot == MONDAY + 3 * HOUR


def test_a_volume_with_no_backup_is_judged_from_when_it_was_scheduled():
    scheduled = CoverageSchedule(
        "s", DAILY_3AM.schedule, "snapshot", MANAGED_STORAGE, created=MONDAY - DAY
    )
    summary = fold([], now=MONDAY + 12 * HOUR, schedules=(scheduled,))
    assert summary.last_completed is None
    assert summary.oldest_created == MONDAY - DAY  # later than the volume's own creation
    assert (summary.missed_slots, summary.last_missed_slot) == (2, MONDAY + 3 * HOUR)
    unknown = Volume("p", "P", "v", "V", "BOUND", (DAILY_3AM,), None)
    alone = summarize_volume(
        unknown, [], now=MONDAY + 12 * HOUR, rules=AddonRules(), known_since=MONDAY + HOUR
    )
    assert alone.oldest_created == MONDAY + HOUR
    assert alone.missed_slots == 1


def test_an_unscheduled_volume_has_no_health_and_free_text_statuses_stay_bounded():
    assert fold([], now=MONDAY, schedules=()) is None
    many = [VolumeBackup(str(n), f"state-{n:02d}", MONDAY - n) for n in range(MAX_STATUSES + 5)]
    shown = dict(fold(many, now=MONDAY).backups_by_status)
    assert len(shown) == MAX_STATUSES
    assert shown["other"] == 6
    assert sum(shown.values()) == len(many)


def test_a_volume_backup_is_read_with_its_status_in_one_case_and_no_completedat():
    read = read_volume_backup(
        {"id": "b", "name": "n", "status": "IN_PROGRESS", "createdAt": "2026-11-30T03:00:10Z"}
    )
    assert read == VolumeBackup("b", "in-progress", MONDAY + 3 * HOUR + 10)
    assert not read.completed
    assert read_volume_backup(
        {"id": "b", "name": "n", "status": "Completed", "createdAt": "2026-11-30T03:00:10Z"}
    ).completed
    with pytest.raises(InvalidItem, match="createdAt"):
        read_volume_backup({"id": "b", "name": "n", "status": "COMPLETED"})
    with pytest.raises(InvalidItem, match="status"):
        read_volume_backup({"id": "b", "name": "n", "createdAt": "2026-11-30T03:00:10Z"})
    schedule = read_volume_schedule(
        {
            "id": "x",
            "createdAt": "2026-11-01T00:00:00Z",
            "updatedAt": "2026-11-01T00:00:00Z",
            "backupType": "snapshot",
            "scheduling": {"interval": "daily", "minute": [0], "hour": [3]},
            "retentionTime": 7,
        }
    )
    assert (schedule.id, schedule.retention_days, schedule.destination) == (
        "x",
        7,
        MANAGED_STORAGE,
    )


@pytest.fixture
def volumes_simulator(start_simulator):
    return start_simulator(
        fleet=True, scenarios=("volume-stopped", "volume-unprotected"), destinations=1
    )


def test_volumes_are_read_as_the_clients_declare_them(volumes_simulator, clock):
    exporter = Exporter(config_for(volumes_simulator, coverage=True), clock=clock)
    assert poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_coverage_up") == 1
    read = (("storefront", "uploads"), ("analytics", "exports"), ("scenarios", "media"))
    for project, ident in read:
        listed = [
            b.backup for b in volumes_simulator.world.volume_backups(project, ident, clock.now)
        ]
        completed = [b for b in listed if b["status"] == "COMPLETED"]
        labels = {"project": project, "volume": ident}
        assert pick(samples, "northflank_volume_backups", **labels, status="completed") == len(
            completed
        )
        newest = max(epoch(b["createdAt"]) for b in completed)
        last = pick(samples, "northflank_volume_backup_last_completed_timestamp_seconds", **labels)
        assert last == pytest.approx(newest)
    healthy = {"project": "storefront", "volume": "uploads"}
    assert pick(samples, "northflank_volume_backup_overdue_seconds", **healthy) == 0
    assert pick(samples, "northflank_volume_backup_missed_slots", **healthy) == 0
    # exports leaves its schedules out of its item: read from its backup-schedules
    exports = {"project": "analytics", "volume": "exports"}
    assert pick(samples, "northflank_volume_backup_expected_interval_seconds", **exports) == 7 * DAY
    assert any("/volumes/exports/backup-schedules" in r.path for r in volumes_simulator.requests)
    # media's hourly snapshots stopped three slots before the start
    media = {"project": "scenarios", "volume": "media"}
    assert pick(samples, "northflank_volume_backup_missed_slots", **media) == 3
    assert pick(samples, "northflank_volume_backup_overdue_seconds", **media) > 0
    # scratch: no schedules key on its item, none at its backup-schedules: unprotected
    scratch = {"project": "scenarios", "volume": "scratch"}
    assert pick(samples, "northflank_coverage_volume_unprotected", **scratch) == 1
    assert pick(samples, "northflank_volume_backup_missed_slots", **scratch) is None


def test_a_project_whose_volumes_do_not_change_is_listed_less_often(volumes_simulator, clock):
    """Every round, then every other, every fourth, up to coverage.schedules_max_age (6 rounds
    of the 1h inventory); its addons every round. A volume new between rounds 9 and 10 is seen
    at the project's next read, and brings it back to every round."""
    exporter = Exporter(config_for(volumes_simulator, coverage=True), clock=clock)
    project = volumes_simulator.world.volumes[0].project_id
    read: dict[str, list[int]] = {"volumes": [], "addons": []}
    for round_number in range(1, 16):
        if round_number == 10:
            world = volumes_simulator.world
            new = replace(world.volumes[0], volume_id="fresh", name="Fresh")
            volumes_simulator.world = replace(world, volumes=(*world.volumes, new))
        before = len(volumes_simulator.requests)
        poll_once(exporter)
        paths = {r.path.partition("?")[0] for r in volumes_simulator.requests[before:]}
        for listing, rounds in read.items():
            if f"/v1/projects/{project}/{listing}" in paths:
                rounds.append(round_number)
        clock.now += HOUR
    assert read == {"volumes": [1, 2, 4, 8, 14, 15], "addons": list(range(1, 16))}
    samples = parse_samples(exporter.exposition().decode())
    assert any(
        name == "northflank_coverage_volume_info" and ("volume", "fresh") in labels
        for name, labels in samples
    )
