"""The simulated fleet the backtest replays: healthy noise, and incidents with known starts.

`Fleet` speaks to the simulator's HTTP server as its `World` does (destinations, their backups
at a moment, the inventory), so the exporter reads it through the real API client. Every
backup is a pure function of (seed, addon, slot): the same arguments give the same month.

Healthy noise: run durations with a long tail, about 2% of runs failing with the next slot
succeeding, manual backups at random times, one schedule change mid-month, backups expiring and
disappearing as retention says, a legitimate 40% size reduction on one addon. (The API outage
and the exporter restart belong to the replay, `monitoring/backtest/replay.py`.)
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from exporter.simulator.addons import ADDON_KINDS, day_slots
from exporter.simulator.data import SimDestination
from exporter.simulator.runs import Listed
from exporter.simulator.units import DAY, HOUR, MINUTE, draws, iso
from exporter.simulator.volumes import SimVolume

FAILURE_RATE = 0.02
MANUAL_PER_DAY = 0.3
FOREVER = 10 * 365 * DAY
SCHEDULES: tuple[tuple[dict[str, Any], ...], ...] = (
    ({"interval": "hourly", "minute": [15]},),
    ({"interval": "daily", "minute": [30], "hour": [2]},),
    ({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]},),
    ({"interval": "hourly", "minute": [45]}, {"interval": "daily", "minute": [5], "hour": [3]}),
    ({"interval": "daily", "minute": [0], "hour": [6, 18]},),
)
# Retention by the schedule's first interval: long enough that the newest backup always
# outlives the 24 h horizon of RestorableWindowEnding while backups keep coming.
RETENTION = {"hourly": 30 * HOUR, "daily": 4 * DAY, "weekly": 16 * DAY}
INCIDENTS = (
    "stopped",
    "skipped-runs",
    "skipped-once",
    "stuck",
    "never-completed",
    "failing",
    "shrunk",
    "retention-ending",
    "unprotected",
    "not-arriving",
    "volume-stopped",
    "volume-skipped",
)
VOLUME_INCIDENTS = ("volume-stopped", "volume-skipped")
VOLUMES_PER_ADDON = 0.1  # healthy volumes: one for every ten addons
VOLUME_SCHEDULES: tuple[tuple[dict[str, Any], int], ...] = (  # (schedule, retention days)
    ({"interval": "daily", "minute": [0], "hour": [3]}, 7),
    ({"interval": "hourly", "minute": [35]}, 2),
    ({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]}, 30),
)
RETENTION_ENDING_KEEP = 30 * HOUR
HORIZON = 8 * DAY
DESTINATIONS = 4
PROJECTS = 17


class Run(NamedTuple):
    suffix: str
    created: float
    queue: float
    duration: float
    outcome: str
    factor: float  # of the addon's usual size
    expires: float
    scheduled: bool
    draw: tuple[float, ...]


@dataclass(frozen=True)
class FleetAddon:
    project: str
    ident: str
    destination: str
    kind: str
    schedules: tuple[dict[str, Any], ...]
    retention: float
    base_size: int
    base_duration: float
    born: float  # when the addon appeared
    incident: str | None = None
    incident_at: float | None = None
    schedules_after: tuple[dict[str, Any], ...] | None = None  # a schedule change ...
    change_at: float | None = None  # ... from this moment
    shrink_at: float | None = None  # a legitimate 40% reduction from this moment

    def schedules_changed_at(self, moment: float) -> float:
        """When the schedules in effect at `moment` were last changed (their updatedAt)."""
        if self.change_at is not None and moment >= self.change_at:
            return self.change_at
        return self.born

    def schedules_at(self, moment: float) -> tuple[dict[str, Any], ...]:
        if self.change_at is not None and moment >= self.change_at:
            assert self.schedules_after is not None
            return self.schedules_after
        if self.incident == "unprotected":
            return ()
        return self.schedules


@dataclass(frozen=True)
class FleetVolume:
    """A volume with one backup schedule; its snapshots stay in managed storage."""

    project: str
    ident: str
    schedule: dict[str, Any]
    retention_days: int
    embedded: bool  # its item carries backupSchedules (else read from its backup-schedules)
    incident: str | None = None
    incident_at: float | None = None

    @property
    def schedules(self) -> tuple[dict[str, Any], ...]:
        return (self.schedule,)

    def schedules_at(self, moment: float) -> tuple[dict[str, Any], ...]:
        return self.schedules

    change_at = None

    @property
    def shown(self) -> SimVolume:
        """The simulator's volume of the same name and schedule: the API objects it is shown
        as (the volume, its backup-schedules, a backup) are the simulator's, its backups the
        fleet's own."""
        return SimVolume(
            self.project,
            self.project.title(),
            self.ident,
            self.ident.replace("-", " ").capitalize(),
            self.schedules,
            retention_days=self.retention_days,
            embedded=self.embedded,
        )

    def backups(self, seed: int, now: float) -> list[Listed]:
        """Its snapshots listed at `now`, newest first: one a slot, kept retention_days from
        createdAt; about FAILURE_RATE fail (never two in a row); none from a stopped volume's
        incident on, and the first slot of a skipped one's incident taken by nobody."""
        keep = self.retention_days * DAY
        shown = self.shown
        made = []
        slots = scheduled_slots(self, now - keep - DAY, now)
        first_skipped = None
        if self.incident == "volume-skipped" and self.incident_at is not None:
            first_skipped = _first_slot_from(self, self.incident_at)
        previous: float | None = None
        for slot in slots:
            earlier, previous = previous, slot
            started = self.incident_at is not None and slot >= self.incident_at
            if (self.incident == "volume-stopped" and started) or slot == first_skipped:
                continue
            draw = draws(seed, self.ident, slot)
            created = slot + round(draw[0] * 20, 3)
            if created > now or created + keep <= now:
                continue
            ended = created + 20 + draw[1] * 280
            failed = draw[4] < FAILURE_RATE and (
                earlier is None or draws(seed, self.ident, earlier)[4] >= FAILURE_RATE
            )
            status = "IN_PROGRESS" if now < ended else "FAILED" if failed else "COMPLETED"
            made.append(Listed(created, shown.backup_object(slot, created, ended, status, now)))
        made.sort(key=lambda listed: -listed.created)
        return made


