"""The simulated Northflank world: destinations, projects, addons and their backups.

Everything is a pure function of (seed, anchor, now): the same arguments always give the
same backups, byte for byte. `anchor` is when the world was made (the simulator's start);
`now` moves on from there, so new scheduled backups appear at their slots, running ones
finish and old ones fall off the end, as on the real platform.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter.simulator.addons import (
    ADDON_KINDS,
    MANAGED,
    SCHEDULE_CHOICES,
    SimAddon,
    as_listed,
    runs,
    still_listed,
)
from exporter.simulator.restores import restore_objects
from exporter.simulator.runs import Listed, Run
from exporter.simulator.scenarios import COVERAGE_SCENARIOS, FLEET_ADDONS, FLEET_VOLUMES, SCENARIOS
from exporter.simulator.units import DAY, HOUR, draws, iso
from exporter.simulator.volumes import SimVolume

PROJECT_WORDS = ("storefront", "billing", "analytics", "identity", "search", "messaging")
ADDON_WORDS = ("orders", "users", "events", "sessions", "catalog", "ledger", "metrics", "cache")
# Manual backups that make every documented status appear at the anchor time:
# (name, seconds before the anchor it was created, queue, duration, outcome)
COVERAGE_BACKUPS = (
    ("pre-migration", 3 * DAY, 20, 240, "completed"),
    ("manual-failed", 2 * DAY, 15, 90, "failed"),
    ("manual-aborted", DAY, 10, 60, "aborted"),
    ("unsupported", 6 * HOUR, 5, 5, "not-supported"),
    ("manual-aborting", 300, 10, 240, "aborted"),
    ("manual-running", 600, 10, 6 * HOUR, "completed"),
    ("manual-queued", 30, HOUR, 300, "completed"),
)


# Fake credentials a destination is served with: never to be seen in a log, metric or error.
SIMULATED_ACCESS_KEY = "AKIASIMULATEDKEY0001"
SIMULATED_SECRET_KEY = "simulated-secret-key-never-to-be-exported"  # noqa: S105
COVERAGE_MIN_BACKUPS = 50


@dataclass(frozen=True)
class SimDestination:
    id: str
    name: str
    usage: str
    addons: tuple[SimAddon, ...]
    coverage: int = 0

    def api_object(self, *, detail: bool = False) -> dict[str, Any]:
        """As the API lists it (or, `detail`, returns it alone), credentials included with fake
        values: the exporter must never expose them. The list item the clients declare has no
        `id`; the API sends one, as the single object has."""
        shown: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": "s3",
            "usage": self.usage,
            "prefix": f"northflank/{self.id}",
            "credentials": {
                "bucketName": f"nf-backups-{self.id}",
                "endpoint": "https://s3.eu-west-1.amazonaws.com",
                "region": "eu-west-1",
                "authMode": "staticCreds",
                "accessKey": SIMULATED_ACCESS_KEY,
                "secretKey": SIMULATED_SECRET_KEY,
            },
        }
        if self.id == "primary-backups":  # optional: left out of the others
            shown["description"] = f"Backups of the {self.name} environment"
        if detail:
            shown["createdAt"] = shown["updatedAt"] = "2026-01-05T09:30:00.000Z"
        return shown


class Served(Protocol):
    """The world as the simulator's routes ask for it. `World` is the simulator's own; the alert
    backtest's fleet (`monitoring/fleet.FleetAt`) serves the same routes from its history."""

    @property
    def seed(self) -> int: ...

    @property
    def destinations(self) -> Sequence[SimDestination]: ...

    def destination(self, ident: str) -> SimDestination | None: ...

    def backups(self, destination: SimDestination, now: float) -> list[Listed]: ...

    def projects(self) -> list[dict[str, Any]]: ...

    def addons(self, project: str, now: float) -> list[dict[str, Any]]: ...

    def addon_schedules(self, project: str, addon_id: str) -> list[dict[str, Any]]: ...

    def addon_backups(self, project: str, addon_id: str, now: float) -> list[Listed]: ...

    def volumes_of(self, project: str) -> list[dict[str, Any]]: ...

    def volume(self, project: str, volume_id: str) -> object | None: ...

    def volume_schedules(self, project: str, volume_id: str) -> list[dict[str, Any]]: ...

    def volume_backups(self, project: str, volume_id: str, now: float) -> list[Listed]: ...

    def addon_restores(self, project: str, addon_id: str, now: float) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class World:
    seed: int
    anchor: float
    destinations: tuple[SimDestination, ...] = field(default=())
    # Northflank deletes a backup some time after its expiredBy; up to this long here.
    deletion_lag: float = 0.0
    # Addons no destination keeps: in managed storage, unprotected, or whose backups never come.
    elsewhere: tuple[SimAddon, ...] = ()
    volumes: tuple[SimVolume, ...] = ()

    def destination(self, ident: str) -> SimDestination | None:
        return next((d for d in self.destinations if d.id == ident), None)

    # --- the inventory: what should be backed up (GET /v1/projects/...) ---

    def projects(self) -> list[dict[str, Any]]:
        """Every project an addon or a volume lives in, as the API lists them."""
        names = {addon.project_id: addon.project_name for addon in self._every_addon()}
        names.update((volume.project_id, volume.project_name) for volume in self.volumes)
        return [
            {
                "id": ident,
                "name": names[ident],
                "description": f"The {names[ident]} project",
                "uid": f"uid-{ident}",
                "lifecycleStatus": "created",
            }
            for ident in sorted(names)
        ]

    def addons(self, project: str, now: float) -> list[dict[str, Any]]:
        """The project's addons, each once, however many destinations keep its backups; a
        running addon is `restore` while one of its restores is in progress."""
        found: dict[str, SimAddon] = {}
        for addon in self._every_addon():
            if addon.project_id == project:
                found.setdefault(addon.addon_id, addon)
        return [
            {
                "id": addon.addon_id,
                "name": addon.addon_name,
                "appId": f"app-{addon.addon_id}",
                "uid": f"uid-{project}-{addon.addon_id}",
                "tags": [],
                "spec": {"type": addon.addon_type},
                "status": self._status(addon, now),
            }
            for addon in sorted(found.values(), key=lambda addon: addon.addon_id)
        ]

    def _status(self, addon: SimAddon, now: float) -> str:
        """`restore` while a restore runs, `backup` while its newest backup runs (both are in
        the clients' addon status enum), else its own."""
        if addon.status != "running":
            return addon.status
        listed = restore_objects(addon.addon_id, addon.restores, self.anchor, now)
        if any(r["status"] == "in-progress" for r in listed):
            return "restore"
        newest = next(runs(self, addon, now), None)
        if newest is not None and newest.under_way(now):
            return "backup"
        return addon.status

    def volumes_of(self, project: str) -> list[dict[str, Any]]:
        """The project's volumes, each with the backup schedules it embeds."""
        return [
            volume.api_object(self.anchor)
            for volume in sorted(self.volumes, key=lambda volume: volume.volume_id)
            if volume.project_id == project
        ]

    def volume(self, project: str, volume_id: str) -> SimVolume | None:
        for volume in self.volumes:
            if (volume.project_id, volume.volume_id) == (project, volume_id):
                return volume
        return None

    def volume_schedules(self, project: str, volume_id: str) -> list[dict[str, Any]]:
        volume = self.volume(project, volume_id)
        return [] if volume is None else volume.schedule_objects(self.anchor)

    def volume_backups(self, project: str, volume_id: str, now: float) -> list[Listed]:
        volume = self.volume(project, volume_id)
        return [] if volume is None else volume.backups(self.seed, self.anchor, now)

    def addon_restores(self, project: str, addon_id: str, now: float) -> list[dict[str, Any]]:
        """The addon's restores at `now`, newest first (none for most addons)."""
        for addon in self._every_addon():
            if (addon.project_id, addon.addon_id) == (project, addon_id):
                return restore_objects(addon_id, addon.restores, self.anchor, now)
        return []

    def addon_schedules(self, project: str, addon_id: str) -> list[dict[str, Any]]:
        """The addon's backup schedules: dumps into each destination that keeps its backups,
        or, for an addon no destination keeps, what its own target says."""
        for addon in self.elsewhere:
            if (addon.project_id, addon.addon_id) == (project, addon_id):
                return _elsewhere_schedules(self, addon)
        schedules = []
        for destination, addon in self._placed_addons():
            if (addon.project_id, addon.addon_id) != (project, addon_id):
                continue
            for number, scheduling in enumerate(addon.schedules):
                stamp = iso(self.anchor - 30 * DAY)
                schedules.append(
                    {
                        "id": f"{addon_id}-{destination.id}-{number}",
                        "createdAt": stamp,
                        "updatedAt": stamp,
                        "backupType": "dump",
                        "backupCompressionType": "gz",
                        "scheduling": dict(scheduling),
                        "retentionTime": addon.retention_days,
                        "customDestinationId": destination.id,
                    }
                )
        return schedules

    def addon_backups(self, project: str, addon_id: str, now: float) -> list[Listed]:
        """The addon's backups, newest first, as the addon lists them: those in every
        destination (with their customDestinationId) and those in managed storage."""
        for addon in self.elsewhere:
            if (addon.project_id, addon.addon_id) == (project, addon_id):
                return self._managed_backups(addon, now)
        made = []
        for destination in self.destinations:
            for listed in self.backups(destination, now):
                ref = listed.backup.get("addon") or {}
                owner = listed.backup.get("project") or {}
                if (owner.get("id"), ref.get("id")) != (project, addon_id):
                    continue
                made.append(Listed(listed.created, _as_addon_lists(listed.backup, destination.id)))
        made.sort(key=lambda listed: (-listed.created, listed.backup["id"]))
        return made

    def _managed_backups(self, addon: SimAddon, now: float) -> list[Listed]:
        """An addon's backups in managed storage (a snapshot copied elsewhere is listed once)."""
        made = []
        if addon.target == MANAGED:
            for run in runs(self, addon, now):
                listed = as_listed(addon, run, now)
                backup = _as_addon_lists(listed.backup, None)
                if addon.copies:
                    backup["config"]["additionalDestinations"] = _copies(addon)
                made.append(Listed(listed.created, backup))
            if addon.imported_before is not None:
                made.append(_import(addon, self.anchor - addon.imported_before))
        made = [listed for listed in made if listed.created <= now]
        made.sort(key=lambda listed: (-listed.created, listed.backup["id"]))
        return made

    def _placed_addons(self) -> Iterator[tuple[SimDestination, SimAddon]]:
        for destination in self.destinations:
            for addon in destination.addons:
                yield destination, addon

    def _every_addon(self) -> Iterator[SimAddon]:
        for _, addon in self._placed_addons():
            yield addon
        yield from self.elsewhere

    def backups(self, destination: SimDestination, now: float) -> list[Listed]:
        """The destination's backups at `now`, newest first, with their creation times
        (copies of managed snapshots included)."""
        copied = tuple(addon for addon in self.elsewhere if destination.id in addon.copies)
        made = [
            as_listed(addon, run, now)
            for addon in destination.addons + copied
            for run in runs(self, addon, now)
        ]
        made.extend(_coverage_backups(self, destination, now))
        made = [listed for listed in made if listed.created <= now]
        made.sort(key=lambda listed: (-listed.created, listed.backup["id"]))
        return made


