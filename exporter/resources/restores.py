"""An addon's restores: whether a backup was ever restored, whether the last restore worked,
and, for addons under a drill policy (`restores.drills`), how often one must be.

The listing has no creation time: a restore's `restoreTimestamp` is the point in time its data
was restored to, and `completedAt` when it ended. So how long a restore has been running is
counted from the first read that saw it running.

Each addon's restores are read at most once a `restores.interval`, sooner while one runs. The
first reads are spread over the interval by a stable hash of the addon, so that a large account
costs the same every hour from the start; an addon under a drill policy is read at once, again
the moment its drill would lapse (so that a drill done since is seen before the alert fires),
and every OVERDUE_READ while it is overdue (so that the alert resolves soon after a drill).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from exporter.api import ADDON_RESTORES_ENDPOINT, RESTORES_MAX_ITEMS
from exporter.backups import parse_timestamp
from exporter.durations import HOUR
from exporter.families import CACHED, Table, by_label, gauge
from exporter.inventory import Addon, InvalidItem
from exporter.model import FAILED_STATUSES, RUNNING_STATUSES, by_status, encodable, is_id
from exporter.resources.addons import Addons
from exporter.resources.unit import Listing, Pass, Reads, Unit, read_all

if TYPE_CHECKING:
    from exporter.context import AccountLoops

Key = tuple[str, str]  # (project, addon)
Read = tuple[float, list[Any]]  # the listing, as of when its read began
MAX_STATUS = 64
OVERDUE_READ = HOUR  # an addon whose drill is overdue: read this often (if sooner than interval)


class Restore(NamedTuple):
    id: str
    status: str
    point: float  # restoreTimestamp: the moment the data was restored to
    completed: float | None


def read_restore(raw: Any) -> Restore:
    if not isinstance(raw, dict):
        raise InvalidItem("restore: not an object")
    ident = raw.get("id")
    if not is_id(ident):
        raise InvalidItem("id: missing or not an id")
    status = raw.get("status")
    if not isinstance(status, str) or not status or len(status) > MAX_STATUS:
        raise InvalidItem("status: missing or not a short string")
    point = parse_timestamp(raw.get("restoreTimestamp"))
    if point is None:
        raise InvalidItem("restoreTimestamp: missing or not a time")
    completed = parse_timestamp(raw.get("completedAt")) if raw.get("completedAt") else None
    if status == "completed" and completed is None:
        raise InvalidItem("completedAt: a completed restore without a time it completed")
    return Restore(encodable(ident), encodable(status), point, completed)


@dataclass(frozen=True)
class RestoreSummary:
    by_status: tuple[tuple[str, int], ...]  # every documented status, then any other
    last_completed: float | None  # completedAt of the newest completed restore
    last_completed_point: float | None  # its restoreTimestamp
    running: tuple[str, ...]  # ids of the restores scheduled, in progress or aborting
    last_failed: float | None  # completedAt of the newest failed or aborted restore
    failed_untimed: tuple[str, ...]  # ids of the failed or aborted ones without a completedAt


def summarize_restores(restores: list[Restore]) -> RestoreSummary:
    """Pure: one addon's restores folded. Of two completed at the same time, the first listed."""
    newest: Restore | None = None
    for restore in restores:
        if restore.status != "completed" or restore.completed is None:
            continue
        if newest is None or newest.completed is None or restore.completed > newest.completed:
            newest = restore
    return RestoreSummary(
        by_status=by_status(Counter(restore.status for restore in restores)),
        last_completed=None if newest is None else newest.completed,
        last_completed_point=None if newest is None else newest.point,
        running=tuple(r.id for r in restores if r.status in RUNNING_STATUSES),
        last_failed=max(
            (
                r.completed
                for r in restores
                if r.status in FAILED_STATUSES and r.completed is not None
            ),
            default=None,
        ),
        failed_untimed=tuple(
            r.id for r in restores if r.status in FAILED_STATUSES and r.completed is None
        ),
    )


