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
from typing import Any

from exporter.simulator.addons import ADDON_KINDS
from exporter.simulator.data import SimDestination
from exporter.simulator.runs import Listed, Owner, Run
from exporter.simulator.units import DAY, HOUR, MINUTE, draws, iso
from exporter.simulator.volumes import SimVolume
from monitoring.fleet_runs import (
    FAILURE_RATE,
    RETENTION,
    RETENTION_ENDING_KEEP,
    _first_slot_from,
    _listed,
    addon_retention,
    addon_runs,
    longest_retention,
)

SCHEDULES: tuple[tuple[dict[str, Any], ...], ...] = (
    ({"interval": "hourly", "minute": [15]},),
    ({"interval": "daily", "minute": [30], "hour": [2]},),
    ({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]},),
    ({"interval": "hourly", "minute": [45]}, {"interval": "daily", "minute": [5], "hour": [3]}),
    ({"interval": "daily", "minute": [0], "hour": [6, 18]},),
)
VOLUMES_PER_ADDON = 0.1  # healthy volumes: one for every ten addons
VOLUME_SCHEDULES: tuple[tuple[dict[str, Any], int], ...] = (  # (schedule, retention days)
    ({"interval": "daily", "minute": [0], "hour": [3]}, 7),
    ({"interval": "hourly", "minute": [35]}, 2),
    ({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]}, 30),
)
HORIZON = 8 * DAY
DESTINATIONS = 4
PROJECTS = 17


@dataclass(frozen=True)
class Effect:
    """What an incident does to an addon's (or a volume's) backups from its start on."""

    stops: bool = False  # no backup at all
    fails: bool = False  # its scheduled runs fail
    fails_manual: bool = False  # its manual backups fail too
    no_manual: bool = False  # never a manual backup, before or after
    shrinks: bool = False  # completed backups a twentieth of the usual size
    skips_odd_hours: bool = False  # the runs of odd hours skipped, a manual backup instead
    skips_first: bool = False  # the first slot from the start taken by nobody
    sticks_first: bool = False  # the first slot's run never ends
    undeclared: bool = False  # no schedule declared
    unlisted: bool = False  # nothing reaches its destination
    born_at_start: bool = False  # the addon appears when the incident starts
    keep: float | None = None  # every backup kept this long
    volume: bool = False  # an incident of a volume
    restore_fails: bool = False  # its drill at the start fails (fleet_restores.py)
    restore_sticks: bool = False  # its drill at the start never ends
    restores_stop: bool = False  # no drill from the start

    @property
    def restore_incident(self) -> bool:
        return self.restore_fails or self.restore_sticks or self.restores_stop


NO_INCIDENT = Effect()
# Every incident the backtest injects, in the order their starts are spread over the run.
EFFECTS: dict[str, Effect] = {
    "stopped": Effect(stops=True),
    "skipped-runs": Effect(skips_odd_hours=True),
    "skipped-once": Effect(skips_first=True),
    "stuck": Effect(sticks_first=True),
    "never-completed": Effect(fails=True, no_manual=True, born_at_start=True),
    "failing": Effect(fails=True, fails_manual=True),
    "shrunk": Effect(shrinks=True),
    "retention-ending": Effect(stops=True, keep=RETENTION_ENDING_KEEP),
    "unprotected": Effect(undeclared=True, unlisted=True, born_at_start=True),
    "not-arriving": Effect(unlisted=True, born_at_start=True),
    "volume-stopped": Effect(stops=True, volume=True),
    "volume-skipped": Effect(skips_first=True, volume=True),
    "restore-failed": Effect(restore_fails=True),
    "restore-lapsed": Effect(restores_stop=True),
    "restore-stuck": Effect(restore_sticks=True),
}
INCIDENTS = tuple(EFFECTS)


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

    @property
    def effect(self) -> Effect:
        return NO_INCIDENT if self.incident is None else EFFECTS[self.incident]

    @property
    def owner(self) -> Owner:
        return Owner(
            self.project,
            self.project.title(),
            self.ident,
            self.ident,
            self.kind,
            dict(ADDON_KINDS)[self.kind],
        )

    def schedules_changed_at(self, moment: float) -> float:
        """When the schedules in effect at `moment` were last changed (their updatedAt)."""
        if self.change_at is not None and moment >= self.change_at:
            return self.change_at
        return self.born

    def schedules_at(self, moment: float) -> tuple[dict[str, Any], ...]:
        if self.change_at is not None and moment >= self.change_at:
            assert self.schedules_after is not None
            return self.schedules_after
        if self.effect.undeclared:
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

    def backups(self, seed: int, anchor: float, now: float) -> list[Listed]:
        """Its snapshots listed at `now`, as the simulator's volume takes them, with this
        volume's fate: about FAILURE_RATE fail (never two in a row); none from a stopped
        volume's incident on, and the first slot of a skipped one's taken by nobody."""
        return self.shown.backups(seed, anchor, now, fate=_VolumeFate(self, seed))


class _VolumeFate:
    def __init__(self, volume: FleetVolume, seed: int) -> None:
        self._volume = volume
        self._seed = seed
        at = volume.incident_at
        effect = EFFECTS[volume.incident] if volume.incident else NO_INCIDENT
        self._stops_at = at if effect.stops else None
        self._skipped = (
            _first_slot_from(volume, at) if effect.skips_first and at is not None else None
        )

    def taken(self, slot: float) -> bool:
        if self._stops_at is not None and slot >= self._stops_at:
            return False
        return slot != self._skipped

    def failed(self, slot: float, draw: tuple[float, ...], earlier: float) -> bool:
        ident = self._volume.ident
        return draw[4] < FAILURE_RATE and draws(self._seed, ident, earlier)[4] >= FAILURE_RATE


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
            if addon.born > now or addon.effect.unlisted:
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
            key = (addon.ident, run.ident)
            final = self._final.get(key)
            if final is not None:
                yield final
                continue
            listed = _listed(addon, run, now)
            if now >= run.ended:
                self._final[key] = listed
            yield listed

    def backing_up(self, addon: FleetAddon, now: float) -> bool:
        """Whether the addon's newest run is under way at `now` (the API lists it `backup`)."""
        runs, created = self._runs_of(addon)
        newest = bisect.bisect_right(created, now) - 1
        if newest < 0:
            return False
        return runs[newest].under_way(now)

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
        if EFFECTS[kind].volume:
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
    "restore-failed": {"interval": "daily", "minute": [10], "hour": [2]},
    "restore-lapsed": {"interval": "daily", "minute": [20], "hour": [2]},
    "restore-stuck": {"interval": "daily", "minute": [30], "hour": [2]},
}


def _incident_addon(
    number: int, kind: str, destination: str, *, start: float, at: float
) -> FleetAddon:
    schedule = INCIDENT_SCHEDULES[kind]
    new = EFFECTS[kind].born_at_start
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
