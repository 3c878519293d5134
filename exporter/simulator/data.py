"""The simulated Northflank world: destinations, projects, addons and their backups.

Everything is a pure function of (seed, anchor, now): the same arguments always give the
same backups, byte for byte. `anchor` is when the world was made (the simulator's start);
`now` moves on from there, so new scheduled backups appear at their slots, running ones
finish and old ones fall off the end, as on the real platform.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NamedTuple, Protocol

# The simulator works out its schedules' slots in its own simple way, day by day, and shares no
# code with the exporter's schedule arithmetic, which it exists to check.
MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY

ADDON_KINDS = (
    ("postgresql", "16.4.0"),
    ("mongodb", "7.0.14"),
    ("mysql", "8.4.2"),
    ("redis", "7.4.1"),
)
PROJECT_WORDS = ("storefront", "billing", "analytics", "identity", "search", "messaging")
ADDON_WORDS = ("orders", "users", "events", "sessions", "catalog", "ledger", "metrics", "cache")
SCHEDULE_CHOICES: tuple[tuple[dict[str, Any], ...], ...] = (
    ({"interval": "hourly", "minute": [15]},),
    ({"interval": "hourly", "minute": [0, 30]},),
    ({"interval": "daily", "minute": [30], "hour": [2]},),
    ({"interval": "daily", "minute": [0], "hour": [6, 18]},),
    ({"interval": "weekly", "minute": [30], "hour": [18], "day": [4]},),
    ({"interval": "hourly", "minute": [45]}, {"interval": "daily", "minute": [5], "hour": [3]}),
)
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
ABORTING_SECONDS = 600
RUNNING = ("scheduled", "in-progress", "aborting")
# Fake credentials a destination is served with: never to be seen in a log, metric or error.
SIMULATED_ACCESS_KEY = "AKIASIMULATEDKEY0001"
SIMULATED_SECRET_KEY = "simulated-secret-key-never-to-be-exported"  # noqa: S105
COVERAGE_MIN_BACKUPS = 50
MANAGED = "managed"  # SimAddon.target of an addon backed up to Northflank-managed storage


def iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _numbers(*key: object) -> tuple[float, ...]:
    """Eight deterministic numbers in [0, 1) for a key (cheaper than seeding a Random)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=32).digest()
    return tuple(value / 2**32 for value in struct.unpack("<8I", digest))


class Listed(NamedTuple):
    """A backup as the API returns it, with its creation time for ordering and cursors."""

    created: float
    backup: dict[str, Any]


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
        return _slots_backwards(self.day_slots, moment)

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


def _slots_backwards(day_slots: tuple[tuple[int, ...], ...], moment: float) -> Iterator[float]:
    if not any(day_slots):
        return
    midnight = moment - moment % DAY
    while True:
        weekday = datetime.fromtimestamp(midnight, tz=UTC).weekday()
        for seconds in reversed(day_slots[weekday]):
            if midnight + seconds <= moment:
                yield float(midnight + seconds)
        midnight -= DAY


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
            before = _slots_backwards(self.day_slots, anchor)
            newest = min(now, [next(before) for _ in range(STOPPED_SLOTS + 1)][-1])
        made = []
        keep = self.retention_days * DAY
        for slot in _slots_backwards(self.day_slots, newest):
            draw = _numbers(seed, self.volume_id, slot)
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

    def addons(self, project: str) -> list[dict[str, Any]]: ...

    def addon_schedules(self, project: str, addon_id: str) -> list[dict[str, Any]]: ...

    def addon_backups(self, project: str, addon_id: str, now: float) -> list[Listed]: ...

    def volumes_of(self, project: str) -> list[dict[str, Any]]: ...

    def volume(self, project: str, volume_id: str) -> object | None: ...

    def volume_schedules(self, project: str, volume_id: str) -> list[dict[str, Any]]: ...

    def volume_backups(self, project: str, volume_id: str, now: float) -> list[Listed]: ...


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

    def addons(self, project: str) -> list[dict[str, Any]]:
        """The project's addons, each once, however many destinations keep its backups."""
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
                "status": addon.status,
            }
            for addon in sorted(found.values(), key=lambda addon: addon.addon_id)
        ]

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
            for run in _runs(self, addon, now):
                listed = _listed(addon, run, now)
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
            _listed(addon, run, now)
            for addon in destination.addons + copied
            for run in _runs(self, addon, now)
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
    deletion_lag: float = 0.0,
    interval: str | None = None,
    fleet: bool = False,
) -> World:
    """`interval` ("hourly", "daily", "weekly") gives every generated addon that schedule;
    `fleet` adds what no destination shows: addons in managed storage, a paused addon without
    a schedule, and volumes."""
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
        deletion_lag=deletion_lag,
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
    draw = _numbers(seed, "addon", destination, number)
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


