"""What incremental sync holds per destination between polls: every listed backup, compactly.

Backups are kept in the API's order (newest first) as typed arrays, one per field, because a
destination may hold hundreds of thousands of them for the life of the process: 50 bytes a
backup here, against about 400 as Backup tuples. Statuses, addon details and schedules repeat
across thousands of backups, so each distinct value is stored once in a table and rows hold its
index. A backup's id is kept as its hash: it only has to tell whether the row at a position is
still the same backup.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Iterator, Set
from typing import Generic, NamedTuple, TypeVar

from exporter.model import RUNNING_STATUSES, Backup, Schedule

T = TypeVar("T", bound=Hashable)

# Times are positive epoch seconds; 0.0 in a time column stands for "none" and is read back as
# None by `_time_or_none`, the only reader of those columns.
_NO_TIME = 0.0


def id_hash(ident: str) -> int:
    """Only has to tell whether a row still holds the same backup, within this process."""
    return hash(ident)


def _stored_time(moment: float | None) -> float:
    return _NO_TIME if moment is None else moment


def _time_or_none(stored: float) -> float | None:
    return None if stored == _NO_TIME else stored


class AddonRef(NamedTuple):
    project_id: str | None
    project_name: str | None
    addon_id: str | None
    addon_name: str | None
    addon_type: str | None
    addon_version: str | None

    @classmethod
    def of(cls, backup: Backup) -> AddonRef:
        return cls(
            backup.project_id,
            backup.project_name,
            backup.addon_id,
            backup.addon_name,
            backup.addon_type,
            backup.addon_version,
        )


class _Interned(Generic[T]):
    """A table of distinct values, each stored once; rows hold indices into it."""

    def __init__(self) -> None:
        self.values: list[T] = []
        self._index: dict[T, int] = {}

    def index(self, value: T) -> int:
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self.values)
            self.values.append(value)
        return found


class _Tables:
    """The distinct values a store's rows point into; shared by the stores derived from it."""

    def __init__(self) -> None:
        self.statuses: _Interned[str] = _Interned()
        self.addons: _Interned[AddonRef] = _Interned()
        # a backup's schedules, and whether it is an import
        self.schedules: _Interned[tuple[tuple[Schedule, ...], bool]] = _Interned()


class BackupStore:
    """Backups in listing order (newest first), column by column."""

    COLUMNS = ("ids", "statuses", "sizes", "created", "completed", "expires", "addons", "schedules")

    def __init__(self, tables: _Tables | None = None) -> None:
        self.ids = array("q")
        self.statuses = array("H")
        self.sizes = array("q")
        self.created = array("d")
        self.completed = array("d")
        self.expires = array("d")
        self.addons = array("I")
        self.schedules = array("I")  # into (schedules, imported): no byte of its own a row
        self._tables = tables or _Tables()

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, backup: Backup) -> None:
        tables = self._tables
        self.ids.append(id_hash(backup.id))
        self.statuses.append(tables.statuses.index(backup.status))
        self.sizes.append(backup.size)
        self.created.append(backup.created)
        self.completed.append(_stored_time(backup.completed))
        self.expires.append(_stored_time(backup.expires))
        self.addons.append(tables.addons.index(AddonRef.of(backup)))
        self.schedules.append(tables.schedules.index((backup.schedules, backup.imported)))

    def extend(self, backups: Iterable[Backup]) -> None:
        for backup in backups:
            self.append(backup)

    def backup(self, row: int) -> Backup:
        """The row as a Backup; its id is "" (only its hash is kept)."""
        tables = self._tables
        schedules, imported = tables.schedules.values[self.schedules[row]]
        return Backup(
            "",
            tables.statuses.values[self.statuses[row]],
            self.sizes[row],
            self.created[row],
            _time_or_none(self.completed[row]),
            _time_or_none(self.expires[row]),
            *tables.addons.values[self.addons[row]],
            schedules=schedules,
            imported=imported,
        )

    def __iter__(self) -> Iterator[Backup]:
        for row in range(len(self)):
            yield self.backup(row)

    def status(self, row: int) -> str:
        return self._tables.statuses.values[self.statuses[row]]

    def holds(self, row: int, backup: Backup) -> bool:
        """Is the row this backup (same id and creation time), changed or not?"""
        return self.created[row] == backup.created and self.ids[row] == id_hash(backup.id)

    def same(self, row: int, backup: Backup) -> bool:
        """Is the row this backup, unchanged in everything the exporter reads?"""
        return self.ids[row] == id_hash(backup.id) and self.backup(row) == backup._replace(id="")

    def is_expired(self, row: int, now: float) -> bool:
        expires = _time_or_none(self.expires[row])
        return expires is not None and expires <= now

    def last_running_row(self) -> int:
        """The deepest row whose backup may still change (-1 when every backup is final)."""
        for row in range(len(self) - 1, -1, -1):
            if self.status(row) in RUNNING_STATUSES:
                return row
        return -1

    def spliced(
        self, head: Iterable[Backup], keep_from: int, now: float, read: Set[int] = frozenset()
    ) -> BackupStore:
        """A new store: `head`, then this store's rows from `keep_from` on, but those whose id
        hash is in `read` (the head holds them); expired rows dropped."""
        merged = BackupStore(self._tables)
        merged.extend(backup for backup in head if not backup.is_expired(now))
        # Kept rows are copied a run at a time, one slice per column, not row by row: every
        # incremental poll splices (bench/README.md, "Speed choices").
        run_from = keep_from
        for row in range(keep_from, len(self)):
            if self.is_expired(row, now) or self.ids[row] in read:
                merged._copy_rows(self, run_from, row)
                run_from = row + 1
        merged._copy_rows(self, run_from, len(self))
        return merged

    def unexpired(self, now: float) -> BackupStore:
        """This store, or a copy without the rows whose expiredBy has passed."""
        for row in range(len(self)):
            if self.is_expired(row, now):
                return self.spliced((), 0, now)
        return self

    def _copy_rows(self, other: BackupStore, start: int, end: int) -> None:
        if start < end:
            for name in self.COLUMNS:
                getattr(self, name).extend(getattr(other, name)[start:end])

    def nbytes(self) -> int:
        columns = [getattr(self, name) for name in self.COLUMNS]
        return sum(column.itemsize * len(column) for column in columns)