def next_read(
    summary: RestoreSummary, drill_every: float | None, now: float, *, poll: float, interval: float
) -> float:
    """Pure: when an addon's restores are read next, after a read at `now` that gave `summary`.
    While one runs, in a poll interval; under a drill policy, at the latest when the drill
    lapses, and every OVERDUE_READ once it has; else in an interval."""
    if summary.running:
        return now + poll
    later = now + interval
    if drill_every is None:
        return later
    if summary.last_completed is None or summary.last_completed + drill_every <= now:
        return now + min(interval, OVERDUE_READ)
    return min(later, summary.last_completed + drill_every)


class RestoreRow(NamedTuple):
    addon: Addon
    summary: RestoreSummary | None  # None: not read yet
    running_since: float | None  # the first read that saw its oldest running restore
    drill_every: float | None  # under a drill policy: how often it must be restored
    last_failed: float | None  # when the newest failed or aborted restore ended


def _statuses(row: RestoreRow) -> tuple[tuple[str, int], ...]:
    return () if row.summary is None else row.summary.by_status


def _running(row: RestoreRow, now: float) -> float | None:
    return None if row.running_since is None else max(now - row.running_since, 0.0)


RESTORES: Table[RestoreRow] = Table(
    labels=("project", "addon"),
    key=lambda row: (row.addon.project, row.addon.id),
    families=(
        by_label(
            "northflank_addon_restores",
            f"The addon's restores listed, by status. {CACHED}",
            "status",
            _statuses,
        ),
        gauge(
            "northflank_addon_restore_last_completed_timestamp_seconds",
            f"completedAt of the addon's newest completed restore; absent when none. {CACHED}",
            lambda row, now: None if row.summary is None else row.summary.last_completed,
        ),
        gauge(
            "northflank_addon_restore_last_completed_point_timestamp_seconds",
            "restoreTimestamp of the addon's newest completed restore: the point in time it "
            f"proved restorable. {CACHED}",
            lambda row, now: None if row.summary is None else row.summary.last_completed_point,
        ),
        gauge(
            "northflank_addon_restore_last_failed_timestamp_seconds",
            "When the addon's newest failed or aborted restore ended: its completedAt, else the "
            "first read that saw it ended after one had seen it running; absent when none. "
            f"{CACHED}",
            lambda row, now: row.last_failed,
        ),
        gauge(
            "northflank_addon_restore_running_seconds",
            "How long the addon's oldest restore still scheduled, in progress or aborting has "
            "been seen running: the API gives no start time, so from the first read that saw it, "
            "as of the last rendering.",
            _running,
        ),
        gauge(
            "northflank_addon_restore_drill_interval_seconds",
            "How often the addon must be restored, under a drill policy (restores.drills).",
            lambda row, now: row.drill_every,
        ),
    ),
)


# An addon's status while one of its restores runs (the clients' addon status enum).
RESTORING = "restore"