def _scenario(behaviour: str, kind: str, schedule: dict[str, Any], keep: int) -> SimAddon:
    version = dict(ADDON_KINDS)[kind]
    return SimAddon(
        project_id="scenarios",
        project_name="Scenarios",
        addon_id=f"{behaviour}-{kind}",
        addon_name=f"{behaviour.replace('-', ' ').capitalize()} {kind}",
        addon_type=kind,
        addon_version=version,
        schedules=(schedule,),
        keep=keep,
        base_size=800_000_000,
        behaviour=behaviour,
    )


# Named situations, each on an addon of its own in the first destination (`--scenario NAME`).
SCENARIOS: dict[str, SimAddon] = {
    # stopped being backed up three slots before the simulator started
    "stopped": _scenario("stopped", "postgresql", {"interval": "hourly", "minute": [15]}, 48),
    # the scheduler skips every odd hour's run; manual backups at half past keep it fresh
    "skipped-runs": _scenario("skipped-runs", "mysql", {"interval": "hourly", "minute": [0]}, 48),
    # a backup stuck in progress since five hours before the start
    "stuck": _scenario("stuck", "mongodb", {"interval": "hourly", "minute": [5]}, 48),
    # every backup failed or was aborted
    "never-completed": _scenario(
        "never-completed", "redis", {"interval": "daily", "minute": [0], "hour": [4]}, 10
    ),
    # recent backups fail; the last restorable one expires 40 minutes after the start
    "expiring": _scenario(
        "expiring", "postgresql", {"interval": "daily", "minute": [0], "hour": [1]}, 10
    ),
    # the newest completed backup is a twentieth of the usual size
    "shrunk": _scenario("shrunk", "mysql", {"interval": "daily", "minute": [30], "hour": [3]}, 14),
}


def _elsewhere(
    project: str,
    word: str,
    kind: str,
    schedules: tuple[dict[str, Any], ...],
    keep: int,
    **details: Any,
) -> SimAddon:
    """An addon no destination keeps: by default backed up to managed storage."""
    behaviour = details.get("behaviour", "normal")
    return SimAddon(
        project_id=project,
        project_name=project.title(),
        addon_id=f"{word}-{kind}",
        addon_name=f"{word.replace('-', ' ').capitalize()} {kind}",
        addon_type=kind,
        addon_version=dict(ADDON_KINDS)[kind],
        schedules=schedules,
        keep=keep,
        base_size=300_000_000,
        behaviour=behaviour,
        status=details.get("status", "running"),
        target=details.get("target", MANAGED),
        backup_type=details.get("backup_type", "dump"),
        copies=details.get("copies", ()),
        imported_before=details.get("imported_before"),
    )


# What a destination-only view misses, in a healthy account (`fleet=True`, and the demo).
FLEET_ADDONS = (
    _elsewhere(
        "billing",
        "invoices",
        "postgresql",
        ({"interval": "daily", "minute": [10], "hour": [1]},),
        14,
        imported_before=HOUR,  # newer than its last backup, and no backup of it
    ),
    _elsewhere(
        "identity",
        "tokens",
        "redis",
        ({"interval": "hourly", "minute": [20]},),
        48,
        backup_type="snapshot",
    ),
    _elsewhere(
        "analytics",
        "warehouse",
        "mysql",
        ({"interval": "daily", "minute": [40], "hour": [5]},),
        7,
        backup_type="snapshot",
        copies=("primary-backups",),
    ),
    # paused: reported as paused, never as unprotected
    _elsewhere("storefront", "archive", "mongodb", (), 0, status="paused"),
)
FLEET_VOLUMES = (
    SimVolume(
        "storefront",
        "Storefront",
        "uploads",
        "Uploads",
        ({"interval": "daily", "minute": [0], "hour": [3]},),
    ),
    # its item leaves backupSchedules out: they are read from its backup-schedules
    SimVolume(
        "analytics",
        "Analytics",
        "exports",
        "Exports",
        ({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]},),
        retention_days=30,
        embedded=False,
    ),
)


def managed_fleet(seed: int, count: int) -> tuple[SimAddon, ...]:
    """`count` addons backed up to managed storage only, with the usual mix of schedules."""
    made = []
    for number in range(count):
        draw = _numbers(seed, "managed", number)
        kind = ADDON_KINDS[int(draw[0] * len(ADDON_KINDS))][0]
        schedules = SCHEDULE_CHOICES[int(draw[1] * len(SCHEDULE_CHOICES))]
        keep = 48 if schedules[0]["interval"] == "hourly" else 14
        made.append(_elsewhere("fleet", f"managed-{number:03d}", kind, schedules, keep))
    return tuple(made)


