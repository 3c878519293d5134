"""Reading what should be backed up: projects, addons, volumes and their backup schedules.

Each reader takes one decoded item of an inventory listing and gives the record the exporter
keeps, or raises `InvalidItem` naming the first field that cannot be used, as `backups.py` does
for backups. Schedules are parsed by the same `parse_schedule` that reads a backup's
`schedules`, so a slot means the same thing wherever it was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.backups import InvalidBackup, parse_schedule, parse_timestamp
from exporter.model import Schedule, encodable, is_id

# The `destination` label of backups kept in Northflank-managed storage (no custom destination).
MANAGED_STORAGE = "northflank-managed"
# Addon statuses that mean "not meant to be running": such an addon is never unprotected.
INACTIVE_ADDON_STATUSES = frozenset({"paused", "deleting", "deleted"})
INACTIVE_VOLUME_STATUSES = frozenset({"deleting", "deleted"})
# A volume backup's status is free text in both clients: these words mean it can be restored.
COMPLETED_VOLUME_STATUSES = frozenset({"completed", "succeeded", "success", "ready", "available"})
MAX_VOLUME_STATUS = 32
# Projects that are going or gone: their addons are not listed.
GONE_PROJECT_STATUSES = frozenset(
    {"deleting", "deleted", "cluster_deleted", "tearing_down", "deletion_failed"}
)
MAX_TEXT = 256
MAX_RETENTION_DAYS = 36_500


class InvalidItem(ValueError):
    """An inventory item that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    status: str


@dataclass(frozen=True)
class CoverageSchedule:
    """One declared backup schedule and where it sends its backups."""

    id: str
    schedule: Schedule
    backup_type: str
    destination: str  # a custom destination id, or MANAGED_STORAGE
    additional: tuple[str, ...] = ()  # destinations a snapshot is also copied to
    created: float | None = None
    updated: float | None = None
    retention_days: int | None = None  # how long its backups are kept (retentionTime)

    @property
    def destinations(self) -> tuple[tuple[str, str], ...]:
        """(destination, role) of every place the schedule's backups should arrive."""
        return ((self.destination, "primary"), *((d, "additional") for d in self.additional))


@dataclass(frozen=True)
class Addon:
    project: str
    project_name: str
    id: str
    name: str
    type: str
    status: str

    @property
    def active(self) -> bool:
        return self.status not in INACTIVE_ADDON_STATUSES


@dataclass(frozen=True)
class Volume:
    project: str
    project_name: str
    id: str
    name: str
    status: str
    # None: the item left backupSchedules out (the clients declare it optional), and the
    # volume's backup-schedules have not been read yet; never taken for "none"
    schedules: tuple[CoverageSchedule, ...] | None
    created: float | None = None

    @property
    def active(self) -> bool:
        return self.status.lower() not in INACTIVE_VOLUME_STATUSES

    @property
    def unprotected(self) -> bool | None:
        """An active volume that declares no schedule (None while its schedules are unknown)."""
        if self.schedules is None:
            return None
        return self.active and not self.schedules


@dataclass(frozen=True)
class VolumeBackup:
    """One backup of a volume. Its status is free text (read without case, `_` as `-`), and it
    has no completedAt: a snapshot is of the volume as it was when created, so its createdAt
    stands for when the backup was taken."""

    id: str
    status: str
    created: float

    @property
    def completed(self) -> bool:
        return self.status in COMPLETED_VOLUME_STATUSES


