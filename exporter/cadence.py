"""When to read an addon's own backup listing again: only when something can have changed.

Reading every managed-storage addon's listing on every poll would spend the request budget
many times over (50 addons every 5 minutes is 600 requests an hour) to learn, almost always,
nothing new. A scheduled backup changes the listing at known moments, so a read is planned:

- at each slot plus the addon's usual run time, when its backup should be done;
- when the first slot no completed backup answers turns overdue (that slot plus the grace),
  so that a backup that finished late clears it and one that never came shows at once;
- while it stays overdue, again after a wait that doubles (at least `retry`, at most
  `longest_retry`), so a late backup is seen without a read every poll;
- and at least every `heartbeat`, for manual backups and deletions.

A healthy schedule costs one read per slot, a slow run two, plus the heartbeat. Overdue is
worked out at every rendering from what was last read, so a read at the moment it turns true
keeps a backup that did arrive from ever showing as overdue.
"""

from __future__ import annotations

from exporter.schedule import WeekOffsets, next_slot

# The shortest time after a slot worth reading at: a backup is rarely done sooner.
MIN_RUN = 60.0
# A run's usual time is its last duration with this much to spare.
RUN_MARGIN = 1.5


def usual_run(last_duration: float | None, grace: float) -> float:
    """How long after its slot a backup is usually done: never before MIN_RUN, never after the
    grace (by then it is late); half the grace while no run has completed."""
    if last_duration is None:
        return max(MIN_RUN, grace / 2)
    return min(grace, MIN_RUN + RUN_MARGIN * last_duration)


def next_read(
    offsets: WeekOffsets,
    *,
    read_at: float,
    first_unanswered: float | None,
    usual: float,
    grace: float,
    retry: float,
    heartbeat: float,
    longest_retry: float | None = None,
) -> float:
    """When to read the listing after a read at `read_at` that showed `first_unanswered`, the
    first slot no completed backup answers (None: no schedule to judge). `longest_retry`: the
    longest wait while overdue (None: the heartbeat)."""
    moments = [read_at + heartbeat]
    if not offsets:
        return moments[0]
    # the first slot whose backup should be done after this read, and is not answered yet
    upcoming = next_slot(offsets, read_at - usual)
    if first_unanswered is not None:
        upcoming = max(upcoming, first_unanswered)
    moments.append(upcoming + usual)
    if first_unanswered is not None:
        turns_overdue = first_unanswered + grace
        if turns_overdue > read_at:
            moments.append(turns_overdue)
        else:
            late_for = read_at - turns_overdue
            longest = heartbeat if longest_retry is None else min(heartbeat, longest_retry)
            moments.append(read_at + min(longest, max(retry, late_for)))
    return min(moments)
