"""A project's volumes: every volume of the account, with its status, and the schedules its
item embeds (`volume_schedules` reads them where the item leaves them out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.api import VOLUMES_ENDPOINT
from exporter.families import Table, info
from exporter.inventory import Project, Volume, read_volume
from exporter.resources.projects import PerProject, Projects
from exporter.resources.unit import Listing, Reads

if TYPE_CHECKING:
    from exporter.context import AccountLoops

VOLUME_INFO: Table[Volume] = Table(
    labels=("project", "volume"),
    key=lambda volume: (volume.project, volume.id),
    families=(
        info(
            "northflank_coverage_volume",
            "Every volume of the account, with its status (always 1).",
            lambda volume: {
                "project_name": volume.project_name,
                "volume_name": volume.name,
                "status": volume.status,
            },
        ),
    ),
)


class Volumes(PerProject[Volume]):
    reads = Reads(Listing.VOLUMES, VOLUMES_ENDPOINT, "ListVolumesEndpoint", "List")
    path = "volumes"
    item_key = None
    table = VOLUME_INFO
    # A new volume without a schedule shows within coverage.schedules_max_age in a project
    # whose volumes had not changed. Addons are listed every round: a new addon must show
    # within an inventory (the Unprotected alert's target).
    paced = True

    def __init__(self, loops: AccountLoops, projects: Projects) -> None:
        super().__init__(loops, projects)
        # when each volume was first listed: from then on its slots are judged, for a volume
        # that lists no backup and tells no creation time
        self.first_seen: dict[tuple[str, str], float] = {}

    def read_item(self, raw: Any, project: Project) -> Volume:
        return read_volume(raw, project)

    def ident(self, item: Volume) -> str:
        return item.id

    def _gather(self, now: float) -> None:
        super()._gather(now)
        for key in self.items:
            self.first_seen.setdefault(key, now)
        for gone in set(self.first_seen) - set(self.items):
            del self.first_seen[gone]

    @property
    def volumes(self) -> dict[tuple[str, str], Volume]:
        """Every volume, by (project, volume)."""
        return self.items
