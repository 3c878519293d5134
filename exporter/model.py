"""What the exporter knows about Northflank, apart from how it is read or folded.

A `Backup` is one stored row of a destination's listing, a `Schedule` one entry of its
`schedules`, a `Destination` one backup destination. Parsing lives in `backups.py` and
`client.py`; folding in `aggregate.py` and `addons.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple, TypeGuard

STATUSES = (
    "scheduled",
    "in-progress",
    "completed",
    "aborting",
    "aborted",
    "failed",
    "not-supported",
)
RUNNING_STATUSES = frozenset({"scheduled", "in-progress", "aborting"})
FAILED_STATUSES = frozenset({"failed", "aborted"})
IMPORT_SOURCES = frozenset({"fileUpload", "externalDump"})
INTERVALS = ("hourly", "daily", "weekly")
# An addon's or a volume's backup-schedules past this many entries are cut as a listing too
# large (client.py), and a backup listing more makes it invalid: real addons declare a
# handful, and each schedule is series, and slots to work out.
MAX_SCHEDULES = 50


def encodable(text: str) -> str:
    """The text with any lone UTF-16 surrogate (JSON's "\\ud800", which no UTF-8 output can
    carry) replaced by U+FFFD: every string the API sends goes through here where it enters."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


MAX_ID = 256


def is_id(text: object) -> TypeGuard[str]:
    """Whether an id the API sent can name one thing: a short string with no `/` (which would
    make `x/y` + `z` and `x` + `y/z` one addon) and not `.` or `..` (which would walk a request
    up the path). Every id is checked here, where it is read."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= MAX_ID
        and "/" not in text
        and text not in (".", "..")
        and encodable(text).isprintable()  # a lone surrogate is made U+FFFD where it enters
    )


def by_status(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    """Every documented status (0 when absent), then any new status the API invented."""
    extra = sorted(status for status in counts if status not in STATUSES)
    return tuple((status, counts[status]) for status in (*STATUSES, *extra))


class Schedule(NamedTuple):
    """One backup schedule: UTC minutes, hours and days (0 = Monday) of its slots."""

    interval: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...] = ()
    days: tuple[int, ...] = ()


class Backup(NamedTuple):
    id: str
    status: str
    size: int
    created: float
    completed: float | None
    expires: float | None
    project_id: str | None = None
    project_name: str | None = None
    addon_id: str | None = None
    addon_name: str | None = None
    addon_type: str | None = None
    addon_version: str | None = None
    schedules: tuple[Schedule, ...] = ()
    # outside data brought in (config.source.type fileUpload or externalDump): a backup by
    # status, never the addon's own newest backup, and never the answer to a slot
    imported: bool = False

    def is_expired(self, now: float) -> bool:
        """Past its expiredBy a backup is gone, whether or not the API still lists it."""
        return self.expires is not None and self.expires <= now


@dataclass(frozen=True)
class Destination:
    id: str
    name: str
    usage: str