def _text(raw: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = raw.get(field)
    if isinstance(value, str) and value and len(value) <= MAX_TEXT:
        return encodable(value)
    if required:
        raise InvalidItem(f"{field}: missing or not a short string")
    return ""


def _id(raw: dict[str, Any], field: str = "id") -> str:
    value = raw.get(field)
    if not is_id(value):
        raise InvalidItem(f"{field}: missing or not an id (a `/`, `.`, `..`, or too long)")
    return encodable(value)


def _object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidItem(f"{what}: not an object")
    return raw


def read_project(raw: Any) -> Project:
    item = _object(raw, "project")
    return Project(
        id=_id(item),
        name=_text(item, "name", required=False),
        status=_text(item, "lifecycleStatus", required=False),
    )


def read_addon(raw: Any, project: Project) -> Addon:
    item = _object(raw, "addon")
    spec = item.get("spec")
    return Addon(
        project=project.id,
        project_name=project.name,
        id=_id(item),
        name=_text(item, "name", required=False),
        type=_text(spec, "type", required=False) if isinstance(spec, dict) else "",
        status=_text(item, "status", required=False),
    )


def _scheduling(raw: Any) -> Schedule:
    try:
        schedule = parse_schedule(raw)
    except InvalidBackup as problem:
        raise InvalidItem(f"scheduling: {problem}") from None
    if schedule is None:
        raise InvalidItem("scheduling.interval: not hourly, daily or weekly")
    return schedule


def read_addon_schedule(raw: Any) -> CoverageSchedule:
    """One entry of an addon's backup-schedules: a dump with a customDestinationId goes there;
    anything else is kept in managed storage, a snapshot copied to each additionalDestinations
    entry too."""
    item = _object(raw, "schedule")
    custom = item.get("customDestinationId")
    if custom is not None and not (isinstance(custom, str) and len(custom) <= MAX_TEXT):
        raise InvalidItem("customDestinationId: not a destination id")
    additional = item.get("additionalDestinations") or []
    if not isinstance(additional, list):
        raise InvalidItem("additionalDestinations: not a list")
    copies = []
    for entry in additional:
        target = entry.get("destinationId") if isinstance(entry, dict) else None
        if not isinstance(target, str) or not target or len(target) > MAX_TEXT:
            raise InvalidItem("additionalDestinations: an entry has no destinationId")
        copies.append(encodable(target))
    return CoverageSchedule(
        id=_id(item),
        schedule=_scheduling(item.get("scheduling")),
        backup_type=_text(item, "backupType", required=False),
        destination=encodable(custom) if custom else MANAGED_STORAGE,
        additional=tuple(sorted(set(copies))),
        created=parse_timestamp(item.get("createdAt")),
        updated=parse_timestamp(item.get("updatedAt")),
        retention_days=_retention_days(item),
    )


def _retention_days(item: dict[str, Any]) -> int | None:
    """retentionTime: a whole number of days (the clients' own words); None when not one."""
    days = item.get("retentionTime")
    if isinstance(days, int) and not isinstance(days, bool) and 0 < days <= MAX_RETENTION_DAYS:
        return days
    return None


def read_volume(raw: Any, project: Project) -> Volume:
    """A volume with the schedules it embeds; they carry no id, so each is named by its place
    in the list, and no destination, so their backups are taken to stay in managed storage.
    An item without `backupSchedules` says nothing of them: its schedules are None, to be read
    from the volume's backup-schedules."""
    item = _object(raw, "volume")
    embedded = item.get("backupSchedules")
    schedules: tuple[CoverageSchedule, ...] | None = None
    if embedded is not None:
        if not isinstance(embedded, list):
            raise InvalidItem("backupSchedules: not a list")
        schedules = tuple(
            _volume_schedule(str(number), _object(entry, "backupSchedules entry"))
            for number, entry in enumerate(embedded)
        )
    return Volume(
        project=project.id,
        project_name=project.name,
        id=_id(item),
        name=_text(item, "name", required=False),
        status=_text(item, "status", required=False),
        schedules=schedules,
        created=parse_timestamp(item.get("createdAt")),
    )


def _volume_schedule(ident: str, entry: dict[str, Any]) -> CoverageSchedule:
    return CoverageSchedule(
        ident,
        _scheduling(entry.get("scheduling")),
        _text(entry, "backupType", required=False) or "snapshot",
        MANAGED_STORAGE,
        created=parse_timestamp(entry.get("createdAt")),
        updated=parse_timestamp(entry.get("updatedAt")),
        retention_days=_retention_days(entry),
    )


def read_volume_schedule(raw: Any) -> CoverageSchedule:
    """One entry of a volume's backup-schedules (the addon shape, kept in managed storage)."""
    item = _object(raw, "schedule")
    return _volume_schedule(_id(item), item)


def normal_volume_status(text: str) -> str:
    """A free-text status as one label value: lower case, `_` and spaces as `-`."""
    return "-".join(text.strip().lower().replace("_", " ").split())


def read_volume_backup(raw: Any) -> VolumeBackup:
    item = _object(raw, "volume backup")
    status = item.get("status")
    if not isinstance(status, str) or not status.strip() or len(status) > MAX_VOLUME_STATUS:
        raise InvalidItem("status: missing or not a short string")
    created = parse_timestamp(item.get("createdAt"))
    if created is None:
        raise InvalidItem("createdAt: missing or not a time")
    return VolumeBackup(
        id=_text(item, "id"), status=encodable(normal_volume_status(status)), created=created
    )
