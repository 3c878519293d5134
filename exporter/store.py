"""What incremental sync holds per destination: every listed backup in a few dozen bytes.

Backups are kept in the API's order (newest first) as parallel typed arrays, one column per
field, instead of an object per backup: 50 bytes a backup. Project/addon details and
schedules repeat across thousands of backups, so each distinct one is stored once in a table and
rows hold its index. A backup's id is kept as a 64-bit hash: it only has to tell whether the row
at a position is still the same backup.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from exporter.backups import RUNNING_STATUSES, Backup, BackupColumns, Schedule

NONE = math.nan
T = TypeVar("T")


class AddonRef(NamedTuple):
    project_id: str | None
    project_name: str | None
    addon_id: str | None
    addon_name: str | None
    addon_type: str | None
    addon_version: str | None


_ADDON_FIELDS = slice(Backup._fields.index("project_id"), Backup._fields.index("schedules"))
_make_backup = Backup._make


id_hash = hash  # only has to tell whether a row still holds the same backup


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


class _Interned(Generic[T]):
    """A table of distinct values, each stored once; rows hold indices into it."""

    def __init__(self, first: T) -> None:
        self.values: list[T] = [first]
        self._index: dict[T, int] = {first: 0}

    def index(self, value: Any, make: Callable[[Any], T] | None = None) -> int:
        found = self._index.get(value)
        if found is None:
            stored = value if make is None else make(value)
            found = self._index[stored] = len(self.values)
            self.values.append(stored)
        return found

    def indices(self, values: list[Any], make: Callable[[Any], T] | None = None) -> list[int]:
        """index() of each value; the lookups run in C unless a value is new."""
        found = list(map(self._index.get, values))
        if None in found:
            found = [self.index(value, make) for value in values]
        return found


class _InternedByIdentity(_Interned[T]):
    """Also finds a value by identity first: the parser hands out one tuple per distinct
    schedule list, so most lookups skip hashing nested tuples."""

    def __init__(self, first: T) -> None:
        super().__init__(first)
        self._by_identity: dict[int, int] = {id(first): 0}
        self._seen: list[T] = [first]  # keeps every object whose id() is a key alive

    def index(self, value: Any, make: Callable[[Any], T] | None = None) -> int:
        found = self._by_identity.get(id(value))
        if found is None:
            found = super().index(value, make)
            self._by_identity[id(value)] = found
            self._seen.append(value)
        return found

    def indices(self, values: list[Any], make: Callable[[Any], T] | None = None) -> list[int]:
        found = list(map(self._by_identity.get, map(id, values)))
        if None in found:
            found = [self.index(value, make) for value in values]
        return found


class _Tables:
    """The interned values a store's rows point into; shared by the stores derived from it."""

    def __init__(self) -> None:
        self.statuses = _Interned("")
        self.addons = _Interned(AddonRef(None, None, None, None, None, None))
        self.schedules: _Interned[tuple[Schedule, ...]] = _InternedByIdentity(())


COLUMNS = ("ids", "created", "completed", "expires", "sizes", "statuses", "addons", "schedules")


class BackupStore:
    """Backups in listing order (newest first), column by column."""

    def __init__(self, tables: _Tables | None = None) -> None:
        self.ids = array("q")
        self.created = array("d")
        self.completed = array("d")
        self.expires = array("d")
        self.sizes = array("q")
        self.statuses = array("H")
        self.addons = array("I")
        self.schedules = array("I")
        self._tables = tables or _Tables()

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, backups: BackupColumns) -> None:
        """Add backups at the end, column by column."""
        tables = self._tables
        self.ids.extend(map(id_hash, backups.ids))
        self.created.extend(backups.created)
        self.completed.extend([NONE if time is None else time for time in backups.completed])
        self.expires.extend([NONE if time is None else time for time in backups.expires])
        self.sizes.extend(backups.sizes)
        self.statuses.extend(tables.statuses.indices(backups.statuses))
        refs = list(zip(*backups[_ADDON_FIELDS], strict=True))
        self.addons.extend(tables.addons.indices(refs, AddonRef._make))
        self.schedules.extend(tables.schedules.indices(backups.schedules))

    @property
    def status_names(self) -> list[str]:
        """What the statuses column's indices stand for."""
        return self._tables.statuses.values

    @property
    def addon_refs(self) -> list[AddonRef]:
        """What the addons column's indices stand for."""
        return self._tables.addons.values

    @property
    def schedule_lists(self) -> list[tuple[Schedule, ...]]:
        """What the schedules column's indices stand for; index 0 is no schedule."""
        return self._tables.schedules.values

    def status(self, row: int) -> str:
        return self._tables.statuses.values[self.statuses[row]]

    def backup(self, row: int) -> Backup:
        tables = self._tables
        return _make_backup(
            (
                "",
                tables.statuses.values[self.statuses[row]],
                self.sizes[row],
                self.created[row],
                _optional(self.completed[row]),
                _optional(self.expires[row]),
                *tables.addons.values[self.addons[row]],
                tables.schedules.values[self.schedules[row]],
            )
        )

    def __iter__(self) -> Iterator[Backup]:
        return (self.backup(row) for row in range(len(self)))

    def same(self, row: int, backup: Backup) -> bool:
        """Is the row this backup, unchanged in everything the exporter reads?"""
        return self.backup(row) == backup._replace(id="") and self.ids[row] == id_hash(backup.id)

    def is_expired(self, row: int, now: float) -> bool:
        expires = self.expires[row]
        return not math.isnan(expires) and expires <= now

    def last_running_row(self) -> int:
        """The deepest row whose backup may still change (-1 when every backup is final)."""
        running = {
            i for i, status in enumerate(self._tables.statuses.values) if status in RUNNING_STATUSES
        }
        for row in range(len(self) - 1, -1, -1):
            if self.statuses[row] in running:
                return row
        return -1

    def spliced(self, head: BackupColumns, keep_from: int, now: float) -> BackupStore:
        """A new store: `head`, then this store's rows from `keep_from` on; expired rows dropped.

        Kept rows are copied column by column in slices between expired rows, not rebuilt.
        """
        merged = BackupStore(self._tables)
        merged.extend(head.unexpired(now))
        expires = self.expires
        start = keep_from
        for row in range(keep_from, len(self)):
            if expires[row] <= now:  # NaN (never expires) compares false
                merged._extend(self, start, row)
                start = row + 1
        merged._extend(self, start, len(self))
        return merged

    def unexpired(self, now: float) -> BackupStore:
        """This store, or a copy without the rows whose expiredBy has passed."""
        if any(map(now.__ge__, self.expires)):  # NaN (never expires) compares false
            return self.spliced(BackupColumns.of([]), 0, now)
        return self

    def _extend(self, other: BackupStore, start: int, stop: int) -> None:
        if start < stop:
            for name in COLUMNS:
                getattr(self, name).extend(getattr(other, name)[start:stop])

    def nbytes(self) -> int:
        columns = [getattr(self, name) for name in COLUMNS]
        return sum(column.itemsize * len(column) for column in columns)
