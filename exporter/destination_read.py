"""One destination's read: sync its backups, fold them, judge again an addon that missed a slot
by what its schedules now say, and record how the read went in its state."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from exporter.aggregate import DestinationSummary, summarize_store
from exporter.api import BACKUPS_ENDPOINT, ApiError, needs
from exporter.context import AccountLoops
from exporter.rescheduled import ScheduleChecks
from exporter.snapshot import DestinationState
from exporter.store import BackupStore
from exporter.sync import OnDestinationPage, Syncer, SyncResult


@dataclass(frozen=True, kw_only=True)
class Read:
    """One read of a destination: its summary and how the sync went, or why it failed."""

    summary: DestinationSummary | None = None
    result: SyncResult | None = None
    error: str | None = None


class DestinationReads:
    """Reads an account's destinations, one at a time each; the syncer keeps each one's store
    between polls."""

    def __init__(
        self,
        loops: AccountLoops,
        log: logging.LoggerAdapter[logging.Logger],
        page_read: OnDestinationPage,
    ) -> None:
        self._loops = loops
        self._log = log
        self.syncer = Syncer(
            loops.client.backup_pages,
            loops.poll.full_resync_interval,
            loops.poll.incremental,
            page_read,
        )
        self._checks = ScheduleChecks(loops.client, loops.clock)
        self.failures: Counter[tuple[str, str]] = Counter()  # (destination, reason)

    def _summarize(
        self, destination: str, store: BackupStore, now: float, invalid: int
    ) -> DestinationSummary:
        return summarize_store(
            store,
            now,
            self._loops.expiry_warning_window,
            self._loops.addons,
            invalid=invalid,
            read=self._checks.read_for(destination),
        )

    async def read(self, destination: str, never_read: bool) -> Read:
        """Sync and fold one destination. An addon that missed a slot is judged again by what
        its schedules now say (not on a destination's first read)."""
        try:
            now = self._loops.clock()
            result = await self.syncer.sync(destination, now)
            summary = self._summarize(destination, result.store, now, result.invalid)
            if not never_read and await self._checks.check(summary.addons):
                # some schedules were read just now (rare: an addon missed a slot): fold again
                summary = self._summarize(destination, result.store, now, result.invalid)
            return Read(summary=summary, result=result)
        except ApiError as problem:
            self.failures[(destination, problem.code)] += 1
            return Read(error=f"code={problem.code}: {problem}{needs(BACKUPS_ENDPOINT, problem)}")
        except Exception as problem:  # a bug must not stop the other destinations
            self._log.exception("destination=%s poll crashed", destination)
            self.failures[(destination, "internal")] += 1
            return Read(error=f"code=internal: {type(problem).__name__}")

    def record(
        self, destination: str, state: DestinationState, read: Read, duration: float
    ) -> DestinationState:
        """The destination's state after a read, good or bad."""
        if read.summary is not None and read.result is not None:
            if read.summary.invalid:
                self._log.warning(
                    "destination=%s skipped %d invalid backups; first: %s",
                    destination,
                    read.summary.invalid,
                    read.result.first_invalid,
                )
            was_all_expired = state.all_expired
            state = state.after_success(
                read.summary,
                self._loops.clock(),
                duration,
                read.result.duplicates,
                read.result.expired_listed,
            )
            if state.all_expired and not was_all_expired:
                self._log.warning(
                    "destination=%s lists %d backups and every one has expired (expiredBy "
                    "passed): nothing restorable is kept there; northflank_backups_expired_listed"
                    " says how many",
                    destination,
                    state.expired_listed,
                )
        else:
            self._log.warning("destination=%s poll failed %s", destination, read.error)
            state = state.after_failure(self._loops.clock(), duration, self._loops.poll.stale_after)
        return state
