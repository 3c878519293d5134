"""The simulated Northflank world: destinations, projects, addons and their backups.

Everything is a pure function of (seed, anchor, now): the same arguments always give the
same backups, byte for byte. `anchor` is when the world was made (the simulator's start);
`now` moves on from there, so new scheduled backups appear at their slots, running ones
finish and old ones fall off the end, as on the real platform.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

WEEK = 604800
DAY = 86400
HOUR = 3600
# Epoch 0 was a Thursday; the first Monday 00:00 UTC after it is four days later.
_FIRST_MONDAY = 4 * DAY

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
    ("manual-aborting", 1200, 10, 600, "aborted"),
    ("manual-running", 600, 10, 6 * HOUR, "completed"),
    ("manual-queued", 30, HOUR, 300, "completed"),
)
ABORTING_SECONDS = 2 * HOUR
COVERAGE_MIN_BACKUPS = 50


def iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _numbers(*key: object) -> tuple[float, ...]:
    """Eight deterministic numbers in [0, 1) for a key (cheaper than seeding a Random)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=32).digest()
    return tuple(value / 2**32 for value in struct.unpack("<8I", digest))


def week_offsets(schedules: tuple[dict[str, Any], ...]) -> tuple[int, ...]:
    """Every slot of the schedules as seconds after Monday 00:00 UTC, sorted."""
    offsets: set[int] = set()
    for schedule in schedules:
        minutes = schedule["minute"]
        if schedule["interval"] == "hourly":
            hours: list[int] = list(range(24))
            days: list[int] = list(range(7))
        else:
            hours = schedule["hour"]
            days = schedule["day"] if schedule["interval"] == "weekly" else list(range(7))
        offsets.update(d * DAY + h * HOUR + m * 60 for d in days for h in hours for m in minutes)
    return tuple(sorted(offsets))


