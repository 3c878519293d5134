"""The simulator's addons: their schedules' slots, day by day, and the backups they take, each
shaped by the addon's behaviour (a scenario) from a table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from exporter.simulator.runs import FOREVER, Listed, Owner, Run, api_backup, outcome_of
from exporter.simulator.units import DAY, HOUR, MINUTE, WEEK, draws

if TYPE_CHECKING:
    from exporter.simulator.data import World


MANAGED = "managed"  # SimAddon.target of an addon backed up to Northflank-managed storage


@dataclass(frozen=True)
class SimAddon:
    project_id: str
    project_name: str
    addon_id: str
    addon_name: str
    addon_type: str
    addon_version: str
    schedules: tuple[dict[str, Any], ...]
    keep: int
    base_size: int
    behaviour: str = "normal"
    status: str = "running"
    # Where its schedules send backups: "" for the destinations that list it (a placed addon),
    # MANAGED for Northflank-managed storage, or a destination id that never receives them.
    target: str = ""
    backup_type: str = "dump"
    copies: tuple[str, ...] = ()  # destinations a snapshot is also copied to
    # an import of outside data (config.source.type fileUpload) this long before the anchor,
    # listed in its managed storage: a backup by status, never the addon's newest backup
    imported_before: float | None = None
    restores: str = ""  # its restore history (simulator/restores.py HISTORIES); "" for none

    @property
    def owner(self) -> Owner:
        return Owner(
            self.project_id,
            self.project_name,
            self.addon_id,
            self.addon_name,
            self.addon_type,
            self.addon_version,
        )

    @cached_property
    def day_slots(self) -> tuple[tuple[int, ...], ...]:
        """For each weekday (0 = Monday, as the API counts), its slots as sorted seconds after
        midnight UTC."""
        return day_slots(self.schedules)

    @property
    def slots_per_week(self) -> int:
        return sum(len(day) for day in self.day_slots)

    @property
    def mean_gap(self) -> float:
        return WEEK / self.slots_per_week if self.slots_per_week else DAY

    @property
    def retention_days(self) -> int:
        """What its schedules declare as retentionTime: whole days, as the API counts."""
        return max(1, round(self.keep * self.mean_gap / DAY))

    @property
    def retention(self) -> float:
        """How long each backup is kept, in seconds. In managed storage, as its schedules say
        (their retentionTime, from createdAt: no expiredBy tells it there); in a destination,
        `keep` slots, so that a uniform schedule always lists exactly `keep` (its expiredBy
        tells it, and retentionTime is that rounded to days)."""
        if self.target == MANAGED:
            return self.retention_days * DAY
        return self.keep * self.mean_gap

    def slots_backwards(self, moment: float) -> Iterator[float]:
        """The schedule's slots at or before `moment`, newest first, without end."""
        return slots_backwards(self.day_slots, moment)

    def last_slot(self, moment: float) -> float:
        """The latest slot at or before `moment`."""
        return next(self.slots_backwards(moment))


def day_slots(schedules: tuple[dict[str, Any], ...]) -> tuple[tuple[int, ...], ...]:
    """For each weekday (0 = Monday, as the API counts), the slots as sorted seconds after
    midnight UTC."""
    days = []
    for weekday in range(7):
        seconds: set[int] = set()
        for schedule in schedules:
            if schedule["interval"] == "weekly" and weekday not in schedule["day"]:
                continue
            hours = range(24) if schedule["interval"] == "hourly" else schedule["hour"]
            for hour in hours:
                for minute in schedule["minute"]:
                    seconds.add(hour * HOUR + minute * MINUTE)
        days.append(tuple(sorted(seconds)))
    return tuple(days)


def slots_backwards(day_slots: tuple[tuple[int, ...], ...], moment: float) -> Iterator[float]:
    if not any(day_slots):
        return
    midnight = moment - moment % DAY
    while True:
        weekday = datetime.fromtimestamp(midnight, tz=UTC).weekday()
        for seconds in reversed(day_slots[weekday]):
            if midnight + seconds <= moment:
                yield float(midnight + seconds)
        midnight -= DAY


STOPPED_SLOTS = 3


# Scenario runs may expire later than their slot's retention says (the skipped-runs addon's
# manual backups are half an hour younger); the walk back over slots goes this much further.
EXPIRY_SLACK = HOUR


SHRUNK_FACTOR = 0.05
SHRUNK_RUN = 120.0  # seconds each run of the shrunk addon takes


STUCK_SINCE = 5 * HOUR


# Three daily slots fail: at least two have ended whenever the world starts, the newest perhaps
# still running (with two, a start just after the slot showed one failure, not Failing).
EXPIRING_FAILS_SINCE = 3 * DAY


EXPIRING_AFTER_START = 40 * 60