def build_world(
    seed: int,
    anchor: float,
    destinations: int,
    backups_per_destination: int,
    *,
    addons_per_destination: int | None = None,
    scenarios: tuple[str, ...] = (),
    interval: str | None = None,
    fleet: bool = False,
) -> World:
    """`interval` ("hourly", "daily", "weekly") gives every generated addon that schedule;
    `fleet` adds what no destination shows: addons in managed storage, a paused addon without
    a schedule, and volumes. A world whose backups are deleted a while after they expire:
    `dataclasses.replace(world, deletion_lag=...)`."""
    known = (*SCENARIOS, *COVERAGE_SCENARIOS)
    unknown = set(scenarios) - set(known)
    if unknown:
        raise ValueError(f"unknown scenario {sorted(unknown)[0]!r}; known: {', '.join(known)}")
    made = []
    for index in range(destinations):
        ident = f"backups-{index + 1:02d}" if index else "primary-backups"
        coverage = len(COVERAGE_BACKUPS) if backups_per_destination >= COVERAGE_MIN_BACKUPS else 0
        scheduled = backups_per_destination - coverage
        addon_count = addons_per_destination or max(2, min(scheduled // 60 or 1, 500))
        addons = tuple(
            _make_addon(seed, index, n, addon_count, scheduled, interval=interval)
            for n in range(addon_count)
        )
        made.append(
            SimDestination(
                id=ident,
                name="Primary backups" if index == 0 else f"Backups {index + 1:02d}",
                usage="globalBackups",
                addons=(tuple(addon for addon in addons if addon.keep > 0) or addons[:1])
                + (
                    tuple(SCENARIOS[name] for name in scenarios if name in SCENARIOS)
                    if index == 0
                    else ()
                ),
                coverage=coverage,
            )
        )
    chosen = [COVERAGE_SCENARIOS[name] for name in scenarios if name in COVERAGE_SCENARIOS]
    return World(
        seed=seed,
        anchor=anchor,
        destinations=tuple(made),
        elsewhere=(FLEET_ADDONS if fleet else ())
        + tuple(item for item in chosen if isinstance(item, SimAddon)),
        volumes=(FLEET_VOLUMES if fleet else ())
        + tuple(item for item in chosen if isinstance(item, SimVolume)),
    )


def _schedules_for(interval: str | None, draw: tuple[float, ...]) -> tuple[dict[str, Any], ...]:
    if interval is None:
        return SCHEDULE_CHOICES[int(draw[1] * len(SCHEDULE_CHOICES))]
    schedule: dict[str, Any] = {"interval": interval, "minute": [int(draw[3] * 60)]}
    if interval != "hourly":
        schedule["hour"] = [int(draw[4] * 24)]
    if interval == "weekly":
        schedule["day"] = [int(draw[5] * 7)]
    return (schedule,)


def _make_addon(
    seed: int, destination: int, number: int, count: int, total: int, *, interval: str | None
) -> SimAddon:
    draw = draws(seed, "addon", destination, number)
    project = PROJECT_WORDS[(destination + number) % len(PROJECT_WORDS)]
    word = ADDON_WORDS[number % len(ADDON_WORDS)]
    suffix = f"-{number // len(ADDON_WORDS) + 1}" if number >= len(ADDON_WORDS) else ""
    kind, version = ADDON_KINDS[int(draw[0] * len(ADDON_KINDS))]
    keep = total // count + (1 if number < total % count else 0)
    return SimAddon(
        project_id=project,
        project_name=project.title(),
        addon_id=f"{word}-{kind}{suffix}",
        addon_name=f"{word.title()} {kind}{suffix}",
        addon_type=kind,
        addon_version=version,
        schedules=_schedules_for(interval, draw),
        keep=keep,
        base_size=int(50_000_000 + draw[2] * 5_000_000_000),
    )


def _elsewhere_schedules(world: World, addon: SimAddon) -> list[dict[str, Any]]:
    """The schedules of an addon no destination keeps, sending where its target says."""
    stamp = iso(world.anchor - 30 * DAY)
    schedules = []
    for number, scheduling in enumerate(addon.schedules):
        schedule: dict[str, Any] = {
            "id": f"{addon.addon_id}-{number}",
            "createdAt": stamp,
            "updatedAt": stamp,
            "backupType": addon.backup_type,
            "scheduling": dict(scheduling),
            "retentionTime": addon.retention_days,
        }
        if addon.backup_type == "dump":
            schedule["backupCompressionType"] = "zstd"
        if addon.target != MANAGED:
            schedule["customDestinationId"] = addon.target
        if addon.copies:
            schedule["additionalDestinations"] = _copies(addon)
        schedules.append(schedule)
    return schedules


def _import(addon: SimAddon, created: float) -> Listed:
    """A dump uploaded from outside (fileUpload): restorable, yet a copy of other data."""
    return Listed(
        created,
        {
            "id": f"{addon.addon_id}-import",
            "name": f"Import into {addon.addon_name}",
            "uid": f"uid-{addon.addon_id}-import",
            "status": "completed",
            "createdAt": iso(created),
            "completedAt": iso(created + 95),
            "config": {
                "size": str(addon.base_size // 3),
                "source": {"type": "fileUpload"},
                "compressionType": "gz",
                "addonVersion": addon.addon_version,
            },
        },
    )


def _copies(addon: SimAddon) -> list[dict[str, Any]]:
    """Where a snapshot is copied as well, each kept as long as in managed storage."""
    return [
        {"destinationId": destination, "type": "custom", "retentionTime": addon.retention_days}
        for destination in addon.copies
    ]


def _as_addon_lists(backup: dict[str, Any], destination: str | None) -> dict[str, Any]:
    """A backup as the addon's own listing shows it: no expiredBy, no schedules, and the
    customDestinationId of the destination that keeps it (none in managed storage)."""
    config = backup["config"]
    shown: dict[str, Any] = {
        "id": backup["id"],
        "name": backup["name"],
        "uid": f"uid-{backup['id']}",
        "status": backup["status"],
        "createdAt": backup["createdAt"],
        "config": {
            "size": config["size"],
            "source": {"type": "liveInstance"},
            "compressionType": "gz",
            "addonVersion": config["addonVersion"],
        },
    }
    if destination is not None:
        shown["customDestinationId"] = destination
    if "completedAt" in backup:
        shown["completedAt"] = backup["completedAt"]
    return shown


def _coverage_backups(world: World, destination: SimDestination, now: float) -> Iterator[Listed]:
    addon = destination.addons[0]
    for name, before, queue, duration, outcome in COVERAGE_BACKUPS[: destination.coverage]:
        created = round(world.anchor - before, 3)
        run = Run(
            ident=f"{addon.addon_id}-{name}",
            name=f"{name.replace('-', ' ').capitalize()} backup of {addon.addon_name}",
            created=created,
            queue=queue,
            duration=duration,
            outcome=outcome,
            expires=created + 14 * DAY,
            scheduled=False,
            draw=draws(world.seed, destination.id, name),
        )
        if still_listed(world, run, now):
            yield as_listed(addon, run, now)
