"""Full and incremental syncs of one destination's backups into a BackupStore.

Backups change at the head of the list: new ones appear, recent ones move from scheduled to
in-progress to completed; old ones only disappear when they expire. An incremental sync reads
pages from the newest until it has passed every backup that could still change and reached one
that is final and unchanged, then splices what it read onto the rows it already holds. Anything
that does not fit that picture (a page not newest-first, a known backup missing inside the head,
a page whose count disagrees with its items) is a Misfit, and the caller resyncs in full.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from exporter.api import PAGE_CAP_SLACK, PER_PAGE, TOO_LARGE, TOO_MANY_PAGES, ApiError, Page
from exporter.backups import read_page
from exporter.budget import Spend
from exporter.durations import format_duration
from exporter.model import RUNNING_STATUSES, Backup
from exporter.store import BackupStore, id_hash

log = logging.getLogger(__name__)


class Misfit(Exception):
    """The head of the list does not fit what is held; `reason` labels the full resync."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class SyncResult:
    store: BackupStore
    pages: int = 0
    invalid: int = 0
    first_invalid: str | None = None
    ordered: bool = True
    duplicates: int = 0  # backups listed again under an id this read had already counted
    # backups the last full read found listed past their expiredBy (kept out of the store)
    expired_listed: int = 0


@dataclass
class _Reader:
    """Reads pages, counting the items that cannot be used."""

    now: float | None = None  # when the pages are read
    result: SyncResult = field(default_factory=lambda: SyncResult(BackupStore()))

    def read(self, page: Page) -> list[Backup]:
        backups, invalid = read_page(page.items, self.now)
        if invalid:
            self.result.invalid += len(invalid)
            if self.result.first_invalid is None:
                self.result.first_invalid = invalid[0]
        return backups


def _check_count(page: Page) -> None:
    count = page.count
    if isinstance(count, int | float) and not isinstance(count, bool) and count != len(page.items):
        raise Misfit("count", f"a page says it holds {count} items and holds {len(page.items)}")


OnPage = Callable[[int, int | None], None]  # (pages read so far, estimated pages in all)
# A walk may go this far past what its first page led to expect before it is cut as endless
# (a cursor that changes on every page, with or without data): twice the estimate and a bit.
PAGE_CAP_FACTOR = 2


def page_cap(expected_pages: int) -> int:
    """How many pages a walk expected to take `expected_pages` may read before it is cut."""
    return PAGE_CAP_FACTOR * expected_pages + PAGE_CAP_SLACK


def _cut_endless(pages: int, expected: int | None, empty_in_a_row: int = 0) -> None:
    if empty_in_a_row > PAGE_CAP_SLACK:
        raise ApiError(
            f"{empty_in_a_row} empty pages in a row, each pointing to another: cut as endless",
            "too_many_pages",
        )
    if expected is not None and pages > page_cap(expected):
        raise ApiError(
            f"the listing goes on past {page_cap(expected)} pages, and about {expected} were "
            "expected from its first page: cut as endless",
            "too_many_pages",
        )


class PageEstimate:
    """How many pages a full read takes, judged from the backups read so far (None when it
    cannot tell).

    `pagination.count` only counts the page's own items, so the estimate comes from time. Each
    scheduled backup stands for a stream (its addon's schedule) kept for its retention
    (expiredBy - createdAt): of a stream kept R seconds, the S seconds read so far show the
    share min(S, R) / R of what it lists, so each of its backups read stands for max(R / S, 1).
    A backup taken by hand stands only for itself. A stream too slow to show on the first page
    (a daily addon among hourly ones) is missing from the first estimate: it grows as pages are
    read, and is revised before a walk is cut (`full_sync`).
    """

    def __init__(self, items_per_page: int) -> None:
        self.items_per_page = items_per_page
        self.newest: float | None = None
        self.oldest: float | None = None
        self.streams: array[float] = array("d")  # retention of each scheduled backup read
        self.others: array[float] = array("d")  # of each backup by hand that has an expiry
        self.one_offs = 0  # backups by hand

    def add(self, backups: list[Backup]) -> None:
        for backup in backups:
            self.newest = backup.created if self.newest is None else self.newest
            self.oldest = backup.created
            if backup.schedules and backup.expires is not None:
                self.streams.append(backup.expires - backup.created)
                continue
            self.one_offs += 1
            if backup.expires is not None:
                self.others.append(backup.expires - backup.created)

    def pages(self) -> int | None:
        if self.newest is None or self.oldest is None or self.newest <= self.oldest:
            return None
        span = self.newest - self.oldest
        if self.streams:
            listed = sum(max(kept / span, 1.0) for kept in self.streams) + self.one_offs
        elif self.others:  # nothing scheduled: take every backup for a stream
            listed = sum(max(kept / span, 1.0) for kept in self.others)
        else:
            return None
        return max(1, math.ceil(listed / self.items_per_page))


