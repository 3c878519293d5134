"""When a destination is read next: shortly after its addons' schedule slots, not every interval.

Most addons back up hourly or daily, so most polls of a destination used to read an unchanged
first page. Pure: from the destination's last good read (its per-addon summaries, with their
schedules and run times) and when that read began, the moment its next read is due.

1. Never read: at once. The last read failed: every `poll.interval` (as before).
2. No addon with a known schedule (backups by hand only, per-addon series off, nothing listed),
   or `poll.around_slots` off: every `poll.interval`, as before.
3. Otherwise, for each addon: the moment its first unanswered slot turns overdue (its slot
   plus the grace), read on time, so that a backup that did land is seen before Overdue can
   show; and the moments worth a read, gathered: its listing cadence (`cadence.py`, the one
   the managed-storage listings follow: its next slot plus its usual run time, a doubling
   backoff while it stays overdue), or every `poll.interval` while a backup runs. A
   destination with many addons has a slot every few minutes: those reads are gathered into
   one every GATHER at most, but for an addon whose last run failed: its next run decides
   Failing, and is read as closely as before. And at least every HEARTBEAT, for what no
   schedule announces (a backup taken by hand, an addon new to the destination, a deletion).
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.addons import AddonSummary
from exporter.cadence import next_read as listing_next_read
from exporter.cadence import usual_run
from exporter.durations import MINUTE
from exporter.schedule import first_uncovered_slot
from exporter.snapshot import DestinationState

# The longest a destination goes unread: PollStale fires at an hour, so half of that leaves a
# slow or failed read room to be retried before it.
HEARTBEAT = 30 * MINUTE
# The reads for slots and running backups are at most this often: a newly completed backup or
# a failure shows within it (Failing's and Stuck's targets are an hour and more).
GATHER = 15 * MINUTE


@dataclass(frozen=True)
class PollTiming:
    interval: float  # poll.interval
    tolerance: float  # schedule.tolerance: a backup this close to a slot answers it
    grace: float  # schedule.grace
    around_slots: bool = True  # poll.around_slots

    @property
    def heartbeat(self) -> float:
        return max(self.interval, HEARTBEAT)

    @property
    def gather(self) -> float:
        return max(self.interval, GATHER)


def next_read(state: DestinationState, last_read: float | None, timing: PollTiming) -> float:
    """When the destination's next read is due, after a read that began at `last_read`."""
    summary = state.summary
    if last_read is None:
        return 0.0
    if not state.up or summary is None:
        return last_read + timing.interval
    scheduled = [addon for addon in summary.addons if addon.offsets]
    if not timing.around_slots or not scheduled:
        return last_read + timing.interval
    gathered = last_read + timing.gather
    due = last_read + timing.heartbeat
    for addon in scheduled:
        unanswered = first_uncovered_slot(
            addon.offsets, addon.answered_until, addon.oldest_created, timing.tolerance
        )
        worth = _worth(addon, unanswered, last_read, timing)
        if not addon.consecutive_failures:  # else its next run decides Failing: on time
            worth = max(gathered, worth)
        turns_overdue = unanswered + timing.grace
        if turns_overdue > last_read:
            due = min(due, turns_overdue)
        due = min(due, worth)
    return due


def _worth(addon: AddonSummary, unanswered: float, last_read: float, timing: PollTiming) -> float:
    """The addon's next moment worth a read: on its listing cadence, or an interval on while
    a backup runs."""
    if addon.oldest_running_created is not None:
        return last_read + timing.interval
    return listing_next_read(
        addon.offsets,
        read_at=last_read,
        first_unanswered=unanswered,
        usual=usual_run(addon.last_completed_duration, timing.grace),
        grace=timing.grace,
        retry=timing.interval,
        heartbeat=timing.heartbeat,
    )