@dataclass(frozen=True)
class Fleet:
    seed: int
    anchor: float  # the replay's start
    end: float
    addons: tuple[FleetAddon, ...]
    destinations: tuple[SimDestination, ...]
    volumes: tuple[FleetVolume, ...] = ()
    # caches, never passed on by dataclasses.replace (a shared index listed every addon twice)
    _by_destination: dict[str, list[FleetAddon]] = field(
        default_factory=dict, compare=False, init=False
    )
    _runs: dict[str, tuple[list[Run], list[float]]] = field(
        default_factory=dict, compare=False, init=False
    )
    _final: dict[tuple[str, str], Listed] = field(default_factory=dict, compare=False, init=False)

    def __post_init__(self) -> None:
        for addon in self.addons:
            self._by_destination.setdefault(addon.destination, []).append(addon)

    def destination(self, ident: str) -> SimDestination | None:
        return next((d for d in self.destinations if d.id == ident), None)

    def existing(self, now: float) -> Iterator[FleetAddon]:
        return (addon for addon in self.addons if addon.born <= now)

    # --- what the API lists

    def backups(self, destination: SimDestination, now: float) -> list[Listed]:
        made: list[Listed] = []
        for addon in self._by_destination.get(destination.id, ()):
            if addon.born > now or addon.incident in ("unprotected", "not-arriving"):
                continue
            made.extend(self.listed(addon, now))
        made.sort(key=lambda listed: (-listed.created, listed.backup["id"]))
        return made

    def listed(self, addon: FleetAddon, now: float) -> Iterator[Listed]:
        """The addon's backups as its destination lists them at `now`: created, and not yet
        expired. Each run is worked out once for the whole replay, and a finished backup's
        object is made once (the replay's speed depends on it)."""
        runs, created = self._runs_of(addon)
        oldest = now - longest_retention(addon) - HOUR
        for run in runs[bisect.bisect_left(created, oldest) : bisect.bisect_right(created, now)]:
            if run.expires <= now:
                continue
            key = (addon.ident, run.suffix)
            final = self._final.get(key)
            if final is not None:
                yield final
                continue
            listed = _listed(addon, run, now)
            if now >= run.created + run.queue + run.duration:
                self._final[key] = listed
            yield listed

    def _runs_of(self, addon: FleetAddon) -> tuple[list[Run], list[float]]:
        cached = self._runs.get(addon.ident)
        if cached is None:
            start = self.anchor - longest_retention(addon) - DAY
            runs = addon_runs(self.seed, addon, start, self.end + DAY)
            cached = self._runs[addon.ident] = (runs, [run.created for run in runs])
        return cached

    def projects(self) -> list[dict[str, Any]]:
        names = sorted({addon.project for addon in self.addons} | {v.project for v in self.volumes})
        return [
            {"id": name, "name": name.title(), "uid": f"uid-{name}", "lifecycleStatus": "created"}
            for name in names
        ]

    def addons_of(self, project: str, now: float) -> list[FleetAddon]:
        return [a for a in self.existing(now) if a.project == project]

    def addon_schedules_at(self, project: str, ident: str, now: float) -> list[dict[str, Any]]:
        for addon in self.addons_of(project, now):
            if addon.ident == ident:
                return [
                    {
                        "id": f"{ident}-{number}",
                        "createdAt": iso(addon.born),
                        "updatedAt": iso(addon.schedules_changed_at(now)),
                        "backupType": "dump",
                        "scheduling": dict(scheduling),
                        "retentionTime": int(addon_retention(addon, now)),
                        "customDestinationId": addon.destination,
                    }
                    for number, scheduling in enumerate(addon.schedules_at(now))
                ]
        return []


