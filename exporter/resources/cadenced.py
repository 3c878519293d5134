"""Listings read on a cadence rather than every round: an addon's managed-storage backups and
a volume's backups. What is known of each, and when it is read next (`cadence.py`)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from exporter.cadence import next_read, usual_run
from exporter.resources.unit import Pass, Unit
from exporter.schedule import WeekOffsets, first_uncovered_slot

if TYPE_CHECKING:
    from exporter.config import CoverageSettings
    from exporter.context import AccountLoops

Summary = TypeVar("Summary")
Subject = TypeVar("Subject")
Answer = TypeVar("Answer")
Key = tuple[str, str]


def heartbeat(coverage: CoverageSettings) -> float:
    """The longest a listing goes unread between its slots, for manual backups and deletions:
    as long as a known schedule is trusted (coverage.schedules_max_age), never less than an
    inventory. Slots, overdue moments and retries come sooner (cadence.py). The 100 volumes
    of bench/coverage.py cost 73 requests an hour read at least hourly, 41 at 6h."""
    return max(coverage.interval, coverage.schedules_max_age)


@dataclass
class Listing(Generic[Summary]):
    """What is known of one listing."""

    summary: Summary | None = None
    next_read: float = 0.0
    last_success: float | None = None
    up: bool = True


@dataclass(frozen=True, kw_only=True)
class Judged:
    """What the cadence needs of a summary: its slots, and how its newest backups went."""

    offsets: WeekOffsets
    answered_until: float | None
    oldest_created: float | None
    last_duration: float | None


class Listings(Generic[Summary]):
    """Each key's listing, read when due, its last good summary kept while fresh."""

    def __init__(self, loops: AccountLoops) -> None:
        self._loops = loops
        self.by_key: dict[Key, Listing[Summary]] = {}

    def due(self, key: Key, now: float) -> bool:
        listing = self.by_key.get(key)
        return listing is None or listing.next_read <= now

    def read(self, key: Key, summary: Summary | None, judged: Judged, now: float) -> None:
        listing = self.by_key.setdefault(key, Listing())
        listing.summary = summary
        listing.last_success = now
        listing.up = True
        listing.next_read = self._next_read(judged, now)

    def failed(self, key: Key, now: float) -> None:
        """Its last good summary while fresh; read again in a poll interval."""
        listing = self.by_key.setdefault(key, Listing())
        poll = self._loops.poll
        listing.up = False
        fresh = listing.last_success is not None and now - listing.last_success <= poll.stale_after
        listing.summary = listing.summary if fresh else None
        listing.next_read = now + poll.interval

    def _next_read(self, judged: Judged, now: float) -> float:
        """When a listing is read next: on the cadence of `cadence.py`."""
        rules = self._loops.addons
        offsets = judged.offsets
        unanswered = None
        if judged.oldest_created is not None and offsets:
            unanswered = first_uncovered_slot(
                offsets, judged.answered_until, judged.oldest_created, rules.tolerance
            )
        return next_read(
            offsets,
            read_at=now,
            first_unanswered=unanswered,
            usual=usual_run(judged.last_duration, rules.grace),
            grace=rules.grace,
            retry=self._loops.poll.interval,
            heartbeat=heartbeat(self._loops.coverage),
            longest_retry=self._loops.coverage.interval,
        )

    def forget_all_but(self, keys: Set[Key]) -> None:
        for gone in set(self.by_key) - keys:
            del self.by_key[gone]

    def next_due(self) -> float | None:
        return min((listing.next_read for listing in self.by_key.values()), default=None)

    def up(self) -> bool:
        return all(listing.up for listing in self.by_key.values())

    def summaries(self) -> list[Summary]:
        """Every known summary, by key."""
        found = []
        for key in sorted(self.by_key):
            summary = self.by_key[key].summary
            if summary is not None:
                found.append(summary)
        return found


class Cadenced(Unit[Key, Subject, Answer], Generic[Subject, Answer, Summary]):
    """A unit whose listings are read on the cadence: each key when its read is due, side by
    side, its last good summary kept while fresh."""

    passes = frozenset({Pass.CADENCE})
    concurrent = True

    def __init__(self, loops: AccountLoops) -> None:
        super().__init__(loops)
        self.listings: Listings[Summary] = Listings(loops)

    def due(self, key: Key, subject: Subject, now: float) -> bool:
        return self.listings.due(key, now)

    def failed(self, key: Key, subject: Subject, now: float) -> None:
        self.listings.failed(key, now)

    def forget_all_but(self, keys: Set[Key]) -> None:
        self.listings.forget_all_but(keys)

    def next_due(self) -> float | None:
        return self.listings.next_due()

    def up(self) -> bool:
        return self.listings.up()
