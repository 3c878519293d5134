"""The resources coverage reads, one unit a module (`unit.py` says what a unit is).

A new resource is one new module and one line below: where it stands says when a round reads
it, after the units whose state it builds on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exporter.resources.addon_schedules import AddonSchedules
from exporter.resources.addons import Addons
from exporter.resources.managed_backups import ManagedBackups
from exporter.resources.projects import Projects
from exporter.resources.restores import Restores
from exporter.resources.unit import Unit
from exporter.resources.volume_backups import VolumeBackups
from exporter.resources.volume_schedules import VolumeSchedules
from exporter.resources.volumes import Volumes

if TYPE_CHECKING:
    from exporter.context import AccountLoops

Units = tuple[Unit[Any, Any, Any], ...]


def build_units(loops: AccountLoops, listed: Callable[[], set[tuple[str, str]]]) -> Units:
    """Every unit of one account, in the order a round walks them. `listed`: the addons a
    destination lists with scheduled backups (protected, so read last)."""
    projects = Projects(loops)
    addons = Addons(loops, projects)
    volumes = Volumes(loops, projects)
    addon_schedules = AddonSchedules(loops, addons, listed)
    managed_backups = ManagedBackups(loops, addons, addon_schedules)
    volume_schedules = VolumeSchedules(loops, volumes)
    volume_backups = VolumeBackups(loops, volumes, volume_schedules)
    restores = Restores(loops, addons)
    return (
        projects,
        addons,
        volumes,
        addon_schedules,
        managed_backups,
        volume_schedules,
        volume_backups,
        restores,
    )
