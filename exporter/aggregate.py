"""Pure aggregation of one destination's backups, fed page by page in a single pass.

Nothing here does I/O or reads a clock: the poll's `now` is passed in, so the same backups
always give the same summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exporter.addons import AddonAccumulator, AddonRules, AddonSummary
from exporter.backups import Backup, InvalidBackup, by_status, parse_backup


@dataclass(frozen=True)
class DestinationSummary:
    """What one complete poll of a destination found; immutable, rendered by the collector."""

    backups_by_status: tuple[tuple[str, int], ...]
    bytes_by_status: tuple[tuple[str, int], ...]
    last_completed: float | None
    expiring: int
    next_expiry: float | None
    total: int
    invalid: int
    addons: tuple[AddonSummary, ...] = ()


_UNSEEN = object()


class DestinationAccumulator:
    """Folds backups into a DestinationSummary without keeping them."""

    def __init__(self, now: float, warning_window: float, rules: AddonRules | None = None) -> None:
        self._now = now
        self._warn_until = now + warning_window
        self._rules = rules or AddonRules(enabled=False)
        self._addons: dict[tuple[str, str], AddonAccumulator | None] = {}
        self._counts: Counter[str] = Counter()
        self._bytes: Counter[str] = Counter()
        self._last_completed: float | None = None
        self._expiring = 0
        self._next_expiry: float | None = None
        self.invalid = 0
        self.expired = 0
        self.first_invalid_reason: str | None = None

    def add_raw(self, raw: Any) -> Backup | None:
        """Parse and add one API object; an unusable one is counted as invalid, not raised."""
        try:
            backup = parse_backup(raw)
        except InvalidBackup as problem:
            self.invalid += 1
            if self.first_invalid_reason is None:
                self.first_invalid_reason = str(problem)
            return None
        self.add(backup)
        return backup

    def add(self, backup: Backup) -> None:
        self.add_all((backup,))

    def add_all(self, backups: Iterable[Backup]) -> None:
        """Fold backups in; a page at a time keeps this loop's state in local variables."""
        now, warn_until = self._now, self._warn_until
        addons, counts, sizes = self._addons, self._counts, self._bytes
        last_completed, next_expiry = self._last_completed, self._next_expiry
        expiring = expired = 0
        for backup in backups:
            expires = backup.expires
            if expires is not None:
                if expires <= now:
                    # Past its expiredBy a backup is gone, whether or not the API lists it.
                    expired += 1
                    continue
                if expires <= warn_until:
                    expiring += 1
                if next_expiry is None or expires < next_expiry:
                    next_expiry = expires
            if backup.addon_id is not None:
                addon = addons.get((backup.project_id or "", backup.addon_id), _UNSEEN)
                if addon is _UNSEEN:
                    addon = self._first_of_addon(backup)
                if addon is not None:
                    addon.add(backup)
            status = backup.status
            counts[status] = counts.get(status, 0) + 1
            sizes[status] = sizes.get(status, 0) + backup.size
            if status == "completed":
                completed = backup.completed
                if completed is not None and (last_completed is None or completed > last_completed):
                    last_completed = completed
        self._last_completed, self._next_expiry = last_completed, next_expiry
        self._expiring += expiring
        self.expired += expired

    def _first_of_addon(self, backup: Backup) -> AddonAccumulator | None:
        """The accumulator for a new addon, or None when the rules leave it out; the filter
        runs once per addon, not once per backup."""
        key = (backup.project_id or "", backup.addon_id or "")
        wanted = self._rules.enabled and self._rules.wants(*key)
        accumulator = AddonAccumulator(*key, self._now, self._warn_until, self._rules)
        self._addons[key] = accumulator if wanted else None
        return self._addons[key]

    def summary(self) -> DestinationSummary:
        return DestinationSummary(
            backups_by_status=by_status(self._counts),
            bytes_by_status=by_status(self._bytes),
            last_completed=self._last_completed,
            expiring=self._expiring,
            next_expiry=self._next_expiry,
            total=sum(self._counts.values()),
            invalid=self.invalid,
            addons=tuple(
                accumulator.summary()
                for _, accumulator in sorted(self._addons.items())
                if accumulator is not None
            ),
        )


def summarize(
    raw_backups: Iterable[Any],
    now: float,
    warning_window: float,
    rules: AddonRules | None = None,
) -> DestinationSummary:
    """Fold a whole list at once (for tests and tools; the poller folds page by page)."""
    accumulator = DestinationAccumulator(now, warning_window, rules)
    for raw in raw_backups:
        accumulator.add_raw(raw)
    return accumulator.summary()
