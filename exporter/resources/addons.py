"""A project's addons: every database of the account, with its type and status."""

from __future__ import annotations

from typing import Any

from exporter.api import ADDONS_ENDPOINT
from exporter.budget import Spend
from exporter.families import Table, info
from exporter.inventory import Addon, Project, read_addon
from exporter.resources.projects import PerProject
from exporter.resources.unit import Listing, Reads

ADDON_INFO: Table[Addon] = Table(
    labels=("project", "addon"),
    key=lambda addon: (addon.project, addon.id),
    families=(
        info(
            "northflank_coverage_addon",
            "Every addon of the account, with its type and status (always 1).",
            lambda addon: {
                "project_name": addon.project_name,
                "addon_name": addon.name,
                "addon_type": addon.type,
                "status": addon.status,
            },
        ),
    ),
)


class Addons(PerProject[Addon]):
    reads = Reads(Listing.ADDONS, ADDONS_ENDPOINT, "ListAddonsEndpoint", "ListAddonsResponse")
    path = "addons"
    item_key = "addons"
    table = ADDON_INFO

    def read_item(self, raw: Any, project: Project) -> Addon:
        return read_addon(raw, project)

    def ident(self, item: Addon) -> str:
        return item.id

    def spend(self, key: str) -> Spend:
        return Spend.DISCOVERY  # an addon must be listed before it can be found unprotected

    @property
    def addons(self) -> dict[tuple[str, str], Addon]:
        """Every addon, by (project, addon)."""
        return self.items
