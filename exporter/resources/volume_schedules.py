"""A volume's backup schedules, read where its item leaves `backupSchedules` out (the clients
declare it optional). A volume that declares none, and is not being deleted, is unprotected."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from exporter.api import VOLUME_SCHEDULES_ENDPOINT
from exporter.families import Family, Kind, Sample, Table, gauge
from exporter.inventory import MANAGED_STORAGE, Volume, read_volume_schedule
from exporter.resources.schedule_book import ScheduleBook
from exporter.resources.unit import Listing, Reads, Unit
from exporter.resources.volumes import Volumes

if TYPE_CHECKING:
    from exporter.context import AccountLoops

Key = tuple[str, str]  # (project, volume)


def _schedule_info(volume: Volume, now: float) -> Iterator[Sample]:
    for declared in volume.schedules or ():
        yield (declared.id, declared.schedule.interval, declared.destination), {}


def _count(volume: Volume, now: float) -> float | None:
    return None if volume.schedules is None else len(volume.schedules)


def _unprotected(volume: Volume, now: float) -> float | None:
    unprotected = volume.unprotected
    return None if unprotected is None else float(unprotected)


VOLUME_COVERAGE: Table[Volume] = Table(
    labels=("project", "volume"),
    key=lambda volume: (volume.project, volume.id),
    families=(
        gauge(
            "northflank_coverage_volume_backup_schedules",
            "Backup schedules the volume declares (0: nothing backs it up).",
            _count,
        ),
        gauge(
            "northflank_coverage_volume_unprotected",
            "1 when the volume declares no backup schedule and is not being deleted.",
            _unprotected,
        ),
        Family(
            "northflank_coverage_volume_backup_schedule",
            "One series per backup schedule of the volume (named by its place in the volume's "
            f"list; its backups stay in {MANAGED_STORAGE}). Always 1.",
            _schedule_info,
            kind=Kind.INFO,
            labels=("schedule", "interval", "destination"),
        ),
    ),
)


class VolumeSchedules(Unit[Key, Volume, list[Any]]):
    reads = Reads(
        Listing.VOLUME_SCHEDULES,
        VOLUME_SCHEDULES_ENDPOINT,
        "GetVolumeBackupSchedulesEndpoint",
        "GetAddonBackupSchedulesResponse",
    )
    table = VOLUME_COVERAGE

    def __init__(self, loops: AccountLoops, volumes: Volumes) -> None:
        super().__init__(loops)
        self._volumes = volumes
        self.book = ScheduleBook(loops, "volume")

    def wanted(self) -> Mapping[Key, Volume]:
        return {key: v for key, v in self._volumes.volumes.items() if v.schedules is None}

    def due(self, key: Key, subject: Volume, now: float) -> bool:
        return self.book.due(key, subject.status, now)

    def never_read(self, key: Key) -> bool:
        return self.book.never_read(key)

    async def fetch(self, key: Key, subject: Volume) -> list[Any]:
        return await self.loops.client.volume_schedules(*key, spend=self.spend(key))

    def fold(self, key: Key, subject: Volume, answer: list[Any], now: float) -> bool:
        return self.book.fold(key, subject.status, answer, read_volume_schedule, now)

    def forget_all_but(self, keys: Set[Key]) -> None:
        self.book.forget_all_but(keys)

    def known(self) -> tuple[Volume, ...]:
        """Every volume, with its schedules as its item or its backup-schedules said (None
        while neither has been read)."""
        known = []
        for key, volume in self._volumes.volumes.items():
            read = self.book.schedules(key)
            if volume.schedules is None and read is not None:
                known.append(replace(volume, schedules=read))
            else:
                known.append(volume)
        return tuple(known)

    def rows(self) -> tuple[Volume, ...]:
        return self.known()
