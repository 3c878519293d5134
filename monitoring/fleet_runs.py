"""One fleet addon's backups: its slots across a schedule change, its runs shaped by its
incident (`fleet.EFFECTS`), its manual backups, and each as its destination lists it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from exporter.simulator.addons import day_slots
from exporter.simulator.runs import FOREVER, Listed, Run, api_backup
from exporter.simulator.units import DAY, HOUR, MINUTE, draws

if TYPE_CHECKING:
    from monitoring.fleet import FleetAddon


FAILURE_RATE = 0.02


MANUAL_PER_DAY = 0.3


# Retention by the schedule's first interval: long enough that the newest backup always
# outlives the 24 h horizon of RestorableWindowEnding while backups keep coming.
RETENTION = {"hourly": 30 * HOUR, "daily": 4 * DAY, "weekly": 16 * DAY}


RETENTION_ENDING_KEEP = 30 * HOUR


def _slots_in(schedules: tuple[dict[str, Any], ...], start: float, end: float) -> list[float]:
    """The schedules' slots in [start, end], oldest first."""
    # the simulator's own day-by-day slots: they share no code with the exporter's schedule
    # arithmetic, which the backtest judges
    days = day_slots(schedules)
    slots: list[float] = []
    if not any(days):
        return slots
    midnight = start - start % DAY
    while midnight <= end:
        weekday = datetime.fromtimestamp(midnight, tz=UTC).weekday()
        for seconds in days[weekday]:
            if start <= midnight + seconds <= end:
                slots.append(midnight + seconds)
        midnight += DAY
    return slots


class Scheduled(Protocol):
    """What has slots: an addon, or a volume (whose schedule never changes)."""

    @property
    def change_at(self) -> float | None: ...

    def schedules_at(self, moment: float) -> tuple[dict[str, Any], ...]: ...


def scheduled_slots(addon: Scheduled, start: float, end: float) -> list[float]:
    """The addon's schedule slots in [start, end], oldest first, across a schedule change."""
    segments = [(start, end, addon.schedules_at(start))]
    if addon.change_at is not None and start < addon.change_at <= end:
        segments = [
            (start, addon.change_at - 1, addon.schedules_at(start)),
            (addon.change_at, end, addon.schedules_at(addon.change_at)),
        ]
    slots: list[float] = []
    for begin, finish, schedules in segments:
        slots.extend(_slots_in(schedules, begin, finish))
    return slots


def _failed(seed: int, addon: FleetAddon, slot: float, previous: float | None) -> bool:
    """About FAILURE_RATE of runs fail, never two in a row (the next slot succeeds)."""
    if draws(seed, addon.ident, slot)[4] >= FAILURE_RATE:
        return False
    return previous is None or draws(seed, addon.ident, previous)[4] >= FAILURE_RATE


def _duration(addon: FleetAddon, draw: tuple[float, ...]) -> float:
    """A long tail: most runs near the usual time, one in thirty up to four times longer
    (the longest, 45 minutes, still within schedule.grace)."""
    return addon.base_duration * (0.6 + 0.8 * draw[2]) * (1 + 3 * draw[3] ** 20)


def addon_runs(seed: int, addon: FleetAddon, start: float, end: float) -> list[Run]:
    """Every backup the addon takes with a creation time in [start, end], oldest first."""
    made: list[Run] = []
    previous: float | None = None
    for slot in scheduled_slots(addon, start - DAY, end):
        earlier, previous = previous, slot
        if start <= slot and addon.born <= slot:
            made.extend(_slot_runs(seed, addon, slot, earlier, addon_retention(addon, slot)))
    made.extend(_manual_runs(seed, addon, max(start, addon.born), end))
    made.sort(key=lambda run: run.created)
    return made


def addon_retention(addon: FleetAddon, moment: float) -> float:
    """How long a backup taken at `moment` is kept: as the schedule then in effect says."""
    if addon.effect.keep is not None:
        return addon.effect.keep
    if addon.change_at is not None and moment >= addon.change_at:
        assert addon.schedules_after is not None
        return RETENTION[addon.schedules_after[0]["interval"]]
    return addon.retention


