"""The immutable picture of everything the exporter knows, swapped in whole after each poll.

The collector renders one Snapshot and nothing else, so a scrape never mixes two polls and
whatever is not in the current snapshot (a deleted destination, a status no longer seen)
is simply not exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from exporter.aggregate import DestinationSummary
from exporter.config import AddonRules
from exporter.families import Table
from exporter.model import Destination

Row = TypeVar("Row")


@dataclass(frozen=True)
class DestinationState:
    destination: Destination
    polled: bool = False
    up: bool = False
    summary: DestinationSummary | None = None
    last_success: float | None = None
    last_duration: float | None = None
    invalid_total: int = 0
    duplicates_total: int = 0
    expired_listed: int = 0  # listed past their expiredBy, as of the last full read
    failing_since: float | None = None  # when the first failed read since the last good one ended
    next_read: float | None = None  # when its next read is due (poll_schedule.next_read)

    @property
    def all_expired(self) -> bool:
        """It lists backups, and every one of them has expired: nothing restorable is kept."""
        return self.summary is not None and self.summary.total == 0 and self.expired_listed > 0

    def after_success(
        self,
        summary: DestinationSummary,
        finished: float,
        duration: float,
        duplicates: int = 0,
        expired_listed: int = 0,
    ) -> DestinationState:
        return replace(
            self,
            polled=True,
            up=True,
            summary=summary,
            last_success=finished,
            last_duration=duration,
            invalid_total=self.invalid_total + summary.invalid,
            duplicates_total=self.duplicates_total + duplicates,
            expired_listed=expired_listed,
            failing_since=None,
        )

    def after_failure(
        self, finished: float, duration: float, stale_after: float
    ) -> DestinationState:
        """Down, keeping the last good data until the destination has been failing for
        `stale_after`: timed from its first failed read, not from its last good one, which
        may be half an hour old by design (reads around the slots, poll_schedule.py)."""
        since = finished if self.failing_since is None else self.failing_since
        fresh = self.last_success is not None and finished - since < stale_after
        return replace(
            self,
            polled=True,
            up=False,
            summary=self.summary if fresh else None,
            last_duration=duration,
            failing_since=since,
        )


@dataclass(frozen=True)
class Snapshot:
    destinations: tuple[DestinationState, ...] = ()
    api_requests: tuple[tuple[tuple[str, str], int], ...] = ()
    rate_limit_remaining: float | None = None
    discovery_up: bool | None = None
    ready: bool = False
    addon_rules: AddonRules = field(default_factory=AddonRules)
    budget_per_hour: float | None = None
    rate_limit_reset_at: float | None = None
    throttled_seconds: float = 0.0
    connection_wait_seconds: float = 0.0  # requests' wait for a connection of the API URL
    effective_interval: float | None = None
    pages_fetched: tuple[tuple[tuple[str, str], int], ...] = ()
    full_resyncs: tuple[tuple[tuple[str, str], int], ...] = ()
    poll_failures: tuple[tuple[tuple[str, str], int], ...] = ()
    budget_remaining: int | None = None
    cycle_seconds_left: float = 0.0

    def scheduled_addons(self) -> set[tuple[str, str]]:
        """(project, addon) of every addon a destination lists with scheduled backups."""
        return {
            (summary.project, summary.addon)
            for state in self.destinations
            if state.summary is not None
            for summary in state.summary.addons
            if summary.schedules
        }


@dataclass(frozen=True)
class CoverageSnapshot:
    up: bool | None = None  # the last round read everything (None before the first)
    last_success: float | None = None
    # what each resource unit publishes: (its table, its rows), in the units' order
    published: tuple[tuple[Table[Any], tuple[Any, ...]], ...] = ()
    listings_cut: tuple[tuple[str, int], ...] = ()  # (listing, times cut at a cap or as endless)
    # what the inventory round under way still needs (0 when none is under way)
    inventory_requests_left: int = 0
    inventory_seconds_left: float = 0.0

    def rows(self, table: Table[Row]) -> tuple[Row, ...]:
        """The rows published for `table`."""
        found: list[Row] = []
        for published, rows in self.published:
            if published is table:
                found.extend(rows)
        return tuple(found)
