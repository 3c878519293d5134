"""Reading projects, addons, volumes and schedules: where each schedule sends its backups, and
one-line reasons naming the field that cannot be used."""

from __future__ import annotations

import pytest

from exporter.inventory import (
    MANAGED_STORAGE,
    InvalidItem,
    Project,
    read_addon,
    read_addon_schedule,
    read_project,
    read_volume,
)
from exporter.model import Schedule

PROJECT = Project("billing", "Billing", "created")
DAILY = {"interval": "daily", "minute": [30], "hour": [2]}


def schedule(**fields):
    return {"id": "s1", "backupType": "dump", "scheduling": DAILY, **fields}


def test_a_dump_with_a_custom_destination_goes_there():
    read = read_addon_schedule(schedule(customDestinationId="primary-backups"))
    assert read.destination == "primary-backups"
    assert read.destinations == (("primary-backups", "primary"),)
    assert read.schedule == Schedule("daily", (30,), (2,))


def test_without_a_destination_backups_stay_in_managed_storage_and_copy_to_each_additional():
    read = read_addon_schedule(
        schedule(
            backupType="snapshot",
            additionalDestinations=[{"destinationId": "b"}, {"destinationId": "a"}],
            createdAt="2026-11-01T00:00:00.000Z",
        )
    )
    assert read.destinations == (
        (MANAGED_STORAGE, "primary"),
        ("a", "additional"),
        ("b", "additional"),
    )
    assert read.backup_type == "snapshot"
    assert read.created == 1793491200.0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"id": None}, "id: missing"),
        ({"scheduling": {"interval": "monthly", "minute": [0]}}, "scheduling.interval"),
        ({"scheduling": {"interval": "daily", "minute": [0]}}, "scheduling: schedules: daily"),
        ({"customDestinationId": 5}, "customDestinationId"),
        ({"additionalDestinations": [{"id": "x"}]}, "additionalDestinations"),
        ({"additionalDestinations": "x"}, "additionalDestinations: not a list"),
    ],
)
def test_an_unusable_schedule_names_its_field(fields, reason):
    with pytest.raises(InvalidItem, match=reason):
        read_addon_schedule(schedule(**fields))


def test_addons_and_projects_keep_what_is_optional_empty():
    addon = read_addon({"id": "a1", "spec": {"type": "redis"}, "status": "paused"}, PROJECT)
    assert (addon.project, addon.project_name, addon.name, addon.type) == (
        "billing",
        "Billing",
        "",
        "redis",
    )
    assert not addon.active
    assert read_addon({"id": "a2", "status": "running"}, PROJECT).active
    assert read_project({"id": "p", "lifecycleStatus": "created"}) == Project("p", "", "created")
    with pytest.raises(InvalidItem, match="project: not an object"):
        read_project(["p"])
    with pytest.raises(InvalidItem, match="id: missing"):
        read_addon({"name": "x"}, PROJECT)


def test_a_volume_names_its_embedded_schedules_by_place_and_keeps_them_in_managed_storage():
    volume = read_volume(
        {
            "id": "uploads",
            "name": "Uploads",
            "status": "running",
            "backupSchedules": [{"retentionTime": 7, "scheduling": DAILY}],
        },
        PROJECT,
    )
    assert [(s.id, s.destination, s.schedule.interval) for s in volume.schedules] == [
        ("0", MANAGED_STORAGE, "daily")
    ]
    # left out, they are unknown (read from the volume's backup-schedules), never "none"
    assert read_volume({"id": "v"}, PROJECT).schedules is None
    assert read_volume({"id": "v", "backupSchedules": []}, PROJECT).schedules == ()
    with pytest.raises(InvalidItem, match="backupSchedules entry: not an object"):
        read_volume({"id": "v", "backupSchedules": [3]}, PROJECT)


@pytest.mark.parametrize("ident", ["x/y", ".", "..", "", "a" * 300, "tab\there"])
def test_an_id_that_cannot_name_one_thing_is_refused_where_it_is_read(ident):
    """`x/y` + `z` and `x` + `y/z` would be one addon's series; `.` and `..` would walk a
    request up the path."""
    with pytest.raises(InvalidItem, match="not an id"):
        read_project({"id": ident, "name": "P"})
    with pytest.raises(InvalidItem, match="not an id"):
        read_addon({"id": ident, "name": "A"}, PROJECT)
    with pytest.raises(InvalidItem, match="not an id"):
        read_volume({"id": ident, "name": "V"}, PROJECT)