def longest_retention(addon: FleetAddon) -> float:
    """The longest any of its backups is kept, across a schedule change."""
    moments = [addon.born] if addon.change_at is None else [addon.born, addon.change_at]
    return max(addon_retention(addon, moment) for moment in moments)


def _slot_runs(
    seed: int, addon: FleetAddon, slot: float, previous: float | None, retention: float
) -> Iterator[Run]:
    draw = draws(seed, addon.ident, slot)
    created = slot + round(draw[0] * 20, 3)
    queue = 5 + draw[1] * 40
    duration = _duration(addon, draw)
    outcome = "failed" if _failed(seed, addon, slot, previous) else "completed"
    factor = 0.6 if addon.shrink_at is not None and slot >= addon.shrink_at else 1.0
    at, effect = addon.incident_at, addon.effect
    started = at is not None and slot >= at
    if started and effect.stops:
        return
    if started and effect.skips_odd_hours and skipped(slot):
        manual = slot + 30 * MINUTE  # a manual backup keeps it fresh
        yield Run(
            ident=f"{addon.ident}-{slot:.0f}-manual",
            name=_name(addon),
            created=manual,
            queue=queue,
            duration=duration,
            outcome="completed",
            expires=manual + retention,
            scheduled=False,
            draw=draw,
            size_factor=factor,
        )
        return
    first = (effect.skips_first or effect.sticks_first) and at is not None
    if first and at is not None and slot == _first_slot_from(addon, at):
        if effect.skips_first:
            return
        duration = FOREVER
    elif started and effect.fails:
        outcome = "failed"
    elif started and effect.shrinks:
        factor = 0.05
    yield Run(
        ident=f"{addon.ident}-{slot:.0f}",
        name=_name(addon),
        created=created,
        queue=queue,
        duration=duration,
        outcome=outcome,
        expires=slot + retention,
        scheduled=True,
        draw=draw,
        size_factor=factor,
    )


def _name(addon: FleetAddon) -> str:
    return f"Backup of {addon.ident}"


def skipped(slot: float) -> bool:
    """The skipped-runs incident skips the runs of odd hours."""
    return int(slot // HOUR) % 2 == 1


def _first_slot_from(addon: Scheduled, moment: float) -> float:
    return scheduled_slots(addon, moment, moment + 8 * DAY)[0]


def _manual_runs(seed: int, addon: FleetAddon, since: float, end: float) -> Iterator[Run]:
    """A manual backup on about MANUAL_PER_DAY of days, at a random time."""
    effect = addon.effect
    if effect.no_manual:
        return
    day = since - since % DAY
    while day <= end:
        draw = draws(seed, addon.ident, "manual", day)
        moment = day + draw[1] * DAY
        day += DAY
        if draw[0] >= MANUAL_PER_DAY or not since <= moment <= end:
            continue
        started = addon.incident_at is not None and moment >= addon.incident_at
        if started and effect.stops:
            continue
        factor = 0.6 if addon.shrink_at is not None and moment >= addon.shrink_at else 1.0
        if started and effect.shrinks:
            factor = 0.05
        # a database whose backups fail from a point on fails its manual ones too
        outcome = "failed" if started and effect.fails_manual else "completed"
        expires = moment + addon_retention(addon, moment)
        yield Run(
            ident=f"{addon.ident}-{moment:.0f}-manual",
            name=_name(addon),
            created=moment,
            queue=10,
            duration=addon.base_duration,
            outcome=outcome,
            expires=expires,
            scheduled=False,
            draw=draw,
            size_factor=factor,
        )


def _listed(addon: FleetAddon, run: Run, now: float) -> Listed:
    """The backup as its destination lists it: the simulator's object, the fleet's sizes and
    the schedules in effect when it was taken."""
    return api_backup(
        addon.owner,
        run,
        now,
        usual_size=addon.base_size * (0.97 + run.draw[5] * 0.06),
        schedules=addon.schedules_at(run.created) if run.scheduled else None,
    )