class Restores(Unit[Key, Addon, Read]):
    reads = Reads(
        Listing.RESTORES,
        ADDON_RESTORES_ENDPOINT,
        "GetAddonRestoresEndpoint",
        "GetAddonRestoresResponse",
    )
    passes = frozenset({Pass.CADENCE})
    concurrent = True
    table = RESTORES

    def __init__(self, loops: AccountLoops, addons: Addons) -> None:
        super().__init__(loops)
        self._addons = addons
        self._summaries: dict[Key, RestoreSummary] = {}
        self._next_read: dict[Key, float] = {}
        self._first_listed: dict[Key, float] = {}
        self._seen_running: dict[Key, dict[str, float]] = {}  # restore id: first seen running
        self._seen_ended: dict[Key, dict[str, float]] = {}  # failed, untimed: first seen so
        self._up: dict[Key, bool] = {}
        self._restoring_read: set[Key] = set()  # listed `restore`, and read since

    def wanted(self) -> Mapping[Key, Addon]:
        """The addons with per-addon series (addons.*), when restores are read at all."""
        if not self.loops.restores.enabled:
            return {}
        wants = self.loops.addons.wants
        return {key: addon for key, addon in self._addons.addons.items() if wants(*key)}

    def due(self, key: Key, subject: Addon, now: float) -> bool:
        if subject.status == RESTORING and key not in self._restoring_read:
            # the listing says a restore runs: read it now, not at the day's sweep (Stuck's six
            # hours count from the first read that sees it; while it runs it is read every
            # poll interval, so its end is seen too). A read per restore: the hourly listings
            # already carry the status. One that begins and ends between two listings is the
            # sweep's.
            return True
        due = self._next_read.get(key)
        if due is None:
            due = self._first_read(key, now)
        return now >= due

    def before_walk(self) -> None:
        """An addon listed other than `restore` since its last read: its next `restore` is a
        restore of its own."""
        for key, addon in self.wanted().items():
            if addon.status != RESTORING:
                self._restoring_read.discard(key)

    def _first_read(self, key: Key, now: float) -> float:
        """At once under a drill policy; else at a point of the interval the addon's hash picks,
        from when it was first listed, so that first reads cost the same every hour."""
        listed = self._first_listed.setdefault(key, now)
        if self.loops.restores.drill_every(*key) is not None:
            return listed
        digest = hashlib.blake2b(f"{key[0]}/{key[1]}".encode(), digest_size=8).digest()
        share = int.from_bytes(digest, "big") / 2**64
        return listed + share * self.loops.restores.interval

    async def fetch(self, key: Key, subject: Addon) -> Read:
        project, addon = (quote(part, safe="") for part in key)
        suffix = f"/projects/{project}/addons/{addon}/restores"
        began = self.loops.clock()
        listed = await self.loops.client.listed(
            ADDON_RESTORES_ENDPOINT,
            suffix,
            "restores",
            spend=self.spend(key),
            max_items=RESTORES_MAX_ITEMS,
        )
        return began, listed

    def fold(self, key: Key, subject: Addon, answer: Read, now: float) -> bool:
        now, raw = answer
        restores = read_all(self.loops, raw, self.reads.listing, read_restore)
        summary = summarize_restores(restores)
        seen = self._seen_running.get(key, {})
        ended = self._seen_ended.get(key, {})
        self._seen_ended[key] = {
            ident: ended.get(ident, now)
            for ident in summary.failed_untimed
            if ident in ended or ident in seen
        }
        self._seen_running[key] = {ident: seen.get(ident, now) for ident in summary.running}
        self._summaries[key] = summary
        self._took_status(key, subject)
        self._up[key] = True
        self._next_read[key] = next_read(
            summary,
            self.loops.restores.drill_every(*key),
            now,
            poll=self.loops.poll.interval,
            interval=self.loops.restores.interval,
        )
        return True

    def failed(self, key: Key, subject: Addon, now: float) -> None:
        """What was read before is kept; read again in a poll interval (the status that
        called for the read has had its read)."""
        self._up[key] = False
        self._next_read[key] = now + self.loops.poll.interval
        self._took_status(key, subject)

    def _took_status(self, key: Key, subject: Addon) -> None:
        if subject.status == RESTORING:
            self._restoring_read.add(key)

    def forget_all_but(self, keys: Set[Key]) -> None:
        for known in (
            self._summaries,
            self._next_read,
            self._first_listed,
            self._seen_running,
            self._seen_ended,
            self._up,
        ):
            for gone in set(known) - keys:
                del known[gone]
        self._restoring_read &= set(keys)

    def next_due(self) -> float | None:
        return min(self._next_read.values(), default=None)

    def up(self) -> bool:
        return all(self._up.values())

    def rows(self) -> tuple[RestoreRow, ...]:
        rows = []
        for key, addon in self.wanted().items():
            seen = self._seen_running.get(key)
            summary = self._summaries.get(key)
            rows.append(
                RestoreRow(
                    addon,
                    summary,
                    min(seen.values()) if seen else None,
                    self.loops.restores.drill_every(*key),
                    _last_failed(summary, self._seen_ended.get(key, {})),
                )
            )
        return tuple(rows)


def _last_failed(summary: RestoreSummary | None, seen_ended: dict[str, float]) -> float | None:
    """The newest end of a failed restore: listed with its completedAt, or seen to end."""
    ends = [*seen_ended.values()]
    if summary is not None and summary.last_failed is not None:
        ends.append(summary.last_failed)
    return max(ends, default=None)