async def full_sync(
    pages: AsyncIterator[Page],
    now: float,
    on_page: OnPage | None = None,
    max_items: int | None = None,
) -> SyncResult:
    """Every page; the store holds every listed backup that has not expired. With `max_items`
    (a listing that cannot hold more, such as one addon's), a walk is cut past that many items
    or past the pages they take, as the inventory's listings are (`client.listed`)."""
    reader = _Reader(now)
    result = reader.result
    previous = math.inf
    estimate: int | None = None
    reckoning: PageEstimate | None = None
    seen: set[int] = set()
    empty_in_a_row = 0
    async for page in pages:
        result.pages += 1
        empty_in_a_row = 0 if page.items else empty_in_a_row + 1
        backups = reader.read(page)
        fresh = []
        for backup in backups:
            if id_hash(backup.id) in seen:
                # counted once; a listing that repeats itself is read in full until it stops
                result.duplicates += 1
                result.ordered = False
                continue
            seen.add(id_hash(backup.id))
            if backup.created > previous:
                result.ordered = False
            previous = backup.created
            if backup.is_expired(now):
                result.expired_listed += 1
            else:
                result.store.append(backup)
                fresh.append(backup)
        if reckoning is None:
            reckoning = PageEstimate(max(len(page.items), 1))
        reckoning.add(fresh)
        if result.pages == 1 or (estimate is not None and result.pages > page_cap(estimate)):
            # revised only where the walk would be cut; a page repeated adds nothing to it, nor
            # does a backup past its expiry: an endless listing still meets its cap
            estimate = reckoning.pages()
        _cut_endless(result.pages, estimate, empty_in_a_row)
        if max_items is not None:
            _cut_at(max_items, result)
        if on_page is not None:
            on_page(result.pages, estimate)
    return result


