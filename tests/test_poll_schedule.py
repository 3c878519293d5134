"""When a destination is read next (exporter/poll_schedule.py), from slots worked out by hand:
an hourly addon at minute 15 whose backups take two minutes is read at :19 (its slot, its run
time and the two minutes it takes to be listed), not every five minutes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.addons import AddonSummary
from exporter.aggregate import DestinationSummary
from exporter.model import Destination, Schedule
from exporter.poll_schedule import HEARTBEAT, PollTiming, next_read
from exporter.schedule import week_offsets
from exporter.snapshot import DestinationState

# A Monday, 10:00 UTC: nothing about the week matters to an hourly schedule.
MONDAY_10 = 1_772_445_600.0  # 2026-03-02T10:00:00Z
MINUTE = 60.0
TIMING = PollTiming(interval=300.0, tolerance=300.0, grace=3600.0)
HOURLY_15 = (Schedule("hourly", (15,)),)
DAILY_0230 = (Schedule("daily", (30,), (2,)),)


def addon(schedules=HOURLY_15, **fields) -> AddonSummary:
    """An hourly addon whose newest backup, of the 09:15 slot, completed in two minutes."""
    base = AddonSummary(
        project="p",
        addon="a",
        project_name="P",
        addon_name="A",
        addon_type="postgresql",
        addon_version="16",
        backups_by_status=(("completed", 10),),
        last_completed=MONDAY_10 - 43 * MINUTE,
        last_completed_size=100,
        recent_size_median=100.0,
        last_completed_duration=2 * MINUTE,
        newest_completed_created=MONDAY_10 - 45 * MINUTE,
        last_failure=None,
        consecutive_failures=0,
        oldest_running_created=None,
        restorable_until=MONDAY_10 + 86400,
        expiring=0,
        oldest_created=MONDAY_10 - 86400,
        schedules=schedules,
        offsets=week_offsets(schedules),
        expected_interval=3600.0,
        missed_slots=0,
        last_missed_slot=None,
    )
    return replace(base, **fields)


def state(*addons: AddonSummary, up: bool = True) -> DestinationState:
    summary = DestinationSummary((), (), None, 0, None, 10, 0, addons)
    return DestinationState(
        Destination("d", "D", "globalBackups"), polled=True, up=up, summary=summary
    )


def test_a_destination_never_read_is_due_at_once():
    assert next_read(DestinationState(Destination("d", "D", "x")), None, TIMING) == 0.0


def test_a_failed_read_is_tried_again_in_an_interval():
    assert next_read(state(addon(), up=False), MONDAY_10, TIMING) == MONDAY_10 + 300.0


def test_after_a_slot_s_backup_landed_the_next_read_is_after_the_next_slot_s_run():
    assert next_read(state(addon()), MONDAY_10, TIMING) == MONDAY_10 + 19 * MINUTE


def test_a_read_before_the_run_was_listed_waits_for_the_next_gathered_read():
    """Read at 10:16, the 10:15 backup not listed yet: it is usually done at 10:19, but the
    reads a slot is worth are gathered, one every GATHER at most: 10:31."""
    assert next_read(state(addon()), MONDAY_10 + 16 * MINUTE, TIMING) == MONDAY_10 + 31 * MINUTE


def test_an_unanswered_slot_turning_overdue_is_read_on_time_inside_the_gathering():
    """Read at 11:05, the 10:15 backup still not listed: it turns overdue at 11:15, and the
    read comes then, not at 11:20, so a backup that did land is seen before Overdue shows."""
    late = MONDAY_10 + 65 * MINUTE
    assert next_read(state(addon()), late, TIMING) == MONDAY_10 + 75 * MINUTE


def test_a_daily_slot_still_unanswered_is_read_when_it_turns_overdue():
    """The 02:30 backup not listed at 03:10: the next read is at 03:30, slot plus the grace,
    so that Overdue is judged on a fresh read."""
    daily = addon(
        schedules=DAILY_0230,
        offsets=week_offsets(DAILY_0230),
        newest_completed_created=MONDAY_10 - 31.5 * 3600,
    )
    three_ten = MONDAY_10 - 7 * 3600 + 10 * MINUTE
    assert next_read(state(daily), three_ten, TIMING) == three_ten + 20 * MINUTE


def test_around_slots_off_reads_every_interval():
    timing = PollTiming(interval=300.0, tolerance=300.0, grace=3600.0, around_slots=False)
    assert next_read(state(addon()), MONDAY_10, timing) == MONDAY_10 + 300.0


def test_an_addon_whose_last_run_failed_is_read_on_time_for_its_next_run():
    """Its 10:15 run decides Failing: read when it is usually done and every interval while
    it runs, not at the gathered reads."""
    failed = addon(consecutive_failures=1)
    assert next_read(state(failed), MONDAY_10 + 16 * MINUTE, TIMING) == MONDAY_10 + 19 * MINUTE
    running = addon(consecutive_failures=1, oldest_running_created=MONDAY_10 + 15 * MINUTE)
    assert next_read(state(running), MONDAY_10 + 20 * MINUTE, TIMING) == MONDAY_10 + 25 * MINUTE


def test_a_running_backup_is_read_at_every_gathered_read():
    running = addon(oldest_running_created=MONDAY_10 + 15 * MINUTE)
    assert next_read(state(running), MONDAY_10 + 20 * MINUTE, TIMING) == MONDAY_10 + 35 * MINUTE


def test_an_addon_long_overdue_is_read_after_its_slots_and_no_oftener():
    """Its 06:15 slot unanswered, overdue since 07:15: polling every five minutes no longer
    brings the alert sooner; the next slot's run time is when a backup that ends it may land."""
    stopped = addon(newest_completed_created=MONDAY_10 - 4 * 3600 - 45 * MINUTE)
    assert next_read(state(stopped), MONDAY_10, TIMING) == MONDAY_10 + 19 * MINUTE


def test_a_daily_addon_overdue_backs_off_to_the_heartbeat():
    """Its 02:30 slot overdue since 03:30, read at 10:00: the next slot is tomorrow, so the
    heartbeat decides."""
    daily = addon(
        schedules=DAILY_0230,
        offsets=week_offsets(DAILY_0230),
        newest_completed_created=MONDAY_10 - 31.5 * 3600,
    )
    assert next_read(state(daily), MONDAY_10, TIMING) == MONDAY_10 + HEARTBEAT


def test_the_soonest_addon_decides_and_the_heartbeat_bounds_a_daily_one():
    daily = addon(
        addon="b",
        schedules=DAILY_0230,
        offsets=week_offsets(DAILY_0230),
        newest_completed_created=MONDAY_10 - 7.5 * 3600,
        last_completed_duration=10 * MINUTE,
    )
    assert next_read(state(daily), MONDAY_10, TIMING) == MONDAY_10 + HEARTBEAT
    assert next_read(state(daily, addon()), MONDAY_10, TIMING) == MONDAY_10 + 19 * MINUTE


@pytest.mark.parametrize("addons", [(), (addon(schedules=(), offsets=()),)])
def test_a_destination_with_no_known_schedule_is_read_every_interval(addons):
    assert next_read(state(*addons), MONDAY_10, TIMING) == MONDAY_10 + TIMING.interval


def test_a_long_interval_stretches_the_heartbeat():
    slow = PollTiming(interval=3600.0, tolerance=300.0, grace=3600.0)
    assert slow.heartbeat == 3600.0
