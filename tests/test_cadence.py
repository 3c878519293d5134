"""When a managed-storage listing is read: once a slot when healthy, twice when slow, and at
the moment an unanswered slot turns overdue."""

from __future__ import annotations

from exporter.cadence import MIN_RUN, next_read, usual_run
from exporter.durations import HOUR
from exporter.model import Schedule
from exporter.schedule import week_offsets

HOURLY = week_offsets([Schedule("hourly", (15,))])
DAILY = week_offsets([Schedule("daily", (0,), (2,))])
# Monday 2026-11-30 00:00 UTC
MONDAY = 1796083200.0 - 86400
GRACE = HOUR
SETTINGS = {"grace": GRACE, "retry": 300.0, "heartbeat": HOUR}


def test_the_usual_run_is_the_last_one_with_a_margin_within_the_grace():
    assert usual_run(100.0, GRACE) == MIN_RUN + 150.0
    assert usual_run(None, GRACE) == GRACE / 2
    assert usual_run(10 * HOUR, GRACE) == GRACE
    assert usual_run(0.0, GRACE) == MIN_RUN


def test_a_healthy_schedule_is_read_once_per_slot_when_its_backup_should_be_done():
    # read at 00:20, the 00:15 backup answered: the next slot is 01:15, done by 01:25
    read_at = MONDAY + 20 * 60
    after = next_read(
        HOURLY,
        read_at=read_at,
        first_unanswered=MONDAY + HOUR + 15 * 60,
        usual=600.0,
        **{**SETTINGS, "heartbeat": 6 * HOUR},
    )
    assert after == MONDAY + HOUR + 25 * 60


def test_a_slot_not_done_when_expected_is_read_again_when_it_would_turn_overdue():
    read_at = MONDAY + 2 * HOUR + 10 * 60  # 02:10, the 02:00 daily backup not done yet
    after = next_read(
        DAILY, read_at=read_at, first_unanswered=MONDAY + 2 * HOUR, usual=600.0, **SETTINGS
    )
    assert after == MONDAY + 2 * HOUR + GRACE


def test_an_overdue_schedule_is_read_again_after_a_wait_that_doubles_up_to_the_heartbeat():
    unanswered = MONDAY + 2 * HOUR
    overdue_at = unanswered + GRACE
    waits = []
    read_at = overdue_at
    for _ in range(6):
        after = next_read(
            DAILY, read_at=read_at, first_unanswered=unanswered, usual=600.0, **SETTINGS
        )
        waits.append(after - read_at)
        read_at = after
    assert waits == [300.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0]


def test_the_heartbeat_bounds_every_wait_and_no_schedule_means_only_the_heartbeat():
    assert next_read((), read_at=MONDAY, first_unanswered=None, usual=600.0, **SETTINGS) == (
        MONDAY + HOUR
    )
    # a weekly-looking gap is still read every heartbeat
    after = next_read(
        DAILY,
        read_at=MONDAY + 3 * HOUR,
        first_unanswered=MONDAY + 26 * HOUR,
        usual=600.0,
        **SETTINGS,
    )
    assert after == MONDAY + 4 * HOUR
