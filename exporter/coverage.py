"""Coverage: every addon and volume of an account, what backs it up, and its managed backups.

A destination's listing only shows databases that are backed up there. The inventory lists
projects, their addons and volumes, and each addon's backup schedules, so that a database with
no schedule, or whose backups never arrive, is seen too. Addons whose schedules keep backups in
Northflank-managed storage have their own listing read (on the cadence of `cadence.py`) and
folded by the same `summarize_addon` as destination backups, under the destination
MANAGED_STORAGE, so every per-addon alert works on them unchanged.

One loop per account does all of this, on one shard only (see `coverage_shard_key`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from exporter.addons import AddonSummary, summarize_addon
from exporter.cadence import next_read, usual_run
from exporter.client import (
    ADDON_BACKUPS_ENDPOINT,
    ADDON_SCHEDULES_ENDPOINT,
    ADDONS_ENDPOINT,
    BUDGET,
    PERMISSIONS,
    PROJECTS_ENDPOINT,
    TOKEN_PROBLEMS,
    VOLUME_BACKUPS_ENDPOINT,
    VOLUME_SCHEDULES_ENDPOINT,
    VOLUMES_ENDPOINT,
    ApiError,
    NorthflankClient,
)
from exporter.config import Account, AddonRules, CoverageSettings, PollSettings
from exporter.inventory import (
    GONE_PROJECT_STATUSES,
    MANAGED_STORAGE,
    Addon,
    CoverageSchedule,
    InvalidItem,
    Project,
    Volume,
    VolumeBackup,
    read_addon,
    read_addon_schedule,
    read_project,
    read_volume,
    read_volume_backup,
    read_volume_schedule,
)
from exporter.model import Backup, Schedule
from exporter.schedule import DAY, first_uncovered_slot, last_slot, week_offsets
from exporter.supervise import Health, first_of, supervised, waiting_with
from exporter.sync import Syncer
from exporter.volumes import VolumeSummary, summarize_volume

log = logging.getLogger(__name__)

# The inventory of an account is taken by the shard that owns this pseudo-destination of it:
# no destination id is empty, so it collides with none, and every shard works out the same
# owner without talking to the others. Several accounts spread their inventories over shards.
COVERAGE_SHARD_KEY = ""
# Each listing's endpoint, whose permission the log line of a 401 or 403 names.
LISTINGS = {
    "projects": PROJECTS_ENDPOINT,
    "addons": ADDONS_ENDPOINT,
    "volumes": VOLUMES_ENDPOINT,
    "schedules": ADDON_SCHEDULES_ENDPOINT,
    "managed backups": ADDON_BACKUPS_ENDPOINT,
    "volume schedules": VOLUME_SCHEDULES_ENDPOINT,
    "volume backups": VOLUME_BACKUPS_ENDPOINT,
}


@dataclass(frozen=True)
class CoveredAddon:
    addon: Addon
    schedules: tuple[CoverageSchedule, ...] | None  # None: not read successfully yet

    @property
    def unprotected(self) -> bool | None:
        """An active addon that declares no schedule (None when its schedules are unknown)."""
        if self.schedules is None:
            return None
        return self.addon.active and not self.schedules

    @property
    def managed(self) -> tuple[CoverageSchedule, ...]:
        """Its schedules that keep backups in managed storage."""
        return tuple(s for s in self.schedules or () if s.destination == MANAGED_STORAGE)

    @property
    def managed_slots(self) -> tuple[Schedule, ...]:
        """The slots of its schedules that keep backups in managed storage."""
        return tuple(s.schedule for s in self.managed)


@dataclass(frozen=True)
class CoverageSnapshot:
    up: bool | None = None  # the last round read everything (None before the first)
    last_success: float | None = None
    addons: tuple[CoveredAddon, ...] = ()
    volumes: tuple[Volume, ...] = ()
    managed: tuple[AddonSummary, ...] = ()  # per-addon health of managed-storage backups
    volume_health: tuple[VolumeSummary, ...] = ()  # per-volume health of its backups
    rules: AddonRules = field(default_factory=AddonRules)


@dataclass
class _Listing:
    """What is known of one addon's managed-storage listing, or of one volume's backups."""

    summary: AddonSummary | VolumeSummary | None = None
    read_at: float | None = None
    next_read: float = 0.0
    last_success: float | None = None
    up: bool = True


@dataclass(frozen=True)
class _ReadSchedules:
    read_at: float
    status: str  # the addon's status when they were read
    schedules: tuple[CoverageSchedule, ...]


class CoverageWatcher:
    """Takes one account's inventory every coverage.interval and reads its managed backups."""

    def __init__(
        self,
        account: Account,
        client: NorthflankClient,
        *,
        settings: CoverageSettings,
        poll: PollSettings,
        addons: AddonRules,
        expiry_warning_window: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        render: Callable[[], None] | None = None,
        health: Health | None = None,
        snapshot: CoverageSnapshot | None = None,
        after: asyncio.Event | None = None,
        listed: Callable[[], set[tuple[str, str]]] | None = None,
    ) -> None:
        """`after` is set when the account's destinations have had their first read: the
        loop starts then, so that a large inventory never slows the destinations' first
        numbers (both spend the budget's share for full reads)."""
        self._after = after
        # (project, addon) of the addons some destination lists with scheduled backups: those
        # are protected, so their schedules are read after every other addon's
        self._listed = listed or set
        self._account = account
        self._client = client
        self._settings = settings
        self._poll = poll
        self._rules = addons
        self._expiry_warning_window = expiry_warning_window
        self._clock = clock
        self._sleep = sleep
        self._render = render
        self._health = health or Health(clock)
        self.loop_name = f"coverage:{account.name}"
        self._syncer = Syncer(
            client.addon_backup_pages, poll.full_resync_interval, poll.incremental
        )
        self._limit = asyncio.Semaphore(poll.concurrency)
        self._projects: dict[str, Project] = {}
        self._addons: dict[tuple[str, str], Addon] = {}
        self._volumes: dict[str, tuple[Volume, ...]] = {}
        self._schedules: dict[tuple[str, str], _ReadSchedules] = {}
        self._volume_schedules: dict[tuple[str, str], _ReadSchedules] = {}
        self._listings: dict[tuple[str, str], _Listing] = {}
        self._volume_listings: dict[tuple[str, str], _Listing] = {}
        self._first_seen: dict[tuple[str, str], float] = {}  # volumes, by (project, id)
        self._inventory_due = 0.0
        self._inventory_ok: bool | None = None
        self._last_inventory: float | None = None
        self._told: set[tuple[str, str]] = set()  # (listing, code) problems already logged
        # listings the request budget left out of the last round, by kind (never waiting)
        self.left_out: dict[str, int] = {}
        self.snapshot = snapshot or CoverageSnapshot(rules=addons)

    def _prefix(self, text: str) -> str:
        return f"account={self._account.name} coverage: {text}"

    async def run(self, stop: asyncio.Event) -> None:
        if self._after is not None:
            await first_of(self._after.wait(), stop.wait())
        await supervised(
            self.loop_name,
            self.step,
            interval=self._poll.interval,
            health=self._health,
            stop=stop,
            wait=waiting_with(self._sleep),
        )

    def waiting(self, seconds: float) -> None:
        """Waiting for the request budget is what the loop should do: not a stall."""
        self._health.progress(self.loop_name, self._poll.interval, waiting=seconds)

    async def step(self) -> float:
        """Take the inventory if it is due, read the managed listings that are due, publish;
        the seconds until something is due again (at most a poll interval)."""
        self.left_out = {}
        if self._clock() >= self._inventory_due:
            await self.take_inventory()
            self._inventory_due = self._clock() + self._settings.interval
        await self.read_due_listings()
        await self.read_due_volumes()
        self._publish()
        if self._render is not None:
            self._render()
        listings = [*self._listings.values(), *self._volume_listings.values()]
        due = min([self._inventory_due, *(read.next_read for read in listings)])
        return min(max(due - self._clock(), 1.0), self._poll.interval)

    # --- the inventory ---

    async def take_inventory(self) -> bool:
        """List projects, their addons and volumes, and the schedules that are due; what a
        listing that fails held before is kept. True when every listing was read."""
        try:
            raw_projects = await self._client.listed(PROJECTS_ENDPOINT, "/projects", "projects")
        except ApiError as error:
            self._failed("projects", error)
            self._inventory_ok = False
            return False
        ok = True
        projects = {}
        for project in self._read_all(raw_projects, "projects", read_project):
            if project.status not in GONE_PROJECT_STATUSES:
                projects[project.id] = project
        addons: dict[tuple[str, str], Addon] = {}
        volumes: dict[str, tuple[Volume, ...]] = {}
        for project in projects.values():
            ok = await self._list_project(project, addons, volumes) and ok
        self._projects, self._addons, self._volumes = projects, addons, volumes
        for key, addon in self._unlisted_first(addons):
            if self._schedules_due(self._schedules.get(key), addon.status):
                ok = await self._read_schedules(key, addon) and ok
        for gone in set(self._schedules) - set(addons):
            del self._schedules[gone]
        ok = await self._read_volume_schedules(volumes) and ok
        self._inventory_ok = ok
        if ok:
            self._last_inventory = self._clock()
            self._told.clear()
        return ok

    async def _list_project(
        self,
        project: Project,
        addons: dict[tuple[str, str], Addon],
        volumes: dict[str, tuple[Volume, ...]],
    ) -> bool:
        """One project's addons and volumes; on a failure, what was known of them before."""
        ok = True
        base = f"/projects/{quote(project.id, safe='')}"
        try:
            raw = await self._client.listed(ADDONS_ENDPOINT, f"{base}/addons", "addons")
        except ApiError as error:
            self._failed("addons", error)
            ok = False
            addons.update((k, a) for k, a in self._addons.items() if k[0] == project.id)
        else:
            for addon in self._read_all(raw, "addons", lambda item: read_addon(item, project)):
                if self._settings.wants(project.id, addon.id):
                    addons[(project.id, addon.id)] = addon
        try:
            raw = await self._client.listed(VOLUMES_ENDPOINT, f"{base}/volumes", None)
        except ApiError as error:
            self._failed("volumes", error)
            ok = False
            volumes[project.id] = self._volumes.get(project.id, ())
        else:
            read = self._read_all(raw, "volumes", lambda item: read_volume(item, project))
            volumes[project.id] = tuple(
                volume for volume in read if self._settings.wants(project.id, volume.id)
            )
        return ok

    def _unlisted_first(
        self, addons: dict[tuple[str, str], Addon]
    ) -> list[tuple[tuple[str, str], Addon]]:
        """The addons no destination lists with scheduled backups first: only those can be
        unprotected, so a budget too small for every schedule read finds them first."""
        listed = self._listed()
        return sorted(addons.items(), key=lambda item: (item[0] in listed, item[0]))

    def _schedules_due(self, known: _ReadSchedules | None, status: str) -> bool:
        """A new addon's (or volume's) schedules are read at once; known ones when its status
        changed or the last read is schedules_max_age old (schedules rarely change)."""
        if known is None or known.status != status:
            return True
        return self._clock() - known.read_at >= self._settings.schedules_max_age

    async def _read_volume_schedules(self, volumes: dict[str, tuple[Volume, ...]]) -> bool:
        """The backup-schedules of each volume whose item left them out, when due."""
        ok = True
        wanted = set()
        for found in volumes.values():
            for volume in found:
                key = (volume.project, volume.id)
                self._first_seen.setdefault(key, self._clock())
                if volume.schedules is not None:
                    continue
                wanted.add(key)
                known = self._volume_schedules.get(key)
                if not self._schedules_due(known, volume.status):
                    continue
                try:
                    raw = await self._client.volume_schedules(*key)
                    schedules = tuple(read_volume_schedule(item) for item in raw)
                except ApiError as error:
                    self._failed("volume schedules", error)
                    ok = False
                    continue
                except InvalidItem as problem:
                    log.warning(
                        self._prefix("volume=%s/%s has a schedule that cannot be read: %s"),
                        *key,
                        problem,
                    )
                    ok = False
                    continue
                self._volume_schedules[key] = _ReadSchedules(
                    self._clock(), volume.status, schedules
                )
        for gone in set(self._volume_schedules) - wanted:
            del self._volume_schedules[gone]
        listed = {(v.project, v.id) for found in volumes.values() for v in found}
        for gone in set(self._first_seen) - listed:
            del self._first_seen[gone]
        return ok

    def _volumes_known(self) -> tuple[Volume, ...]:
        """Every volume, with its schedules as its item or its backup-schedules said (None
        while neither has been read)."""
        known = []
        for _, found in sorted(self._volumes.items()):
            for volume in found:
                read = self._volume_schedules.get((volume.project, volume.id))
                if volume.schedules is None and read is not None:
                    known.append(replace(volume, schedules=read.schedules))
                else:
                    known.append(volume)
        return tuple(known)

    async def _read_schedules(self, key: tuple[str, str], addon: Addon) -> bool:
        try:
            raw = await self._client.addon_schedules(*key)
        except ApiError as error:
            self._failed("schedules", error)
            return False
        schedules = []
        for item in raw:
            try:
                schedules.append(read_addon_schedule(item))
            except InvalidItem as problem:
                # one unreadable schedule makes the count unknowable: keep what was known
                log.warning(
                    self._prefix("addon=%s/%s has a schedule that cannot be read: %s"),
                    *key,
                    problem,
                )
                return False
        self._schedules[key] = _ReadSchedules(self._clock(), addon.status, tuple(schedules))
        return True

    def _read_all(self, raw: list[Any], what: str, read: Callable[[Any], Any]) -> list[Any]:
        """Every item that can be read; the others are skipped with one line for the lot."""
        items, invalid = [], []
        for item in raw:
            try:
                items.append(read(item))
            except InvalidItem as problem:
                invalid.append(str(problem))
        if invalid:
            log.warning(
                self._prefix("skipped %d %s that cannot be read; first: %s"),
                len(invalid),
                what,
                invalid[0],
            )
        return items

    def _failed(self, what: str, error: ApiError) -> None:
        """One line per listing and code until a round reads everything: a token without a
        permission fails the same way on every round, and one line says so. A listing the
        budget did not allow (`--once`) is counted in `left_out`, which says it all at once."""
        if error.code == BUDGET:
            self.left_out[what] = self.left_out.get(what, 0) + 1
            return
        if (what, error.code) in self._told:
            return
        self._told.add((what, error.code))
        if error.code in TOKEN_PROBLEMS:
            log.warning(
                self._prefix(
                    "the API token may not list %s (HTTP %s): it needs the permission %s. "
                    "Destinations are still polled; northflank_coverage_up is 0 (%s)"
                ),
                what,
                error.code,
                PERMISSIONS[LISTINGS[what]],
                error,
            )
        else:
            log.warning(self._prefix("listing %s failed code=%s: %s"), what, error.code, error)

    # --- managed-storage backups ---

    def _managed_addons(self) -> dict[tuple[str, str], tuple[CoverageSchedule, ...]]:
        """The addons whose schedules keep backups in managed storage, with those schedules."""
        wanted = {}
        for key, known in self._schedules.items():
            managed = CoveredAddon(self._addons[key], known.schedules).managed
            if managed and self._rules.wants(*key):
                wanted[key] = managed
        return wanted

    async def read_due_listings(self) -> None:
        wanted = self._managed_addons()
        for gone in set(self._listings) - set(wanted):
            del self._listings[gone]
        self._syncer.forget_all_but({f"{p}/{a}" for p, a in wanted})
        now = self._clock()
        due = [
            key
            for key in wanted
            if key not in self._listings or self._listings[key].next_read <= now
        ]
        await asyncio.gather(*(self._bounded_read(key, wanted[key]) for key in due))

    async def _bounded_read(
        self, key: tuple[str, str], managed: tuple[CoverageSchedule, ...]
    ) -> None:
        async with self._limit:
            await self._read_listing(key, managed)

    async def _read_listing(
        self, key: tuple[str, str], managed: tuple[CoverageSchedule, ...]
    ) -> None:
        listing = self._listings.setdefault(key, _Listing())
        slots = tuple(declared.schedule for declared in managed)
        now = self._clock()
        try:
            result = await self._syncer.sync(f"{key[0]}/{key[1]}", now)
        except ApiError as error:
            self._failed("managed backups", error)
            self._listing_failed(listing, now)
            return
        backups = [
            kept
            for backup in result.store
            if not (kept := _with_expiry(backup, managed, self._rules.tolerance)).is_expired(now)
        ]
        listing.summary = self._summarize(key, backups, slots, now) if backups else None
        listing.read_at = listing.last_success = now
        listing.up = True
        offsets = week_offsets(slots)
        summary = listing.summary
        listing.next_read = self._next_read(
            offsets,
            None if summary is None else summary.newest_completed_created,
            None if summary is None else summary.oldest_created,
            None if summary is None else summary.last_completed_duration,
            now,
        )

    def _listing_failed(self, listing: _Listing, now: float) -> None:
        """Its last good summary while fresh; read again in a poll interval."""
        listing.up = False
        fresh = listing.last_success is not None and (
            now - listing.last_success <= self._poll.stale_after
        )
        listing.summary = listing.summary if fresh else None
        listing.next_read = now + self._poll.interval

    def _summarize(
        self, key: tuple[str, str], backups: list[Any], slots: tuple[Schedule, ...], now: float
    ) -> AddonSummary:
        summary = summarize_addon(
            key[0],
            key[1],
            backups,
            now=now,
            warn_until=now + self._expiry_warning_window,
            rules=self._rules,
            declared=slots,
        )
        addon = self._addons[key]
        # the listing names neither the project, the addon nor its type: the inventory does
        return replace(
            summary,
            project_name=addon.project_name,
            addon_name=addon.name,
            addon_type=addon.type,
        )

    def _next_read(
        self,
        offsets: tuple[int, ...],
        newest_completed_created: float | None,
        oldest_created: float | None,
        last_duration: float | None,
        now: float,
    ) -> float:
        """When a listing is read next: on the cadence of `cadence.py`."""
        unanswered = None
        if oldest_created is not None and offsets:
            unanswered = first_uncovered_slot(
                offsets, newest_completed_created, oldest_created, self._rules.tolerance
            )
        return next_read(
            offsets,
            read_at=now,
            first_unanswered=unanswered,
            usual=usual_run(last_duration, self._rules.grace),
            grace=self._rules.grace,
            retry=self._poll.interval,
            heartbeat=self._settings.interval,
        )

    # --- volume backups ---

    async def read_due_volumes(self) -> None:
        """Read the backups of each scheduled volume whose read is due."""
        scheduled = {
            (volume.project, volume.id): volume
            for volume in self._volumes_known()
            if volume.schedules and volume.active
        }
        for gone in set(self._volume_listings) - set(scheduled):
            del self._volume_listings[gone]
        now = self._clock()
        due = [
            key
            for key in scheduled
            if key not in self._volume_listings or self._volume_listings[key].next_read <= now
        ]
        await asyncio.gather(*(self._bounded_volume_read(scheduled[key]) for key in due))

    async def _bounded_volume_read(self, volume: Volume) -> None:
        async with self._limit:
            await self._read_volume(volume)

    async def _read_volume(self, volume: Volume) -> None:
        key = (volume.project, volume.id)
        listing = self._volume_listings.setdefault(key, _Listing())
        now = self._clock()
        try:
            raw = await self._client.volume_backups(*key)
        except ApiError as error:
            self._failed("volume backups", error)
            self._listing_failed(listing, now)
            return
        backups = self._read_all(raw, "volume backups", read_volume_backup)
        summary = summarize_volume(
            volume,
            _unexpired(backups, volume, now),
            now=now,
            rules=self._rules,
            known_since=self._first_seen.get(key, now),
        )
        listing.summary = summary
        listing.read_at = listing.last_success = now
        listing.up = True
        listing.next_read = self._next_read(
            () if summary is None else summary.offsets,
            None if summary is None else summary.last_completed,
            None if summary is None else summary.oldest_created,
            None,
            now,
        )

    # --- what is exported ---

    def _publish(self) -> None:
        addons = tuple(
            CoveredAddon(
                addon, None if key not in self._schedules else self._schedules[key].schedules
            )
            for key, addon in sorted(self._addons.items())
        )
        listings = [self._listings[key] for key in sorted(self._listings)]
        volume_listings = [self._volume_listings[key] for key in sorted(self._volume_listings)]
        up = None
        if self._inventory_ok is not None:
            up = self._inventory_ok and all(listing.up for listing in (*listings, *volume_listings))
        self.snapshot = CoverageSnapshot(
            up=up,
            last_success=self._last_inventory,
            addons=addons,
            volumes=self._volumes_known(),
            managed=tuple(read.summary for read in listings if read.summary is not None),
            volume_health=tuple(
                read.summary for read in volume_listings if read.summary is not None
            ),
            rules=self._rules,
        )


def _with_expiry(backup: Backup, managed: tuple[CoverageSchedule, ...], tolerance: float) -> Backup:
    """The backup with its expiry, where its listing gives none (managed storage) and the
    schedule whose slot it answers says how long it is kept: createdAt + retentionTime days.
    A backup no schedule's slot explains (one taken by hand) keeps no expiry: unknown."""
    if backup.expires is not None:
        return backup
    kept = None
    for declared in managed:
        offsets = week_offsets((declared.schedule,))
        if declared.retention_days is None or not offsets:
            continue
        if backup.created - last_slot(offsets, backup.created + tolerance) <= tolerance:
            days = declared.retention_days
            kept = days if kept is None else max(kept, days)
    return backup if kept is None else backup._replace(expires=backup.created + kept * DAY)


def _unexpired(backups: list[VolumeBackup], volume: Volume, now: float) -> list[VolumeBackup]:
    """A volume's backups within the longest retention its schedules declare (a listing may
    still show one a little past it; without a retention, all are kept)."""
    days = [s.retention_days for s in volume.schedules or () if s.retention_days is not None]
    if not days:
        return backups
    return [backup for backup in backups if backup.created + max(days) * DAY > now]