def slots_newest_first(offsets: tuple[int, ...], now: float) -> Iterator[int]:
    """Slot times at or before `now`, newest first, forever backwards."""
    week_start = int((now - _FIRST_MONDAY) // WEEK) * WEEK + _FIRST_MONDAY
    while True:
        for offset in reversed(offsets):
            if week_start + offset <= now:
                yield week_start + offset
        week_start -= WEEK


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

    @property
    def mean_gap(self) -> float:
        offsets = week_offsets(self.schedules)
        return WEEK / len(offsets) if offsets else DAY


@dataclass(frozen=True)
class SimDestination:
    id: str
    name: str
    usage: str
    addons: tuple[SimAddon, ...]
    coverage: int = 0

    def api_object(self) -> dict[str, Any]:
        """As the API lists it, credential fields included (the exporter must never expose them)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": f"Backups of the {self.name} environment",
            "type": "s3",
            "usage": self.usage,
            "prefix": f"northflank/{self.id}",
            "bucketName": f"nf-backups-{self.id}",
            "region": "eu-west-1",
            "accessKey": "AKIASIMULATEDKEY0001",
            "secretKey": "simulated-secret-key-never-to-be-exported",
        }


@dataclass(frozen=True)
class World:
    seed: int
    anchor: float
    destinations: tuple[SimDestination, ...] = field(default=())

    def destination(self, ident: str) -> SimDestination | None:
        return next((d for d in self.destinations if d.id == ident), None)

    def backups(self, destination: SimDestination, now: float) -> list[Listed]:
        """The destination's backups at `now`, newest first, with their creation times."""
        made = [
            listed
            for addon in destination.addons
            for listed in _addon_backups(self.seed, addon, now)
        ]
        made.extend(_coverage_backups(self.seed, destination, self.anchor, now))
        made = [listed for listed in made if listed.created <= now]
        made.sort(key=lambda listed: (-listed.created, listed.backup["id"]))
        return made


def build_world(
    seed: int,
    anchor: float,
    destinations: int,
    backups_per_destination: int,
    addons_per_destination: int | None = None,
) -> World:
    made = []
    for index in range(destinations):
        ident = f"backups-{index + 1:02d}" if index else "primary-backups"
        coverage = len(COVERAGE_BACKUPS) if backups_per_destination >= COVERAGE_MIN_BACKUPS else 0
        scheduled = backups_per_destination - coverage
        addon_count = addons_per_destination or max(2, min(scheduled // 60 or 1, 500))
        addons = tuple(
            _make_addon(seed, index, n, addon_count, scheduled) for n in range(addon_count)
        )
        made.append(
            SimDestination(
                id=ident,
                name="Primary backups" if index == 0 else f"Backups {index + 1:02d}",
                usage="globalBackups",
                addons=tuple(addon for addon in addons if addon.keep > 0) or addons[:1],
                coverage=coverage,
            )
        )
    return World(seed=seed, anchor=anchor, destinations=tuple(made))


def _make_addon(seed: int, destination: int, number: int, count: int, total: int) -> SimAddon:
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
        schedules=SCHEDULE_CHOICES[int(draw[1] * len(SCHEDULE_CHOICES))],
        keep=keep,
        base_size=int(50_000_000 + draw[2] * 5_000_000_000),
    )


def _addon_backups(seed: int, addon: SimAddon, now: float) -> Iterator[Listed]:
    if addon.keep <= 0:
        return
    offsets = week_offsets(addon.schedules)
    retention = addon.keep * addon.mean_gap + addon.mean_gap / 2
    for count, slot in enumerate(slots_newest_first(offsets, now)):
        if count >= addon.keep:
            return
        draw = _numbers(seed, addon.addon_id, slot)
        yield _backup(
            addon,
            ident=f"{addon.addon_id}-{datetime.fromtimestamp(slot, tz=UTC):%Y%m%d-%H%M}",
            name=f"Scheduled backup of {addon.addon_name}",
            created=slot + round(draw[0] * 20, 3),
            queue=5 + draw[1] * 40,
            duration=30 + draw[2] * 900,
            outcome=_outcome(draw[3]),
            retention=retention,
            draw=draw,
            now=now,
            scheduled=True,
        )


def _outcome(draw: float) -> str:
    if draw < 0.90:
        return "completed"
    if draw < 0.95:
        return "failed"
    if draw < 0.99:
        return "aborted"
    return "not-supported"


def _coverage_backups(
    seed: int, destination: SimDestination, anchor: float, now: float
) -> Iterator[Listed]:
    addon = destination.addons[0]
    for name, before, queue, duration, outcome in COVERAGE_BACKUPS[: destination.coverage]:
        draw = _numbers(seed, destination.id, name)
        yield _backup(
            addon,
            ident=f"{addon.addon_id}-{name}",
            name=f"{name.replace('-', ' ').capitalize()} backup of {addon.addon_name}",
            created=round(anchor - before, 3),
            queue=queue,
            duration=duration,
            outcome=outcome,
            retention=14 * DAY,
            draw=draw,
            now=now,
            scheduled=False,
        )


def _status_at(now: float, started: float, ended: float, outcome: str) -> str:
    if now < started:
        return "scheduled"
    if now < ended:
        return "in-progress"
    if outcome == "aborted" and now < ended + ABORTING_SECONDS:
        return "aborting"
    return outcome


def _backup(
    addon: SimAddon,
    *,
    ident: str,
    name: str,
    created: float,
    queue: float,
    duration: float,
    outcome: str,
    retention: float,
    draw: tuple[float, ...],
    now: float,
    scheduled: bool,
) -> Listed:
    ended = created + queue + duration
    status = _status_at(now, created + queue, ended, outcome)
    growth = 1 + (created % (90 * DAY)) / (90 * DAY) * 0.2
    size = int(addon.base_size * growth * (0.97 + draw[4] * 0.06)) if status == "completed" else 0
    expires_ms = int((created + retention) * 1000)
    backup: dict[str, Any] = {
        "id": ident,
        "name": name,
        "status": status,
        "project": {"id": addon.project_id, "name": addon.project_name},
        "addon": {"id": addon.addon_id, "name": addon.addon_name},
        "config": {
            "addonVersion": addon.addon_version,
            "addonType": addon.addon_type,
            "source": {"type": "global"},
            "size": str(size),
        },
        "expiredBy": f"{expires_ms}.0" if draw[5] < 0.5 else expires_ms,
        "createdAt": iso(created),
    }
    if scheduled:
        backup["schedules"] = [dict(schedule) for schedule in addon.schedules]
    finished = status in ("completed", "failed", "aborted", "aborting", "not-supported")
    if finished and (status == "completed" or draw[6] < 0.5):
        backup["completedAt"] = iso(ended)
    elif draw[6] < 0.3:
        backup["completedAt"] = None
    elif draw[6] < 0.6:
        backup["completedAt"] = ""
    return Listed(created, backup)
