"""The simulator's volumes: their schedules, and the snapshots they take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from exporter.simulator.addons import STOPPED_SLOTS, day_slots, slots_backwards
from exporter.simulator.runs import Listed
from exporter.simulator.units import DAY, draws, iso


@dataclass(frozen=True)
class SimVolume:
    project_id: str
    project_name: str
    volume_id: str
    name: str
    schedules: tuple[dict[str, Any], ...]
    retention_days: int = 7
    # the clients declare a volume's backupSchedules optional: when left out, the schedules are
    # only at .../volumes/{id}/backup-schedules
    embedded: bool = True
    behaviour: str = "normal"  # "stopped": no backup since three slots before the anchor

    @cached_property
    def day_slots(self) -> tuple[tuple[int, ...], ...]:
        return day_slots(self.schedules)

    def api_object(self, anchor: float) -> dict[str, Any]:
        stamp = iso(anchor - 60 * DAY)
        shown: dict[str, Any] = {
            "id": self.volume_id,
            "name": self.name,
            "status": "BOUND",
            "tags": [],
            "createdAt": stamp,
            "updatedAt": stamp,
            "spec": {"storageSize": 10240, "accessMode": "ReadWriteOnce"},
        }
        if self.embedded:
            shown["attachedObjects"] = []
            shown["backupSchedules"] = [
                {"retentionTime": self.retention_days, "scheduling": dict(scheduling)}
                for scheduling in self.schedules
            ]
        return shown

    def schedule_objects(self, anchor: float) -> list[dict[str, Any]]:
        """Its backup-schedules, as the endpoint answers them."""
        stamp = iso(anchor - 60 * DAY)
        return [
            {
                "id": f"{self.volume_id}-{number}",
                "createdAt": stamp,
                "updatedAt": stamp,
                "backupType": "snapshot",
                "scheduling": dict(scheduling),
                "retentionTime": self.retention_days,
            }
            for number, scheduling in enumerate(self.schedules)
        ]

    def backups(self, seed: int, anchor: float, now: float) -> list[Listed]:
        """Its snapshots listed at `now`, newest first: one a slot, kept retentionTime days
        from createdAt. A volume backup has a free-form status and no completedAt."""
        newest = now
        if self.behaviour == "stopped":
            before = slots_backwards(self.day_slots, anchor)
            newest = min(now, [next(before) for _ in range(STOPPED_SLOTS + 1)][-1])
        made = []
        keep = self.retention_days * DAY
        for slot in slots_backwards(self.day_slots, newest):
            draw = draws(seed, self.volume_id, slot)
            created = slot + round(draw[0] * 20, 3)
            if created + keep <= now:
                break
            if created > now:
                continue
            ended = created + 20 + draw[1] * 280
            status = "IN_PROGRESS" if now < ended else "FAILED" if draw[2] < 0.03 else "COMPLETED"
            made.append(Listed(created, self.backup_object(slot, created, ended, status, now)))
        return made

    def backup_object(
        self, slot: float, created: float, ended: float, status: str, now: float
    ) -> dict[str, Any]:
        """One backup of it, as its backups listing shows it."""
        ident = f"{self.volume_id}-{datetime.fromtimestamp(slot, tz=UTC):%Y%m%d-%H%M}"
        return {
            "id": ident,
            "uid": f"uid-{ident}",
            "name": f"Scheduled backup of {self.name}",
            "status": status,
            "spec": {"storageSize": 10240},
            "source": {"type": "volume", "sourceObject": {"id": self.volume_id}},
            "createdAt": iso(created),
            "updatedAt": iso(min(now, ended)),
        }