# Situations only the inventory shows (`--scenario NAME`), in the project "scenarios".
COVERAGE_SCENARIOS: dict[str, SimAddon | SimVolume] = {
    # no backup schedule at all
    "unprotected": _elsewhere("scenarios", "unprotected", "postgresql", (), 0),
    # a daily dump into primary-backups that never arrives there
    "not-arriving": _elsewhere(
        "scenarios",
        "not-arriving",
        "mongodb",
        ({"interval": "daily", "minute": [0], "hour": [2]},),
        10,
        target="primary-backups",
        behaviour="not-arriving",
    ),
    # backed up to managed storage until three slots before the start
    "managed-stopped": _elsewhere(
        "scenarios",
        "managed-stopped",
        "mysql",
        ({"interval": "hourly", "minute": [25]},),
        48,
        behaviour="stopped",
    ),
    # a volume without a backup schedule (its item says nothing, its backup-schedules none)
    "volume-unprotected": SimVolume(
        "scenarios", "Scenarios", "scratch", "Scratch", (), embedded=False
    ),
    # a volume whose hourly snapshots stopped three slots before the start
    "volume-stopped": SimVolume(
        "scenarios",
        "Scenarios",
        "media",
        "Media",
        ({"interval": "hourly", "minute": [35]},),
        retention_days=2,
        behaviour="stopped",
    ),
}
STOPPED_SLOTS = 3
# Scenario runs may expire later than their slot's retention says (the skipped-runs addon's
# manual backups are half an hour younger); the walk back over slots goes this much further.
EXPIRY_SLACK = HOUR
SHRUNK_FACTOR = 0.05
STUCK_SINCE = 5 * HOUR
EXPIRING_FAILS_SINCE = 2 * DAY
EXPIRING_AFTER_START = 40 * 60
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


def _outcome(draw: float) -> str:
    if draw < 0.90:
        return "completed"
    if draw < 0.95:
        return "failed"
    if draw < 0.99:
        return "aborted"
    return "not-supported"


def _slot_run(world: World, addon: SimAddon, slot: float, retention: float) -> Run:
    """Retention counts from the slot, so a uniform schedule always lists exactly `keep`."""
    draw = _numbers(world.seed, addon.addon_id, slot)
    created = slot + round(draw[0] * 20, 3)
    return Run(
        ident=f"{addon.addon_id}-{datetime.fromtimestamp(slot, tz=UTC):%Y%m%d-%H%M}",
        name=f"Scheduled backup of {addon.addon_name}",
        created=created,
        queue=5 + draw[1] * 40,
        duration=30 + draw[2] * 900,
        outcome=_outcome(draw[3]),
        expires=slot + retention,
        scheduled=True,
        draw=draw,
    )


def _still_listed(world: World, run: Run, now: float) -> bool:
    """Listed until its expiry plus this backup's share of the deletion lag."""
    return now < run.expires + run.draw[7] * world.deletion_lag


def _runs(world: World, addon: SimAddon, now: float) -> Iterator[Run]:
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
        if _still_listed(world, run, now):
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
    newest = slot == addon.last_slot(world.anchor)
    return run._replace(
        outcome="completed",
        size_factor=SHRUNK_FACTOR if newest else 1.0,
        duration=min(run.duration, 120),
    )


_BEHAVIOURS = {
    "shrunk": _shrunk_run,
    "skipped-runs": _skipped_run,
    "stuck": _stuck_run,
    "never-completed": _failing_run,
    "expiring": _expiring_run,
}


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
            draw=_numbers(world.seed, destination.id, name),
        )
        if _still_listed(world, run, now):
            yield _listed(addon, run, now)


def _status_at(now: float, started: float, ended: float, outcome: str) -> str:
    if now < started:
        return "scheduled"
    if now < ended:
        return "in-progress"
    if outcome == "aborted" and now < ended + ABORTING_SECONDS:
        return "aborting"
    return outcome


def _listed(addon: SimAddon, run: Run, now: float) -> Listed:
    """The backup as the API shows it at `now`."""
    ended = run.created + run.queue + run.duration
    status = _status_at(now, run.created + run.queue, ended, run.outcome)
    draw = run.draw
    growth = 1 + (run.created % (90 * DAY)) / (90 * DAY) * 0.2
    usual = addon.base_size * growth * (0.97 + draw[4] * 0.06)
    size = int(usual * run.size_factor) if status == "completed" else 0
    expires_ms = int(run.expires * 1000)
    backup: dict[str, Any] = {
        "id": run.ident,
        "name": run.name,
        "status": status,
        "project": {"id": addon.project_id, "name": addon.project_name},
        "addon": {"id": addon.addon_id, "name": addon.addon_name},
        "config": {
            "addonVersion": addon.addon_version,
            "addonType": addon.addon_type,
            "source": {"type": "global"},
            "size": str(size),
        },
        # a number, as the clients declare it: whole, or with a fraction as the page's example
        "expiredBy": expires_ms if draw[5] < 0.5 else expires_ms + 0.5,
        "createdAt": iso(run.created),
    }
    if run.scheduled:
        backup["schedules"] = [dict(schedule) for schedule in addon.schedules]
    # the clients declare completedAt required; a backup still running has none (the one
    # exception to the declared shape, tests/test_contract.py)
    if status not in RUNNING:
        backup["completedAt"] = iso(ended)
    return Listed(run.created, backup)
