"""What a resource unit is. Each module of this package is one resource the exporter reads, and
says in one place: what it reads (`Reads`: the endpoint, the permission the official clients
say it needs, and the client's type), when a read is due (`due`, `next_due`), how an answer is
folded (`fold`, pure over the unit's own state), and what it publishes (`table`, `rows`).

The coverage loop (`exporter/coverage.py`) walks the units in the order they are registered
(`exporter/resources/__init__.py`) and holds no code of any one resource.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from exporter.api import PERMISSIONS
from exporter.budget import Spend
from exporter.families import Table
from exporter.inventory import InvalidItem

if TYPE_CHECKING:
    from exporter.context import AccountLoops

log = logging.getLogger("exporter.coverage")

Key = TypeVar("Key")
Subject = TypeVar("Subject")
Answer = TypeVar("Answer")


class Listing(StrEnum):
    """Every kind of listing coverage reads; the value is its label value."""

    PROJECTS = "projects"
    ADDONS = "addons"
    VOLUMES = "volumes"
    ADDON_SCHEDULES = "addon_schedules"
    MANAGED_BACKUPS = "managed_backups"
    VOLUME_SCHEDULES = "volume_schedules"
    VOLUME_BACKUPS = "volume_backups"
    RESTORES = "restores"

    @property
    def words(self) -> str:
        """As a log line says it: "addon schedules"."""
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Reads:
    """What a unit reads, as Northflank's official Python client declares it
    (tests/test_contract.py holds every answer to the client's types)."""

    listing: Listing
    endpoint: str  # the path template, team routes aside
    client_endpoint: str  # the client's endpoint class
    client_type: str  # the type its call() returns as `data`

    @property
    def permission(self) -> str:
        return PERMISSIONS[self.endpoint]


class Pass(Enum):
    """When the coverage loop reads a unit."""

    ROUND = "round"  # in each inventory round, every coverage.interval
    CADENCE = "cadence"  # whenever one of its keys is due


# The order of a round: what may reveal an addon that nothing protects is read first, and shown
# on /metrics, before the rest; each request spends the budget as what it is (budget.Spend).
ROUND_ORDER = (Spend.DISCOVERY, Spend.BACKGROUND, Spend.REFRESH)


class Unit(ABC, Generic[Key, Subject, Answer]):
    """One resource of one account: its keys (from the units it builds on), its reads, its
    state, and its rows for /metrics."""

    reads: ClassVar[Reads]
    passes: ClassVar[frozenset[Pass]] = frozenset({Pass.ROUND})
    concurrent: ClassVar[bool] = False  # reads of several keys may run side by side
    blocks_round: ClassVar[bool] = False  # a failed read ends the round (nothing to go on)
    table: ClassVar[Table[Any] | None] = None

    def __init__(self, loops: AccountLoops) -> None:
        self.loops = loops

    @abstractmethod
    def wanted(self) -> Mapping[Key, Subject]:
        """Every key the unit should hold now, with what it is read for."""

    def due(self, key: Key, subject: Subject, now: float) -> bool:
        """Whether the key is read now (in a round: a listing is read every round)."""
        return True

    def spend(self, key: Key) -> Spend:
        """What a read of the key is for: it spends the budget as that, and a round reads the
        keys in ROUND_ORDER."""
        return Spend.BACKGROUND

    def never_read(self, key: Key) -> bool:
        """Whether nothing is known of the key yet: its first read goes before re-reads."""
        return False

    def before_walk(self) -> None:
        """Called before each walk of the unit, after the units before it were walked."""

    def begin_round(self) -> None:
        """Called at the start of each inventory round."""

    @abstractmethod
    async def fetch(self, key: Key, subject: Subject) -> Answer:
        """The request (raises `api.ApiError`)."""

    @abstractmethod
    def fold(self, key: Key, subject: Subject, answer: Answer, now: float) -> bool:
        """Take an answer into the unit's state; False when it could not be used (what was
        known is kept)."""

    def failed(self, key: Key, subject: Subject, now: float) -> None:
        """The read failed: by default, what was known of the key is kept."""

    @abstractmethod
    def forget_all_but(self, keys: Set[Key]) -> None:
        """Drop every key not in `keys` (deleted, or no longer wanted)."""

    def next_due(self) -> float | None:
        """When its next read is due (cadenced units); None: only in rounds."""
        return None

    def up(self) -> bool:
        """Whether its last read of every key succeeded (cadenced units; rounds say it of
        the others)."""
        return True

    def rows(self) -> tuple[Any, ...]:
        """What it publishes: rows of its `table` (or of a table it shares)."""
        return ()


Item = TypeVar("Item")


def read_all(
    loops: AccountLoops, raw: list[Any], listing: Listing, read: Callable[[Any], Item]
) -> list[Item]:
    """Every item of a listing that can be read; the others are skipped with one line for the
    lot, naming the first problem."""
    items, invalid = [], []
    for item in raw:
        try:
            items.append(read(item))
        except InvalidItem as problem:
            invalid.append(str(problem))
    if invalid:
        log.warning(
            loops.coverage_line("skipped %d %s that cannot be read; first: %s"),
            len(invalid),
            listing.words,
            invalid[0],
        )
    return items
