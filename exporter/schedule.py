"""Schedule arithmetic: pure functions over the slots of an addon's backup schedules.

Every schedule repeats within one week (hourly: minutes; daily: hours x minutes; weekly:
days x hours x minutes; day 0 is Monday; UTC), so the combined schedules of an addon are the
sorted set of their slots as seconds after Monday 00:00 UTC, and every question below is a
binary search in that set plus whole weeks.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence

from exporter.durations import DAY, HOUR, MINUTE, WEEK
from exporter.model import Schedule

# The epoch was a Thursday: the first Monday 00:00 UTC came four days later.
FIRST_MONDAY = 4 * DAY

WeekOffsets = tuple[int, ...]


def week_offsets(schedules: Iterable[Schedule]) -> WeekOffsets:
    """Every slot of the schedules, as sorted seconds after Monday 00:00 UTC."""
    return _OFFSETS.get(tuple(schedules))


# Bytes an offset takes in a cached tuple: its pointer and its int object.
_BYTES_PER_OFFSET = 8 + 32


class _OffsetsCache:
    """Offsets by schedules, the least recently used dropped once they hold more than
    `limit` bytes: bounded by size, not by entries (a week of minutes is 10,080 offsets, and
    4,096 such entries were 1.6 GB).

    Every addon's offsets are worked out again at every poll, from schedules that almost never
    change: cached, each set is worked out once (bench/README.md, "Speed choices")."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self._entries: OrderedDict[tuple[Schedule, ...], WeekOffsets] = OrderedDict()

    def get(self, schedules: tuple[Schedule, ...]) -> WeekOffsets:
        found = self._entries.get(schedules)
        if found is not None:
            self._entries.move_to_end(schedules)
            return found
        offsets = _week_offsets(schedules)
        self._entries[schedules] = offsets
        self.bytes += len(offsets) * _BYTES_PER_OFFSET
        while self.bytes > self.limit and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= len(dropped) * _BYTES_PER_OFFSET
        return offsets


SLOT_CACHE_BYTES = 16 * 2**20
_OFFSETS = _OffsetsCache(SLOT_CACHE_BYTES)


def _week_offsets(schedules: tuple[Schedule, ...]) -> WeekOffsets:
    offsets: set[int] = set()
    for schedule in schedules:
        hours: Sequence[int] = range(24) if schedule.interval == "hourly" else schedule.hours
        days: Sequence[int] = range(7) if schedule.interval != "weekly" else schedule.days
        offsets.update(
            day * DAY + hour * HOUR + minute * MINUTE
            for day in days
            for hour in hours
            for minute in schedule.minutes
        )
    return tuple(sorted(offsets))


def _week_start(moment: float) -> int:
    return int((moment - FIRST_MONDAY) // WEEK) * WEEK + FIRST_MONDAY


def last_slot(offsets: WeekOffsets, moment: float) -> float:
    """The latest slot at or before `moment`."""
    start = _week_start(moment)
    index = bisect.bisect_right(offsets, moment - start) - 1
    if index >= 0:
        return float(start + offsets[index])
    return float(start - WEEK + offsets[-1])


def next_slot(offsets: WeekOffsets, moment: float) -> float:
    """The earliest slot strictly after `moment`."""
    start = _week_start(moment)
    index = bisect.bisect_right(offsets, moment - start)
    if index < len(offsets):
        return float(start + offsets[index])
    return float(start + WEEK + offsets[0])


def first_slot_at_or_after(offsets: WeekOffsets, moment: float) -> float:
    latest = last_slot(offsets, moment)
    return latest if latest == moment else next_slot(offsets, moment)


def longest_gap(offsets: WeekOffsets) -> float:
    """The longest time between two consecutive slots, the wrap into next week included."""
    if not offsets:
        return math.inf
    gaps = (later - earlier for earlier, later in itertools.pairwise(offsets))
    return float(max([WEEK - offsets[-1] + offsets[0], *gaps]))


def slots_between(offsets: WeekOffsets, start: float, end: float) -> list[int]:
    """Every slot in [start, end], oldest first."""
    # bisected in each week rather than every offset tested: an hourly schedule has 168 slots
    # a week, and every poll of every addon asks (bench/README.md, "Speed choices")
    slots: list[int] = []
    week = _week_start(start)
    while week <= end:
        first = bisect.bisect_left(offsets, start - week)
        last = bisect.bisect_right(offsets, end - week)
        slots.extend(week + offset for offset in offsets[first:last])
        week += WEEK
    return slots


def first_uncovered_slot(
    offsets: WeekOffsets,
    newest_completed_created: float | None,
    oldest_created: float,
    tolerance: float,
) -> float:
    """The first slot that no completed backup answers.

    A completed backup created at C answers every slot up to C + tolerance (it may start a
    little early); with none at all, the first slot of the addon's listed history is the first
    one unanswered.
    """
    if newest_completed_created is None:
        return first_slot_at_or_after(offsets, oldest_created - tolerance)
    return next_slot(offsets, newest_completed_created + tolerance)


def overdue_seconds(
    offsets: WeekOffsets,
    newest_completed_created: float | None,
    oldest_created: float,
    *,
    now: float,
    tolerance: float,
    grace: float,
) -> float:
    """How far `now` is past the first unanswered slot plus the grace a backup needs to run.

    Counting from the first unanswered slot rather than the latest one keeps the value growing
    while a schedule stays broken, even when `grace` is longer than the schedule's interval.
    """
    due = first_uncovered_slot(offsets, newest_completed_created, oldest_created, tolerance)
    return max(0.0, now - (due + grace))


def missed_slot_times(
    offsets: WeekOffsets,
    created: Sequence[float],
    oldest_created: float,
    *,
    now: float,
    tolerance: float,
    lookback: float,
) -> list[float]:
    """Slots in the lookback (not before the oldest listed backup) with no backup of any status
    created within `tolerance` of them, oldest first. `created` is sorted. Slots younger than
    `tolerance` are not judged yet: their backup may still be about to appear."""
    missed: list[float] = []
    for slot in slots_between(
        offsets, max(now - lookback, oldest_created - tolerance), now - tolerance
    ):
        # the first backup created at or after slot - tolerance answers it if it is near enough
        first = bisect.bisect_left(created, slot - tolerance)
        if first == len(created) or created[first] > slot + tolerance:
            missed.append(slot)
    return missed


def slots_backwards(offsets: WeekOffsets, moment: float) -> Iterator[float]:
    """Slots at or before `moment`, newest first, without end."""
    if not offsets:
        return
    slot = last_slot(offsets, moment)
    while True:
        yield slot
        slot = last_slot(offsets, slot - 1)
