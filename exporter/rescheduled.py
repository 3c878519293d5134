"""Schedule changes that a destination's backups do not show yet.

An addon whose backups go to a custom destination is judged by the schedules its newest
scheduled backup lists, so a changed schedule shows only with the first backup of the new one.
Until then the old schedule's slots look missed, and after a change of interval (hourly to
daily) the addon looks overdue: the backtest measured a false critical page of 13 hours.

So when a destination shows a slot of an addon missed since its schedules were last read, the
addon's backup-schedules are read (one request per new miss, at most PER_POLL a poll). If that
read is newer than the addon's newest scheduled backup and what it sends to this destination
differs from what the backups list, the addon is judged by it (`summarize_addon`'s `read`),
from when it changed. A read that finds nothing sent to the destination changes nothing: an
unknown shape of the API must never silence an addon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exporter.addons import AddonSummary, ReadSchedules
from exporter.api import ADDON_SCHEDULES_ENDPOINT, PERMISSIONS, ApiError
from exporter.client import NorthflankClient
from exporter.inventory import CoverageSchedule, InvalidItem, read_addon_schedule

log = logging.getLogger(__name__)

# Reads a destination poll may spend on schedules; more wait for the next poll. A scheduler
# that skips every addon's run at once would otherwise cost a request per addon in one poll.
PER_POLL = 10


@dataclass(frozen=True)
class _Read:
    at: float
    schedules: tuple[CoverageSchedule, ...] | None  # None: the read failed
    # when these same schedules were first read: a change took effect no later than that,
    # whatever updatedAt says (missing, moving on every read, or in the future)
    seen_since: float


def _same_schedules(
    known: tuple[CoverageSchedule, ...] | None, read: tuple[CoverageSchedule, ...] | None
) -> bool:
    """The same slots sent to the same places (updatedAt and ids aside)."""
    if known is None or read is None:
        return False
    return {(s.schedule, s.destinations) for s in known} == {
        (s.schedule, s.destinations) for s in read
    }


class ScheduleChecks:
    """The backup-schedules read for addons that missed a slot, by (project, addon)."""

    def __init__(self, client: NorthflankClient, clock: Callable[[], float]) -> None:
        self._client = client
        self._clock = clock
        self._reads: dict[tuple[str, str], _Read] = {}
        self._told: set[str] = set()  # error codes already logged

    def read_for(self, destination: str) -> Callable[[str, str], ReadSchedules | None]:
        """What was read of each addon's schedules that send backups to `destination`."""

        def read(project: str, addon: str) -> ReadSchedules | None:
            known = self._reads.get((project, addon))
            if known is None or not known.schedules:
                return None
            sending = [s for s in known.schedules if destination in (d for d, _ in s.destinations)]
            if not sending:
                return None
            return ReadSchedules(
                tuple(s.schedule for s in sending), known.at, _changed_at(sending, known)
            )

        return read

    def due(self, summary: AddonSummary) -> bool:
        """A slot missed since the addon's schedules were last read (or never read)."""
        if summary.last_missed_slot is None:
            return False
        known = self._reads.get((summary.project, summary.addon))
        return known is None or known.at < summary.last_missed_slot

    async def check(self, summaries: Iterable[AddonSummary]) -> bool:
        """Read the schedules of the addons that are due; True when any was read."""
        due = [summary for summary in summaries if self.due(summary)][:PER_POLL]
        for summary in due:
            key = (summary.project, summary.addon)
            schedules = await self._schedules(*key)
            now = self._clock()
            before = self._reads.get(key)
            seen_since = now
            if before is not None and _same_schedules(before.schedules, schedules):
                seen_since = before.seen_since
            self._reads[key] = _Read(now, schedules, seen_since)
        return bool(due)

    async def _schedules(self, project: str, addon: str) -> tuple[CoverageSchedule, ...] | None:
        try:
            raw = await self._client.addon_schedules(project, addon)
            return tuple(read_addon_schedule(item) for item in raw)
        except ApiError as error:
            self._tell(
                error.code,
                "backup-schedules of addon %s/%s unreadable code=%s: %s; a schedule change "
                "shows only with the first backup of the new schedule (reading them needs "
                "%s)",
                project,
                addon,
                error.code,
                error,
                PERMISSIONS[ADDON_SCHEDULES_ENDPOINT],
            )
        except InvalidItem as problem:
            self._tell("invalid", "backup-schedules of addon %s/%s: %s", project, addon, problem)
        except Exception as problem:  # a bug here must not fail the destination's poll
            self._tell("internal", "backup-schedules of addon %s/%s: %r", project, addon, problem)
            log.debug("reading the backup-schedules crashed", exc_info=True)
        return None

    def _tell(self, code: str, text: str, *args: object) -> None:
        """One line per kind of failure: a token without the permission fails on every read."""
        if code not in self._told:
            self._told.add(code)
            log.warning(text, *args)


def _changed_at(sending: list[CoverageSchedule], read: _Read) -> float:
    """When the schedules in effect took effect: their newest updatedAt, but never later than
    when they were first read. An updatedAt in the future, one that moves on every read, or
    none at all cannot put the change off, and so cannot silence a broken reschedule."""
    updated = [s.updated for s in sending if s.updated is not None]
    if not updated:
        return read.seen_since
    return min(max(updated), read.seen_since)