class FleetAt:
    """The fleet as the simulator's inventory routes ask for it, at the simulator's clock."""

    def __init__(self, fleet: Fleet, clock: Any) -> None:
        self.fleet = fleet
        self.clock = clock
        self.seed = fleet.seed
        self.anchor = fleet.anchor
        self.destinations = fleet.destinations
        self.deletion_lag = 0.0
        self.elsewhere = ()
        self.volumes = fleet.volumes

    def destination(self, ident: str) -> SimDestination | None:
        return self.fleet.destination(ident)

    def backups(self, destination: SimDestination, now: float) -> list[Listed]:
        return self.fleet.backups(destination, now)

    def projects(self) -> list[dict[str, Any]]:
        return self.fleet.projects()

    def addons(self, project: str) -> list[dict[str, Any]]:
        return [
            {
                "id": addon.ident,
                "name": addon.ident.replace("-", " ").capitalize(),
                "spec": {"type": addon.kind},
                "status": "running",
                "tags": [],
            }
            for addon in self.fleet.addons_of(project, self.clock())
        ]

    def addon_schedules(self, project: str, ident: str) -> list[dict[str, Any]]:
        return self.fleet.addon_schedules_at(project, ident, self.clock())

    def addon_backups(self, project: str, ident: str, now: float) -> list[Listed]:
        return []  # every schedule here sends to a custom destination

    def volumes_of(self, project: str) -> list[dict[str, Any]]:
        return [v.shown.api_object(self.anchor) for v in self.fleet.volumes if v.project == project]

    def volume(self, project: str, ident: str) -> FleetVolume | None:
        for volume in self.fleet.volumes:
            if (volume.project, volume.ident) == (project, ident):
                return volume
        return None

    def volume_schedules(self, project: str, ident: str) -> list[dict[str, Any]]:
        volume = self.volume(project, ident)
        return [] if volume is None else volume.shown.schedule_objects(self.anchor)

    def volume_backups(self, project: str, ident: str, now: float) -> list[Listed]:
        volume = self.volume(project, ident)
        return [] if volume is None else volume.backups(self.seed, now)


# --- one addon's backups


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
    if addon.incident == "retention-ending":
        return RETENTION_ENDING_KEEP
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
    at = addon.incident_at
    started = at is not None and slot >= at
    match addon.incident:
        case "stopped" | "retention-ending" if started:
            return
        case "skipped-runs" if started and skipped(slot):
            manual = slot + 30 * MINUTE  # a manual backup keeps it fresh
            suffix = f"{slot:.0f}-manual"
            yield Run(
                suffix,
                manual,
                queue,
                duration,
                "completed",
                factor,
                manual + retention,
                False,
                draw,
            )
            return
        case "skipped-once" if at is not None and slot == _first_slot_from(addon, at):
            return
        case "stuck" if at is not None and slot == _first_slot_from(addon, at):
            duration = FOREVER
        case "never-completed" | "failing" if started:
            outcome = "failed"
        case "shrunk" if started:
            factor = 0.05
    yield Run(
        f"{slot:.0f}", created, queue, duration, outcome, factor, slot + retention, True, draw
    )


