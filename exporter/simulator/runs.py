"""One backup's life, as both fake worlds make it (the simulator's `World` and the backtest's
fleet): created, queued, running, how it ends, and how the API lists it at a moment."""

from __future__ import annotations

from typing import Any, NamedTuple

from exporter.simulator.units import DAY

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