def _slot_run(world: World, addon: SimAddon, slot: float, retention: float) -> Run:
    """Retention counts from the slot, so a uniform schedule always lists exactly `keep`."""
    draw = draws(world.seed, addon.addon_id, slot)
    created = slot + round(draw[0] * 20, 3)
    return Run(
        ident=f"{addon.addon_id}-{datetime.fromtimestamp(slot, tz=UTC):%Y%m%d-%H%M}",
        name=f"Scheduled backup of {addon.addon_name}",
        created=created,
        queue=5 + draw[1] * 40,
        duration=30 + draw[2] * 900,
        outcome=outcome_of(draw[3]),
        expires=slot + retention,
        scheduled=True,
        draw=draw,
    )


def still_listed(world: World, run: Run, now: float) -> bool:
    """Listed until its expiry plus this backup's share of the deletion lag."""
    return now < run.expires + run.draw[7] * world.deletion_lag


def runs(world: World, addon: SimAddon, now: float) -> Iterator[Run]:
    """The addon's listed backups at `now`: its slots within retention, shaped by its behaviour."""
    if addon.keep <= 0 or not addon.slots_per_week or addon.behaviour == "not-arriving":
        return
    retention = addon.retention
    newest = now
    if addon.behaviour == "stopped":
        at_start = addon.slots_backwards(world.anchor)
        newest = min(now, [next(at_start) for _ in range(STOPPED_SLOTS + 1)][-1])
    special = _BEHAVIOURS.get(addon.behaviour)
    for slot in addon.slots_backwards(newest):
        if slot + retention + world.deletion_lag + EXPIRY_SLACK <= now:
            return
        run = _slot_run(world, addon, slot, retention)
        run = special(world, addon, run, slot) if special else run
        if addon.target == MANAGED:  # kept retentionTime days from createdAt
            run = run._replace(expires=run.created + retention)
        if still_listed(world, run, now):
            yield run


def _skipped_run(world: World, addon: SimAddon, run: Run, slot: float) -> Run:
    if datetime.fromtimestamp(slot, tz=UTC).hour % 2 == 0:
        return run._replace(outcome="completed")
    manual = slot + 1800
    return run._replace(
        ident=f"{run.ident}-manual",
        name=f"Manual backup of {addon.addon_name}",
        created=manual,
        expires=manual + (run.expires - run.created),
        outcome="completed",
        scheduled=False,
    )


def _stuck_run(world: World, addon: SimAddon, run: Run, slot: float) -> Run:
    if slot == addon.last_slot(world.anchor - STUCK_SINCE):
        return run._replace(outcome="completed", duration=FOREVER)
    return run._replace(outcome="completed")


def _failing_run(world: World, addon: SimAddon, run: Run, slot: float) -> Run:
    return run._replace(outcome="failed" if run.draw[3] < 0.6 else "aborted")


def _expiring_run(world: World, addon: SimAddon, run: Run, slot: float) -> Run:
    cutoff = addon.last_slot(world.anchor - EXPIRING_FAILS_SINCE)
    retention = world.anchor + EXPIRING_AFTER_START - cutoff
    outcome = "failed" if slot > cutoff else "completed"
    return run._replace(created=slot, expires=slot + retention, outcome=outcome)


def _shrunk_run(world: World, addon: SimAddon, run: Run, slot: float) -> Run:
    # the newest run that has ended by the start: a start within a run of the slot would
    # otherwise have the shrunk one still running, and the newest completed of the usual size
    newest = slot == addon.last_slot(world.anchor - SHRUNK_RUN)
    return run._replace(
        outcome="completed",
        size_factor=SHRUNK_FACTOR if newest else 1.0,
        created=slot,
        queue=0.0,
        duration=SHRUNK_RUN,
    )


_BEHAVIOURS = {
    "shrunk": _shrunk_run,
    "skipped-runs": _skipped_run,
    "stuck": _stuck_run,
    "never-completed": _failing_run,
    "expiring": _expiring_run,
}


def as_listed(addon: SimAddon, run: Run, now: float) -> Listed:
    """The backup as the API shows it at `now`: sizes grow a fifth over each 90 days."""
    growth = 1 + (run.created % (90 * DAY)) / (90 * DAY) * 0.2
    return api_backup(
        addon.owner,
        run,
        now,
        usual_size=addon.base_size * growth * (0.97 + run.draw[4] * 0.06),
        schedules=addon.schedules if run.scheduled else None,
    )


ADDON_KINDS = (
    ("postgresql", "16.4.0"),
    ("mongodb", "7.0.14"),
    ("mysql", "8.4.2"),
    ("redis", "7.4.1"),
)


SCHEDULE_CHOICES: tuple[tuple[dict[str, Any], ...], ...] = (
    ({"interval": "hourly", "minute": [15]},),
    ({"interval": "hourly", "minute": [0, 30]},),
    ({"interval": "daily", "minute": [30], "hour": [2]},),
    ({"interval": "daily", "minute": [0], "hour": [6, 18]},),
    ({"interval": "weekly", "minute": [30], "hour": [18], "day": [4]},),
    ({"interval": "hourly", "minute": [45]}, {"interval": "daily", "minute": [5], "hour": [3]}),
)