def _cut_at(max_items: int, result: SyncResult) -> None:
    most_pages = -(-max_items // PER_PAGE) + PAGE_CAP_SLACK
    if result.pages > most_pages:
        raise ApiError(
            f"more than {most_pages} pages, past what the cap of {max_items} items takes: cut "
            "as endless",
            TOO_MANY_PAGES,
        )
    listed = len(result.store) + result.expired_listed + result.duplicates
    if listed > max_items:
        raise ApiError(
            f"more than {max_items} items, the cap for this listing: cut (docs/design.md, Limits)",
            TOO_LARGE,
        )


async def incremental_sync(
    pages: AsyncIterator[Page], held: BackupStore, now: float, on_page: OnPage | None = None
) -> SyncResult:
    """Read the head until it meets what is held, then splice; raise Misfit when it cannot."""
    reader = _Reader(now)
    result = reader.result
    head: list[Backup] = []
    row = 0  # the held row the walk has reached
    deepest_changeable = held.last_running_row()
    previous = math.inf
    reached: float | None = None  # the createdAt at which the head met what is held
    seen: set[int] = set()
    async for page in pages:
        result.pages += 1
        # an incremental walk never needs more than what is held, read again
        _cut_endless(result.pages, -(-len(held) // PER_PAGE) + 1)
        if on_page is not None:
            on_page(result.pages, None)
        _check_count(page)
        for backup in reader.read(page):
            hashed = id_hash(backup.id)
            if hashed in seen:
                raise Misfit("duplicate", f"backup {backup.id!r:.60} is listed twice")
            if backup.created > previous:
                raise Misfit("order", "the backups are not listed newest first")
            previous = backup.created
            row = _skip_gone(held, row, backup.created, now, seen)
            if row < len(held) and held.holds(row, backup):
                unchanged = held.same(row, backup)
                row += 1
                if (
                    reached is None
                    and unchanged
                    and backup.status not in RUNNING_STATUSES
                    and (row > deepest_changeable)
                ):
                    reached = backup.created
            seen.add(hashed)
            head.append(backup)
        # Stop once past every backup that shares the createdAt where the head met what is
        # held: a new one may be listed anywhere among them.
        if reached is not None and previous < reached:
            break
    else:
        row = len(held)  # the walk read the whole list: nothing held is still needed
    # Backups that share a createdAt may be listed in any order (the API promises none among
    # them): one the head read out of the held order is dropped from the tail, never kept twice.
    result.store = held.spliced(head, row, now, read=seen)
    return result


def _skip_gone(held: BackupStore, row: int, created: float, now: float, read: set[int]) -> int:
    """Pass held rows the head has read already (ties listed in another order), and rows newer
    than `created` that the API no longer lists: those must have expired."""
    while row < len(held):
        if held.ids[row] in read:
            row += 1
            continue
        if held.created[row] <= created:
            break
        if not held.is_expired(row, now):
            raise Misfit("vanished", "a backup that has not expired vanished from the head")
        row += 1
    return row


@dataclass
class SyncState:
    """What is held for one destination between polls."""

    store: BackupStore | None = None
    last_full: float | None = None
    ordered: bool = True
    expired_listed: int = 0  # as of the last full read
    resync_every: float | None = None  # paced by what resyncs find (None: as configured)

    def full_sync_reason(self, now: float, resync_interval: float, incremental: bool) -> str | None:
        """Why this poll must read every page, or None for an incremental one."""
        if self.store is None or self.last_full is None:
            return "initial"
        if not incremental:
            return "disabled"
        if not self.ordered:
            return "unordered"
        if now - self.last_full >= (self.resync_every or resync_interval):
            return "scheduled"
        return None


# A backup this close to its expiry may be gone from a full read without having been missed.
EXPIRY_MARGIN = 3600.0


def missed_by_increments(held: BackupStore, full: BackupStore, now: float) -> int:
    """How many backups a full read lists otherwise than the incremental reads held them: below
    the newest held one (newer backups may have come since), a held backup no longer listed
    though it has not expired (deleted by hand), one listed that was never held, and a final
    one whose status changed. Backups that were still running may have changed, and those
    about to expire may be gone already (the API's clock, and the read's own length): not
    counted."""
    if not len(held):
        return 0
    below = held.created[0]
    listed = {}
    for row in range(len(full)):
        if full.created[row] < below:
            listed[full.ids[row]] = full.status(row)
    missed = 0
    for row in range(len(held)):
        if held.created[row] >= below:
            continue
        status = listed.pop(held.ids[row], None)
        if held.is_expired(row, now + EXPIRY_MARGIN):
            continue
        was = held.status(row)
        if status is None or (status != was and was not in RUNNING_STATUSES):
            missed += 1
    return missed + len(listed)


PagesOf = Callable[[str, Spend], AsyncIterator[Page]]  # (destination, what the read is for)
# Told of every page a destination's read has got through: (destination, what the read is for:
# Spend.POLL for an incremental read, pages read so far, estimated pages of the whole read, None
# when unknown).
OnDestinationPage = Callable[[str, Spend, int, int | None], None]
# Full syncs that count as resyncs: not the first one, nor those of a destination that is
# read in full on every poll anyway.
NOT_RESYNCS = frozenset({"initial", "disabled", "unordered"})
# A resync that finds nothing the incremental reads missed (no backup deleted by hand, none
# listed late) stretches the next one, up to this many times poll.full_resync_interval: on the
# backtest's default fleet, resyncs every 6 hours were a quarter of the destinations' requests.
RESYNC_STRETCH = 4


class Syncer:
    """Chooses full or incremental for each poll of each destination and keeps the stores."""

    def __init__(
        self,
        pages_of: PagesOf,
        resync_interval: float,
        incremental: bool,
        on_page: OnDestinationPage | None = None,
        max_items: int | None = None,
    ) -> None:
        """`max_items`: the most a listing may hold before a full read is cut (none for a
        destination's, which `poll.max_pages` and the page estimate bound)."""
        self._pages_of = pages_of
        self._max_items = max_items
        self._on_page = on_page
        self._resync_interval = resync_interval
        self._incremental = incremental
        self._states: dict[str, SyncState] = {}
        self._costs: dict[str, tuple[float, float]] = {}  # (last full, incremental average)
        self.pages_fetched: Counter[tuple[str, str]] = Counter()
        self.resyncs: Counter[tuple[str, str]] = Counter()

    async def sync(self, destination: str, now: float) -> SyncResult:
        """Bring the destination's store up to date; on any error the held store is kept."""
        state = self._states.setdefault(destination, SyncState())
        reason = state.full_sync_reason(now, self._resync_interval, self._incremental)
        if reason is None and state.store is not None:
            try:
                result = await incremental_sync(
                    self._counted(destination, "incremental", Spend.POLL),
                    state.store,
                    now,
                    self._reporter(destination, Spend.POLL),
                )
            except Misfit as misfit:
                log.info("destination=%s full resync (%s): %s", destination, misfit.reason, misfit)
                reason = misfit.reason
            else:
                state.store = result.store
                result.expired_listed = state.expired_listed
                self._note_cost(destination, incremental=result.pages)
                return result
        if reason is not None and reason not in NOT_RESYNCS:
            self.resyncs[(destination, reason)] += 1
        held = state.store
        # the first read is discovery; a resync can wait behind the polls and discovery
        spend = Spend.DISCOVERY if reason == "initial" else Spend.BACKGROUND
        result = await full_sync(
            self._counted(destination, "full", spend),
            now,
            self._reporter(destination, spend),
            self._max_items,
        )
        if result.duplicates:
            log.warning(
                "destination=%s listed %d backups more than once: each counted once",
                destination,
                result.duplicates,
            )
        if state.ordered and not result.ordered:
            log.warning(
                "destination=%s lists backups out of order: reading every page on "
                "every poll until it does not",
                destination,
            )
            self.resyncs[(destination, "fallback")] += 1
        state.store, state.last_full, state.ordered = result.store, now, result.ordered
        state.expired_listed = result.expired_listed
        self._pace_resyncs(destination, state, reason=reason, held=held, full=result.store, now=now)
        self._note_cost(destination, full=result.pages)
        return result

    def _pace_resyncs(
        self,
        destination: str,
        state: SyncState,
        *,
        reason: str | None,
        held: BackupStore | None,
        full: BackupStore,
        now: float,
    ) -> None:
        """A scheduled resync that finds what the incremental reads held doubles the time to
        the next, up to RESYNC_STRETCH times the configured interval; one that finds more, or a
        head that did not fit, brings the configured interval back (said once)."""
        configured = self._resync_interval
        every = state.resync_every or configured
        if reason == "scheduled" and held is not None:
            missed = missed_by_increments(held, full, now)
            if not missed:
                state.resync_every = min(every * 2, configured * RESYNC_STRETCH)
                return
            why = f"it found {missed} backups the incremental reads had not"
        elif reason is not None and reason not in NOT_RESYNCS:
            why = f"the head did not fit ({reason})"
        else:
            return
        if every > configured:
            log.info(
                "destination=%s is read in full every %s again: %s",
                destination,
                format_duration(configured),
                why,
            )
        state.resync_every = configured

    def _reporter(self, destination: str, spend: Spend) -> OnPage | None:
        """Tells `on_page` of each page; a full read's estimate falls back on the last one's."""
        report = self._on_page
        if report is None:
            return None
        last_full = self._costs.get(destination, (0.0, 1.0))[0]

        def on_page(read: int, estimate: int | None) -> None:
            if estimate is None and spend is not Spend.POLL and last_full:
                estimate = int(last_full)
            report(destination, spend, read, estimate)

        return on_page

    async def _counted(self, destination: str, mode: str, spend: Spend) -> AsyncIterator[Page]:
        async for page in self._pages_of(destination, spend):
            self.pages_fetched[(destination, mode)] += 1
            yield page

    def _note_cost(
        self, destination: str, *, full: int | None = None, incremental: int | None = None
    ) -> None:
        last_full, average = self._costs.get(destination, (0.0, 1.0))
        if full is not None:
            last_full = float(full)
        if incremental is not None:
            average = 0.7 * average + 0.3 * incremental
        self._costs[destination] = (last_full, average)

    def requests_per_poll(self, destination: str, interval: float) -> float:
        """Expected pages a poll of the destination costs, resyncs spread over their interval."""
        last_full, average = self._costs.get(destination, (1.0, 1.0))
        state = self._states.get(destination)
        if state is None or not self._incremental or not state.ordered:
            return max(last_full, 1.0)
        resync_every = state.resync_every or self._resync_interval
        return average + last_full * min(1.0, interval / resync_every)

    def stores(self) -> list[BackupStore]:
        """What incremental sync holds, one store per destination read so far."""
        return [state.store for state in self._states.values() if state.store is not None]

    def forget_all_but(self, destinations: set[str]) -> None:
        for gone in set(self._states) - destinations:
            del self._states[gone]
            self._costs.pop(gone, None)
