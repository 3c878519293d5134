"""The simulator's volumes: their schedules, and the snapshots they take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from exporter.simulator.addons import STOPPED_SLOTS, day_slots, slots_backwards
from exporter.simulator.runs import Listed
from exporter.simulator.units import DAY, draws, iso


class Fate(Protocol):
    """Which of a volume's slots are taken, and which of those fail."""

    def taken(self, slot: float) -> bool: ...

    def failed(self, slot: float, draw: tuple[float, ...], earlier: float) -> bool: ...


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

    def backups(
        self, seed: int, anchor: float, now: float, fate: Fate | None = None
    ) -> list[Listed]:
        """Its snapshots listed at `now`, newest first: one a slot, kept retentionTime days
        from createdAt. A volume backup has a free-form status and no completedAt. `fate`
        says which slots are taken and which fail (the backtest's fleet has its own); by
        default, as its behaviour says."""
        fate = fate or _Behaved(self, anchor)
        made = []
        keep = self.retention_days * DAY
        slots = slots_backwards(self.day_slots, now)  # without end, when there are any
        slot = next(slots, None)
        while slot is not None:
            earlier = next(slots)
            draw = draws(seed, self.volume_id, slot)
            created = slot + round(draw[0] * 20, 3)
            if created + keep <= now:
                break
            if created <= now and fate.taken(slot):
                ended = created + 20 + draw[1] * 280
                failed = fate.failed(slot, draw, earlier)
                status = "IN_PROGRESS" if now < ended else "FAILED" if failed else "COMPLETED"
                made.append(Listed(created, self.backup_object(slot, created, ended, status, now)))
            slot = earlier
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


class _Behaved:
    """The simulator's own: every slot taken (a stopped volume's until three slots before the
    anchor), and about 3% failing."""

    def __init__(self, volume: SimVolume, anchor: float) -> None:
        self._last: float | None = None  # the last slot taken
        if volume.behaviour == "stopped":
            before = slots_backwards(volume.day_slots, anchor)
            self._last = [next(before) for _ in range(STOPPED_SLOTS + 1)][-1]

    def taken(self, slot: float) -> bool:
        return self._last is None or slot <= self._last

    def failed(self, slot: float, draw: tuple[float, ...], earlier: float) -> bool:
        return draw[2] < 0.03
