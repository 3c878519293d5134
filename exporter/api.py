"""The API's vocabulary, with no HTTP in it: each endpoint the exporter reads, the permission
the official clients say it needs, and the error a request that gave no usable answer raises.

The resource units (`exporter/resources/`) and the collector import this, not `client.py`, so
that rendering loads no HTTP client.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from exporter.backups import Item

PER_PAGE = 100
DESTINATIONS_ENDPOINT = "/v1/backup-destinations"
DESTINATION_ENDPOINT = "/v1/backup-destinations/{backupDestinationId}"
BACKUPS_ENDPOINT = "/v1/backup-destinations/{backupDestinationId}/backups"
PROJECTS_ENDPOINT = "/v1/projects"
ADDONS_ENDPOINT = "/v1/projects/{projectId}/addons"
VOLUMES_ENDPOINT = "/v1/projects/{projectId}/volumes"
ADDON_SCHEDULES_ENDPOINT = "/v1/projects/{projectId}/addons/{addonId}/backup-schedules"
ADDON_BACKUPS_ENDPOINT = "/v1/projects/{projectId}/addons/{addonId}/backups"
VOLUME_SCHEDULES_ENDPOINT = "/v1/projects/{projectId}/volumes/{volumeId}/backup-schedules"
VOLUME_BACKUPS_ENDPOINT = "/v1/projects/{projectId}/volumes/{volumeId}/backups"
ADDON_RESTORES_ENDPOINT = "/v1/projects/{projectId}/addons/{addonId}/restores"
# The permission each endpoint needs: the official clients' `required_permissions`, word for
# word (tests/test_contract.py holds this table to them). Logs and the README quote it.
PERMISSIONS = {
    DESTINATIONS_ENDPOINT: "Account > Platform > BackupDestinations > Read",
    DESTINATION_ENDPOINT: "Account > Platform > BackupDestinations > Read",
    BACKUPS_ENDPOINT: "Account > Platform > BackupDestinations > Read",
    PROJECTS_ENDPOINT: "Project > Projects > Manage > Read",
    ADDONS_ENDPOINT: "Project > Addons > General > Read",
    VOLUMES_ENDPOINT: "Project > Volumes > General > Read",
    ADDON_SCHEDULES_ENDPOINT: "Project > Addons > General > Read",
    ADDON_BACKUPS_ENDPOINT: "Project > Addons > General > Read",
    VOLUME_SCHEDULES_ENDPOINT: "Project > Volumes > Backups > Read",
    VOLUME_BACKUPS_ENDPOINT: "Project > Volumes > Backups > Read",
    ADDON_RESTORES_ENDPOINT: "Project > Addons > General > Read",
}
BUDGET = "budget"  # the code of a request the budget did not allow (and waiting was not)
# An inventory listing (projects, a project's addons or volumes, a volume's backups) is read
# whole into memory: past this many items it is cut, as a failure of that listing with one
# line (docs/coverage.md, "Limits"). 100 pages of 100 items.
INVENTORY_MAX_ITEMS = 10_000
TOO_LARGE = "too_large"
# An addon's restores: a daily drill for five years.
RESTORES_MAX_ITEMS = 2_000
# An addon's backups in managed storage: hourly for a year is 8,760.
MANAGED_BACKUPS_MAX_ITEMS = 10_000
TOO_MANY_PAGES = "too_many_pages"
# A walk cut as endless: more than this many empty pages in a row, each pointing to another
# (every listing), or this many pages past what it was expected to take (sync.page_cap).
PAGE_CAP_SLACK = 10
TOKEN_PROBLEMS = frozenset({"401", "403"})


def cost_kind(path: str) -> str:
    """What a request to `path` (or to an endpoint's template) is spent on, as the benchmarks
    and the backtest report the requests an hour: destinations, listings, schedules, managed
    and volume backups, restores."""
    if "/backup-destinations" in path:
        return "destinations"
    if "/backup-schedules" in path:
        return "schedules"
    if path.endswith("/restores"):
        return "restores"
    if path.endswith("/backups"):
        return "managed and volume backups"
    return "projects, addons, volumes"


class Page(NamedTuple):
    items: list[Item]
    count: Any  # pagination.count as sent: the number of items on this page, in theory


class ApiError(Exception):
    """A request that did not give a usable answer; `code` is the HTTP status or an error kind."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def needs(endpoint: str, error: ApiError) -> str:
    """For a 401 or 403, the clause that names the permission the endpoint needs; else ""."""
    if error.code not in TOKEN_PROBLEMS:
        return ""
    return f" (the token needs the permission {PERMISSIONS[endpoint]})"
