"""One backup's life, as both fake worlds make it (the simulator's `World` and the backtest's
fleet): created, queued, running, how it ends, and how the API lists it at a moment."""

from __future__ import annotations

from typing import Any, NamedTuple

from exporter.simulator.units import DAY, iso

ABORTING_SECONDS = 600


RUNNING = ("scheduled", "in-progress", "aborting")


class Listed(NamedTuple):
    """A backup as the API returns it, with its creation time for ordering and cursors."""

    created: float
    backup: dict[str, Any]


FOREVER = 10 * 365 * DAY


class Run(NamedTuple):
    """One backup's life: created, queued, running, and how it ends."""

    ident: str
    name: str
    created: float
    queue: float
    duration: float
    outcome: str
    expires: float
    scheduled: bool
    draw: tuple[float, ...]
    size_factor: float = 1.0

    @property
    def started(self) -> float:
        return self.created + self.queue

    @property
    def ended(self) -> float:
        return self.created + self.queue + self.duration

    def under_way(self, now: float) -> bool:
        """Started and not ended at `now` (an addon lists `backup` then)."""
        return self.started <= now < self.ended


def outcome_of(draw: float) -> str:
    if draw < 0.90:
        return "completed"
    if draw < 0.95:
        return "failed"
    if draw < 0.99:
        return "aborted"
    return "not-supported"


def status_at(now: float, started: float, ended: float, outcome: str) -> str:
    if now < started:
        return "scheduled"
    if now < ended:
        return "in-progress"
    if outcome == "aborted" and now < ended + ABORTING_SECONDS:
        return "aborting"
    return outcome


class Owner(NamedTuple):
    """The addon a backup is of, as the backup names it."""

    project_id: str
    project_name: str
    addon_id: str
    addon_name: str
    addon_type: str
    addon_version: str


def api_backup(
    owner: Owner,
    run: Run,
    now: float,
    *,
    usual_size: float,
    schedules: tuple[dict[str, Any], ...] | None,
) -> Listed:
    """The backup as a destination lists it at `now`: its size (`usual_size` times the run's
    factor) once completed; the schedules its scheduled runs declare (None: taken by hand)."""
    status = status_at(now, run.started, run.ended, run.outcome)
    size = int(usual_size * run.size_factor) if status == "completed" else 0
    expires_ms = int(run.expires * 1000)
    backup: dict[str, Any] = {
        "id": run.ident,
        "name": run.name,
        "status": status,
        "project": {"id": owner.project_id, "name": owner.project_name},
        "addon": {"id": owner.addon_id, "name": owner.addon_name},
        "config": {
            "addonVersion": owner.addon_version,
            "addonType": owner.addon_type,
            "source": {"type": "global"},
            "size": str(size),
        },
        # a number, as the clients declare it: whole, or with a fraction as the page's example
        "expiredBy": expires_ms if run.draw[5] < 0.5 else expires_ms + 0.5,
        "createdAt": iso(run.created),
    }
    if schedules is not None:
        backup["schedules"] = [dict(schedule) for schedule in schedules]
    # the clients declare completedAt required; a backup still running has none (the one
    # exception to the declared shape, tests/test_contract.py)
    if status not in RUNNING:
        backup["completedAt"] = iso(run.ended)
    return Listed(run.created, backup)
