"""The fleet as the simulator's routes ask for it (the simulator's `Served`), at the
simulator's clock: the backtest's exporter reads it through the real API client."""

from __future__ import annotations

from typing import Any

from exporter.simulator.data import SimDestination
from exporter.simulator.runs import Listed
from monitoring.fleet import Fleet, FleetAddon, FleetVolume
from monitoring.fleet_restores import restore_objects


class FleetAt:
    """The fleet as the simulator's inventory routes ask for it, at the simulator's clock."""

    def __init__(self, fleet: Fleet, clock: Any) -> None:
        self.fleet = fleet
        self.clock = clock
        self.seed = fleet.seed
        self.anchor = fleet.anchor
        self.destinations = fleet.destinations
        self.deletion_lag = 0.0
        self.elsewhere = ()
        self.volumes = fleet.volumes

    def destination(self, ident: str) -> SimDestination | None:
        return self.fleet.destination(ident)

    def backups(self, destination: SimDestination, now: float) -> list[Listed]:
        return self.fleet.backups(destination, now)

    def projects(self) -> list[dict[str, Any]]:
        return self.fleet.projects()

    def addons(self, project: str, now: float) -> list[dict[str, Any]]:
        return [
            {
                "id": addon.ident,
                "name": addon.ident.replace("-", " ").capitalize(),
                "spec": {"type": addon.kind},
                "status": self._status(addon, now),
                "tags": [],
            }
            for addon in self.fleet.addons_of(project, now)
        ]

    def _status(self, addon: FleetAddon, now: float) -> str:
        """`restore` while one of the addon's restores is in progress, `backup` while its
        newest backup runs, else `running`."""
        restores = restore_objects(self.seed, addon, now)
        if any(r["status"] == "in-progress" for r in restores):
            return "restore"
        return "backup" if self.fleet.backing_up(addon, now) else "running"

    def addon_schedules(self, project: str, ident: str) -> list[dict[str, Any]]:
        return self.fleet.addon_schedules_at(project, ident, self.clock())

    def addon_backups(self, project: str, ident: str, now: float) -> list[Listed]:
        return []  # every schedule here sends to a custom destination

    def volumes_of(self, project: str) -> list[dict[str, Any]]:
        return [v.shown.api_object(self.anchor) for v in self.fleet.volumes if v.project == project]

    def volume(self, project: str, ident: str) -> FleetVolume | None:
        for volume in self.fleet.volumes:
            if (volume.project, volume.ident) == (project, ident):
                return volume
        return None

    def volume_schedules(self, project: str, ident: str) -> list[dict[str, Any]]:
        volume = self.volume(project, ident)
        return [] if volume is None else volume.shown.schedule_objects(self.anchor)

    def addon_restores(self, project: str, ident: str, now: float) -> list[dict[str, Any]]:
        addon = next((a for a in self.fleet.addons_of(project, now) if a.ident == ident), None)
        return [] if addon is None else restore_objects(self.seed, addon, now)

    def volume_backups(self, project: str, ident: str, now: float) -> list[Listed]:
        volume = self.volume(project, ident)
        return [] if volume is None else volume.backups(self.seed, self.anchor, now)
