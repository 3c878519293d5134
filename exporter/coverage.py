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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from exporter.addons import AddonSummary, summarize_addon
from exporter.budget import RequestBudget
from exporter.cadence import next_read, usual_run
from exporter.client import (
    ADDON_BACKUPS_ENDPOINT,
    ADDON_SCHEDULES_ENDPOINT,
    ADDONS_ENDPOINT,
    BUDGET,
    PERMISSIONS,
    PROJECTS_ENDPOINT,
    TOKEN_PROBLEMS,
    TOO_LARGE,
    VOLUME_BACKUPS_ENDPOINT,
    VOLUME_SCHEDULES_ENDPOINT,
    VOLUMES_ENDPOINT,
    ApiError,
)
from exporter.config import CoverageSettings
from exporter.context import AccountLoops
from exporter.durations import format_duration
from exporter.inventory import (
    GONE_PROJECT_STATUSES,
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
from exporter.progress import PROGRESS_EVERY, InventoryProgress
from exporter.schedule import DAY, HOUR, first_uncovered_slot, last_slot, week_offsets
from exporter.snapshot import CoverageSnapshot, CoveredAddon
from exporter.supervise import first_of
from exporter.sync import Syncer
from exporter.volumes import VolumeSummary, summarize_volume

log = logging.getLogger(__name__)

# The codes of a listing cut short: at its size cap (client.INVENTORY_MAX_ITEMS, MAX_SCHEDULES)
# or as an endless walk.
CUT = frozenset({TOO_LARGE, "too_many_pages"})
# Re-reading the schedules of addons that destinations list may take this share of the budget.
LISTED_REFRESH_SHARE = 0.25

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
        loops: AccountLoops,
        *,
        settings: CoverageSettings,
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
        self._listed_addons = listed or set
        self._loops = loops
        account, client, poll = loops.account, loops.client, loops.poll
        self._account = account
        self._client = client
        self._settings = settings
        self._poll = poll
        self._rules = loops.addons
        self._expiry_warning_window = loops.expiry_warning_window
        self._clock = loops.clock
        self._render = loops.render
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
        self._cut: Counter[str] = Counter()  # listings cut at a cap or as endless, by kind
        self._progress: InventoryProgress | None = None  # the inventory round under way
        # the addons destinations list with scheduled backups, as of this round, and how old
        # their schedules may get (_stretch_listed_max_age)
        self._listed_now: set[tuple[str, str]] = set()
        self._listed_max_age = settings.schedules_max_age
        self.snapshot = snapshot or CoverageSnapshot(rules=loops.addons)

    def _prefix(self, text: str) -> str:
        return f"account={self._account.name} coverage: {text}"

    async def run(self, stop: asyncio.Event) -> None:
        if self._after is not None:
            await first_of(self._after.wait(), stop.wait())
        await self._loops.run(self.loop_name, self.step, stop)

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
        listing that fails held before is kept. True when every listing was read.

        The addons no destination lists with scheduled backups come first: only those can be
        unprotected, so their schedules are read, and shown on /metrics, before the volumes
        and the rest (a budget too small for the whole round finds them first)."""
        self._progress = InventoryProgress(self._expected_requests())
        try:
            return await self._inventory()
        finally:
            self._progress = None

    async def _inventory(self) -> bool:
        try:
            raw_projects = await self._listed(
                "projects", PROJECTS_ENDPOINT, "/projects", "projects"
            )
        except ApiError as error:
            self._failed("projects", error)
            self._inventory_ok = False
            return False
        projects = {}
        for project in self._read_all(raw_projects, "projects", read_project):
            if project.status not in GONE_PROJECT_STATUSES:
                projects[project.id] = project
        self._expect("addons", len(projects))
        self._expect("volumes", len(projects))
        addons: dict[tuple[str, str], Addon] = {}
        ok = True
        for project in projects.values():
            ok = await self._list_addons(project, addons) and ok
        self._projects, self._addons = projects, addons
        for gone in set(self._schedules) - set(addons):
            del self._schedules[gone]
        unlisted, listed = self._unlisted_first(addons)
        self._expect("schedules", sum(self._schedules_due_for(key, a) for key, a in addons.items()))
        ok = await self._read_due_schedules(unlisted) and ok
        # addons backed up only to managed storage are among them: their health comes now too
        await self.read_due_listings()
        self._show()  # whatever may be unprotected is on /metrics now, before the rest
        volumes: dict[str, tuple[Volume, ...]] = {}
        for project in projects.values():
            ok = await self._list_volumes(project, volumes) and ok
        self._volumes = volumes
        self._expect(
            "volume schedules",
            sum(self._volume_schedules_due(v) for found in volumes.values() for v in found),
        )
        ok = await self._read_due_schedules(listed) and ok
        ok = await self._read_volume_schedules(volumes) and ok
        self._inventory_ok = ok
        if ok:
            self._last_inventory = self._clock()
            self._told.clear()
        return ok

    def _expected_requests(self) -> dict[str, int]:
        """What the round will cost, as far as the last round tells (1 a listing: most fit a
        page); refined as the round learns how many projects, addons and volumes there are."""
        projects = len(self._projects)
        return {
            "projects": 1,
            "addons": projects,
            "volumes": projects,
            "schedules": sum(self._schedules_due_for(k, a) for k, a in self._addons.items()),
            "volume schedules": sum(
                self._volume_schedules_due(volume)
                for found in self._volumes.values()
                for volume in found
            ),
        }

    def _expect(self, listing: str, requests: int) -> None:
        if self._progress is not None:
            self._progress.expect(listing, requests)

    async def _listed(
        self, listing: str, endpoint: str, path: str, key: str | None = None
    ) -> list[Any]:
        """All of an inventory listing (`data.{key}[]`, or `data[]` itself), as one request of
        the round."""
        return await self._sent(listing, self._client.listed(endpoint, path, key))

    async def _sent(self, listing: str, request: Awaitable[list[Any]]) -> list[Any]:
        """One request of the round: first say how long the rest will take, when it must wait
        for the budget (once, then at most every PROGRESS_EVERY)."""
        self._tell_progress()
        try:
            return await request
        finally:
            if self._progress is not None:
                self._progress.sent_one(listing)

    def _tell_progress(self) -> None:
        progress = self._progress
        budget = self._loops.budget
        if progress is None or budget is None or not budget.waits:
            return  # `--once` never waits: it says at the end what it left out
        now = self._clock()
        progress.seconds_left = budget.seconds_to_send(progress.requests_left())
        if not progress.announced:
            if progress.seconds_left > 0:
                progress.announced, progress.last_line = True, now
                log.warning(self._prefix(self._why_slow(progress, budget)))
                self._show()
        elif now - progress.last_line >= PROGRESS_EVERY:
            progress.last_line = now
            log.info(
                self._prefix("inventory progress: %d requests sent, about %d left (%s), about %s"),
                progress.sent,
                progress.requests_left(),
                progress.described(),
                format_duration(progress.seconds_left),
            )
            self._show()

    def _why_slow(self, progress: InventoryProgress, budget: RequestBudget) -> str:
        paused = budget.window.paused_until - self._clock()
        if paused > 0:
            cause = f"API requests are paused for {format_duration(paused)}"
        else:
            cause = (
                f"the budget allows {budget.allows_now(full_read=True)} more now (a round may "
                f"fill {budget.limit(full_read=True)} of rate_limit.requests_per_hour="
                f"{budget.requests_per_hour}, a quarter kept for the destinations' polls)"
            )
        return (
            f"the inventory needs about {progress.requests_left()} more requests "
            f"({progress.described()}) and {cause}: it will take about "
            f"{format_duration(progress.seconds_left)}; addons that no destination lists are "
            "read first. A higher rate_limit.requests_per_hour, a longer "
            "coverage.schedules_max_age or coverage.include would shorten it"
        )

    def _show(self) -> None:
        """Publish what is known now and put it on /metrics (mid-round)."""
        self._publish()
        if self._render is not None:
            self._render()

    async def _list_addons(self, project: Project, addons: dict[tuple[str, str], Addon]) -> bool:
        """One project's addons; on a failure, what was known of them before."""
        path = f"/projects/{quote(project.id, safe='')}/addons"
        try:
            raw = await self._listed("addons", ADDONS_ENDPOINT, path, "addons")
        except ApiError as error:
            self._failed("addons", error)
            addons.update((k, a) for k, a in self._addons.items() if k[0] == project.id)
            return False
        for addon in self._read_all(raw, "addons", lambda item: read_addon(item, project)):
            if self._settings.wants(project.id, addon.id):
                addons[(project.id, addon.id)] = addon
        return True

    async def _list_volumes(self, project: Project, volumes: dict[str, tuple[Volume, ...]]) -> bool:
        """One project's volumes; on a failure, what was known of them before."""
        path = f"/projects/{quote(project.id, safe='')}/volumes"
        try:
            raw = await self._listed("volumes", VOLUMES_ENDPOINT, path)
        except ApiError as error:
            self._failed("volumes", error)
            volumes[project.id] = self._volumes.get(project.id, ())
            return False
        read = self._read_all(raw, "volumes", lambda item: read_volume(item, project))
        volumes[project.id] = tuple(
            volume for volume in read if self._settings.wants(project.id, volume.id)
        )
        return True

    def _unlisted_first(
        self, addons: dict[tuple[str, str], Addon]
    ) -> tuple[list[tuple[tuple[str, str], Addon]], list[tuple[tuple[str, str], Addon]]]:
        """The addons no destination lists with scheduled backups (only those can be
        unprotected), then the others."""
        listed = self._listed_addons()
        unlisted = [(key, addon) for key, addon in sorted(addons.items()) if key not in listed]
        others = [(key, addon) for key, addon in sorted(addons.items()) if key in listed]
        self._listed_now = {key for key, _ in others}
        self._stretch_listed_max_age(len(others))
        return unlisted, others

    def _stretch_listed_max_age(self, listed: int) -> None:
        """Re-reading the schedules of addons that destinations list (protected: the read only
        adds what they also send to managed storage) may take at most LISTED_REFRESH_SHARE of
        the budget: on a large account their max age stretches, with one line when it does.
        1,000 such addons at 300 requests an hour cost 167 an hour at the default 6h
        (bench/coverage.py), a budget that also polls the destinations."""
        configured = self._settings.schedules_max_age
        budget = self._loops.budget
        needed = (
            0.0
            if budget is None
            else (listed * HOUR / (LISTED_REFRESH_SHARE * budget.requests_per_hour))
        )
        stretched = max(configured, needed)
        if stretched > configured and stretched > self._listed_max_age * 1.1:
            log.warning(
                self._prefix(
                    "the schedules of the %d addons that destinations list are read again every "
                    "%s instead of coverage.schedules_max_age=%s, so that it takes at most a "
                    "quarter of rate_limit.requests_per_hour=%d (addons no destination lists "
                    "keep %s)"
                ),
                listed,
                format_duration(stretched),
                format_duration(configured),
                budget.requests_per_hour if budget else 0,
                format_duration(configured),
            )
        self._listed_max_age = stretched

    async def _read_due_schedules(self, addons: list[tuple[tuple[str, str], Addon]]) -> bool:
        ok = True
        for key, addon in addons:
            if self._schedules_due_for(key, addon):
                ok = await self._read_schedules(key, addon) and ok
        return ok

    def _schedules_due_for(self, key: tuple[str, str], addon: Addon) -> bool:
        max_age = self._listed_max_age if key in self._listed_now else None
        return self._schedules_due(self._schedules.get(key), addon.status, max_age)

    def _volume_schedules_due(self, volume: Volume) -> bool:
        if volume.schedules is not None:
            return False  # its item said them
        known = self._volume_schedules.get((volume.project, volume.id))
        return self._schedules_due(known, volume.status)

    def _schedules_due(
        self, known: _ReadSchedules | None, status: str, max_age: float | None = None
    ) -> bool:
        """A new addon's (or volume's) schedules are read at once; known ones when its status
        changed or the last read is `max_age` old (schedules_max_age unless stretched;
        schedules rarely change)."""
        if known is None or known.status != status:
            return True
        return self._clock() - known.read_at >= (max_age or self._settings.schedules_max_age)

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
                if not self._volume_schedules_due(volume):
                    continue
                try:
                    raw = await self._sent("volume schedules", self._client.volume_schedules(*key))
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
            raw = await self._sent("schedules", self._client.addon_schedules(*key))
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
        if error.code in CUT:
            self._cut[what] += 1
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
        progress = self._progress
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
            listings_cut=tuple(sorted(self._cut.items())),
            inventory_requests_left=0 if progress is None else progress.requests_left(),
            inventory_seconds_left=0.0 if progress is None else progress.seconds_left,
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