def skipped(slot: float) -> bool:
    """The skipped-runs incident skips the runs of odd hours."""
    return int(slot // HOUR) % 2 == 1


def _first_slot_from(addon: Scheduled, moment: float) -> float:
    return scheduled_slots(addon, moment, moment + 8 * DAY)[0]


def _manual_runs(seed: int, addon: FleetAddon, since: float, end: float) -> Iterator[Run]:
    """A manual backup on about MANUAL_PER_DAY of days, at a random time."""
    if addon.incident == "never-completed":
        return
    day = since - since % DAY
    while day <= end:
        draw = draws(seed, addon.ident, "manual", day)
        moment = day + draw[1] * DAY
        day += DAY
        if draw[0] >= MANUAL_PER_DAY or not since <= moment <= end:
            continue
        started = addon.incident_at is not None and moment >= addon.incident_at
        if started and addon.incident in ("stopped", "retention-ending"):
            continue
        factor = 0.6 if addon.shrink_at is not None and moment >= addon.shrink_at else 1.0
        if started and addon.incident == "shrunk":
            factor = 0.05
        # a database whose backups fail from a point on fails its manual ones too
        outcome = "failed" if started and addon.incident == "failing" else "completed"
        suffix = f"{moment:.0f}-manual"
        yield Run(
            suffix,
            moment,
            10,
            addon.base_duration,
            outcome,
            factor,
            moment + addon_retention(addon, moment),
            False,
            draw,
        )


def _listed(addon: FleetAddon, run: Run, now: float) -> Listed:
    suffix, created, queue, duration, outcome, factor, expires, scheduled, draw = run
    ended = created + queue + duration
    if now < created + queue:
        status = "scheduled"
    elif now < ended:
        status = "in-progress"
    else:
        status = outcome
    size = int(addon.base_size * factor * (0.97 + draw[5] * 0.06)) if status == "completed" else 0
    backup: dict[str, Any] = {
        "id": f"{addon.ident}-{suffix}",
        "name": f"Backup of {addon.ident}",
        "status": status,
        "project": {"id": addon.project, "name": addon.project.title()},
        "addon": {"id": addon.ident, "name": addon.ident},
        "config": {"addonType": addon.kind, "size": str(size)},
        "expiredBy": int(expires * 1000),
        "createdAt": iso(created),
    }
    if scheduled:
        backup["schedules"] = [dict(s) for s in addon.schedules_at(created)]
    if status in ("completed", "failed"):
        backup["completedAt"] = iso(ended)
    return Listed(created, backup)


# --- building the fleet


def build_fleet(
    seed: int, addons: int, days: float, start: float, *, projects: int = PROJECTS
) -> tuple[Fleet, list[FleetAddon]]:
    """`addons` healthy addons over DESTINATIONS destinations and `projects` projects, plus one
    addon per incident; the incidents start at known moments spread over the middle of the
    run. Its backups are worked out until HORIZON past the run, so a run may grow to judge its
    last incident."""
    end = start + days * DAY + HORIZON
    destinations = tuple(
        SimDestination(
            id=f"backups-{n:02d}", name=f"Backups {n:02d}", usage="globalBackups", addons=()
        )
        for n in range(DESTINATIONS)
    )
    made = [
        _healthy(seed, n, destinations[n % DESTINATIONS].id, start, projects) for n in range(addons)
    ]
    # one schedule change and one legitimate shrink, mid-run, on healthy addons
    change = start + days * DAY / 2 + 11 * HOUR
    # hourly backups become daily ones at 11:00: the old schedule's slots go unanswered until
    # the first backup of the new one at 14:30 (exporter/rescheduled.py). A later daily slot
    # would leave the last hourly backup, kept 30 h, expiring within a day of nothing newer:
    # RestorableWindowEnding would rightly fire.
    made[1] = replace(
        made[1],
        schedules=({"interval": "hourly", "minute": [15]},),
        retention=RETENTION["hourly"],
        schedules_after=({"interval": "daily", "minute": [30], "hour": [14]},),
        change_at=change,
    )
    made[2] = replace(made[2], shrink_at=start + days * DAY * 0.4)
    incidents: list[Any] = []
    for number, kind in enumerate(INCIDENTS):
        at = start + days * DAY * (0.25 + 0.5 * number / len(INCIDENTS)) + 7 * MINUTE
        if kind in VOLUME_INCIDENTS:
            incidents.append(_incident_volume(kind, at))
            continue
        addon = _incident_addon(
            number, kind, destinations[number % DESTINATIONS].id, start=start, at=at
        )
        incidents.append(addon)
    volumes = [_healthy_volume(seed, n, projects) for n in range(round(addons * VOLUMES_PER_ADDON))]
    volumes += [i for i in incidents if isinstance(i, FleetVolume)]
    fleet = Fleet(
        seed,
        start,
        end,
        tuple(made + [i for i in incidents if isinstance(i, FleetAddon)]),
        destinations,
        tuple(volumes),
    )
    return fleet, incidents


def _healthy_volume(seed: int, number: int, projects: int) -> FleetVolume:
    draw = draws(seed, "volume", number)
    schedule, days = VOLUME_SCHEDULES[int(draw[0] * len(VOLUME_SCHEDULES))]
    return FleetVolume(
        project=f"project-{number % projects:02d}",
        ident=f"vol-{number:04d}",
        schedule=schedule,
        retention_days=days,
        embedded=draw[1] < 0.5,
    )


def _incident_volume(kind: str, at: float) -> FleetVolume:
    schedule = (
        {"interval": "hourly", "minute": [25]}
        if kind == "volume-stopped"
        else {"interval": "daily", "minute": [50], "hour": [5]}
    )
    return FleetVolume(
        project="incidents",
        ident=f"incident-{kind}",
        schedule=schedule,
        retention_days=2 if kind == "volume-stopped" else 7,
        embedded=kind == "volume-stopped",
        incident=kind,
        incident_at=at,
    )


def _healthy(seed: int, number: int, destination: str, start: float, projects: int) -> FleetAddon:
    draw = draws(seed, "fleet", number)
    schedules = SCHEDULES[int(draw[0] * len(SCHEDULES))]
    kind = ADDON_KINDS[int(draw[1] * len(ADDON_KINDS))][0]
    return FleetAddon(
        project=f"project-{number % projects:02d}",
        ident=f"db-{number:04d}",
        destination=destination,
        kind=kind,
        schedules=schedules,
        retention=RETENTION[schedules[0]["interval"]],
        base_size=int(50_000_000 + draw[2] * 2_000_000_000),
        base_duration=60 + draw[3] * 420,
        born=start - 60 * DAY,
    )


INCIDENT_SCHEDULES: dict[str, dict[str, Any]] = {
    "stopped": {"interval": "hourly", "minute": [10]},
    "skipped-runs": {"interval": "hourly", "minute": [0]},
    "skipped-once": {"interval": "daily", "minute": [15], "hour": [1]},
    "stuck": {"interval": "hourly", "minute": [20]},
    "never-completed": {"interval": "daily", "minute": [0], "hour": [4]},
    "failing": {"interval": "hourly", "minute": [35]},
    "shrunk": {"interval": "daily", "minute": [45], "hour": [3]},
    "retention-ending": {"interval": "hourly", "minute": [50]},
    "unprotected": {"interval": "daily", "minute": [0], "hour": [0]},
    "not-arriving": {"interval": "daily", "minute": [40], "hour": [9]},
}


def _incident_addon(
    number: int, kind: str, destination: str, *, start: float, at: float
) -> FleetAddon:
    schedule = INCIDENT_SCHEDULES[kind]
    new = kind in ("never-completed", "unprotected", "not-arriving")
    return FleetAddon(
        project="incidents",
        ident=f"incident-{kind}",
        destination=destination,
        kind=ADDON_KINDS[number % len(ADDON_KINDS)][0],
        schedules=(schedule,),
        retention=RETENTION[schedule["interval"]],
        base_size=900_000_000,
        base_duration=180.0,
        born=at if new else start - 60 * DAY,
        incident=kind,
        incident_at=at,
    )
