"""Schedule arithmetic: properties checked against a minute-by-minute brute force, and cases
worked out by hand across hour, day, week, month and year boundaries."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.durations import WEEK
from exporter.model import Schedule
from exporter.schedule import (
    first_uncovered_slot,
    last_slot,
    longest_gap,
    missed_slot_times,
    next_slot,
    overdue_seconds,
    slots_backwards,
    slots_between,
    week_offsets,
)
from tests import reference

MINUTE, HOUR, DAY = 60, 3600, 86400


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def matches(schedules, epoch):
    api_form = [
        {
            "interval": s.interval,
            "minute": list(s.minutes),
            "hour": list(s.hours),
            "day": list(s.days),
        }
        for s in schedules
    ]
    return reference.matches(api_form, epoch)


minutes = st.lists(st.integers(0, 59), min_size=1, max_size=4, unique=True).map(sorted)
hours = st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True).map(sorted)
days = st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True).map(sorted)
schedule_strategy = st.one_of(
    st.builds(lambda m: Schedule("hourly", tuple(m)), minutes),
    st.builds(lambda m, h: Schedule("daily", tuple(m), tuple(h)), minutes, hours),
    st.builds(
        lambda m, h, d: Schedule("weekly", tuple(m), tuple(h), tuple(d)), minutes, hours, days
    ),
)
schedule_sets = st.lists(schedule_strategy, min_size=1, max_size=3)
moments = st.floats(min_value=at("1999-12-25T00:00:00"), max_value=at("2040-01-05T00:00:00"))


@settings(max_examples=150, deadline=None)
@given(schedule_sets, moments)
def test_last_and_next_slot_bracket_now_with_no_slot_between(schedules, now):
    offsets = week_offsets(schedules)
    last, following = last_slot(offsets, now), next_slot(offsets, now)
    assert last <= now < following
    assert matches(schedules, last)
    assert matches(schedules, following)
    assert following - last <= WEEK
    minute = last + MINUTE
    while minute < following:
        assert not matches(schedules, minute), datetime.fromtimestamp(minute, tz=UTC)
        minute += MINUTE


@settings(max_examples=100, deadline=None)
@given(schedule_sets, moments)
def test_slots_between_are_exactly_the_matching_minutes(schedules, start):
    offsets = week_offsets(schedules)
    end = start + 2 * DAY
    listed = list(slots_between(offsets, start, end))
    first_minute = (int(start) // MINUTE + (start % MINUTE > 0)) * MINUTE
    brute = [m for m in range(first_minute, int(end) + 1, MINUTE) if matches(schedules, m)]
    assert listed == brute


@settings(max_examples=100, deadline=None)
@given(
    schedule_sets,
    moments,
    st.lists(st.floats(min_value=0, max_value=3 * DAY), max_size=40),
    st.sampled_from([0, 60, 300, 3600]),
)
def test_missed_slot_times_are_the_matching_minutes_with_no_creation_near(
    schedules, now, ages, tolerance
):
    offsets = week_offsets(schedules)
    created = sorted(now - age for age in ages)
    oldest = created[0] if created else now - DAY
    start, end = max(now - 2 * DAY, oldest - tolerance), now - tolerance
    first_minute = (int(start) // MINUTE + (start % MINUTE > 0)) * MINUTE
    brute = [
        float(m)
        for m in range(first_minute, int(end) + 1, MINUTE)
        if start <= m <= end
        and matches(schedules, m)
        and not any(abs(c - m) <= tolerance for c in created)
    ]
    assert (
        missed_slot_times(offsets, created, oldest, now=now, tolerance=tolerance, lookback=2 * DAY)
        == brute
    )


@settings(max_examples=100, deadline=None)
@given(schedule_sets, moments)
def test_slots_backwards_walk_the_same_slots_in_reverse(schedules, now):
    offsets = week_offsets(schedules)
    walked = []
    for slot in slots_backwards(offsets, now):
        if slot < now - 3 * DAY:
            break
        walked.append(slot)
    assert walked == list(reversed(list(slots_between(offsets, now - 3 * DAY, now))))


@settings(max_examples=100, deadline=None)
@given(schedule_sets)
def test_longest_gap_is_the_longest_distance_between_consecutive_slots(schedules):
    offsets = week_offsets(schedules)
    start = at("2026-11-30T00:00:00")  # a Monday
    slots = list(slots_between(offsets, start, start + 2 * WEEK))
    assert longest_gap(offsets) == max(b - a for a, b in itertools.pairwise(slots))


HOURLY = [Schedule("hourly", (15, 45))]
DAILY = [Schedule("daily", (30,), (2, 14))]
WEEKLY = [Schedule("weekly", (30,), (18,), (4,))]  # Fridays 18:30 (0 = Monday)


@pytest.mark.parametrize(
    ("schedules", "now", "last", "following"),
    [
        (HOURLY, "2026-11-30T12:20:00", "2026-11-30T12:15:00", "2026-11-30T12:45:00"),
        (HOURLY, "2026-11-30T12:15:00", "2026-11-30T12:15:00", "2026-11-30T12:45:00"),
        (HOURLY, "2026-12-31T23:50:00", "2026-12-31T23:45:00", "2027-01-01T00:15:00"),
        (HOURLY, "2027-01-01T00:10:00", "2026-12-31T23:45:00", "2027-01-01T00:15:00"),
        (DAILY, "2026-11-30T01:00:00", "2026-11-29T14:30:00", "2026-11-30T02:30:00"),
        (DAILY, "2026-11-30T20:00:00", "2026-11-30T14:30:00", "2026-12-01T02:30:00"),
        (DAILY, "2028-02-29T15:00:00", "2028-02-29T14:30:00", "2028-03-01T02:30:00"),
        (DAILY, "2026-12-31T23:59:59", "2026-12-31T14:30:00", "2027-01-01T02:30:00"),
        (WEEKLY, "2026-11-30T12:00:00", "2026-11-27T18:30:00", "2026-12-04T18:30:00"),
        (WEEKLY, "2026-12-04T18:30:00", "2026-12-04T18:30:00", "2026-12-11T18:30:00"),
        (WEEKLY, "2027-01-01T19:00:00", "2027-01-01T18:30:00", "2027-01-08T18:30:00"),
        (WEEKLY, "2026-12-31T12:00:00", "2026-12-25T18:30:00", "2027-01-01T18:30:00"),
    ],
)
def test_hand_worked_last_and_next_slots(schedules, now, last, following):
    offsets = week_offsets(schedules)
    assert last_slot(offsets, at(now)) == at(last)
    assert next_slot(offsets, at(now)) == at(following)


@pytest.mark.parametrize(
    ("schedules", "gap"),
    [
        (HOURLY, 30 * MINUTE),
        ([Schedule("hourly", (0, 10))], 50 * MINUTE),
        (DAILY, 12 * HOUR),
        ([Schedule("daily", (0,), (1, 5))], 20 * HOUR),
        (WEEKLY, WEEK),
        ([Schedule("weekly", (0,), (0,), (0, 2))], 5 * DAY),
        ([Schedule("daily", (0,), (3,)), Schedule("hourly", (30,))], HOUR),
    ],
)
def test_hand_worked_longest_gaps(schedules, gap):
    assert longest_gap(week_offsets(schedules)) == gap


HOURLY_00 = week_offsets([Schedule("hourly", (0,))])


def test_overdue_is_zero_while_the_last_slot_is_answered():
    now = at("2026-11-30T12:20:00")
    assert (
        overdue_seconds(
            HOURLY_00,
            at("2026-11-30T12:00:12"),
            at("2026-11-20T00:00:00"),
            now=now,
            tolerance=300,
            grace=3600,
        )
        == 0
    )


def test_overdue_grows_from_the_first_unanswered_slot_past_the_grace():
    newest_completed = at("2026-11-30T09:00:10")
    oldest = at("2026-11-20T00:00:00")
    first = first_uncovered_slot(HOURLY_00, newest_completed, oldest, 300)
    assert first == at("2026-11-30T10:00:00")
    for now, expected in [
        ("2026-11-30T10:59:00", 0),
        ("2026-11-30T11:05:00", 300),
        ("2026-11-30T12:05:00", 3900),
        ("2026-11-30T13:00:00", 7200),
    ]:
        assert (
            overdue_seconds(
                HOURLY_00, newest_completed, oldest, now=at(now), tolerance=300, grace=3600
            )
            == expected
        )


def test_a_backup_started_just_before_its_slot_answers_it():
    early = at("2026-11-30T11:57:00")  # three minutes early, tolerance five
    assert first_uncovered_slot(HOURLY_00, early, 0.0, 300) == at("2026-11-30T13:00:00")


def test_never_completed_is_overdue_from_the_first_listed_slot():
    oldest = at("2026-11-30T06:00:20")
    assert first_uncovered_slot(HOURLY_00, None, oldest, 300) == at("2026-11-30T06:00:00")
    assert (
        overdue_seconds(
            HOURLY_00, None, oldest, now=at("2026-11-30T08:00:00"), tolerance=300, grace=3600
        )
        == 3600
    )


def test_missed_slots_hand_worked():
    created = sorted(
        at(t)
        for t in [
            "2026-11-30T06:00:05",  # answers 06:00
            "2026-11-30T07:03:00",  # answers 07:00, within the 5m tolerance
            "2026-11-30T08:30:00",  # answers nothing: 08:00 and 09:00 are missed
            "2026-11-30T09:59:00",  # answers 10:00, a minute early
            "2026-11-30T11:00:00",  # answers 11:00
        ]
    )

    def missed(now, lookback=7 * DAY):
        return missed_slot_times(
            HOURLY_00, created, created[0], now=at(now), tolerance=300, lookback=lookback
        )

    # 12:00 is younger than the tolerance at 12:02, so not judged yet; 05:00 is before the
    # oldest listed backup, so not judged at all.
    eight, nine, noon = (at(f"2026-11-30T{h}:00:00") for h in ("08", "09", "12"))
    assert missed("2026-11-30T12:02:00") == [eight, nine]
    assert missed("2026-11-30T12:06:00") == [eight, nine, noon]
    # a lookback of 3h judges 09:00, 10:00, 11:00 (and 12:00 at 12:06)
    assert missed("2026-11-30T12:06:00", lookback=3 * HOUR + 360) == [nine, noon]


def test_backups_of_any_status_answer_a_slot_for_missed_slots():
    created = [at("2026-11-30T10:00:30")]  # whatever its status, the scheduler did run
    assert (
        missed_slot_times(
            HOURLY_00,
            created,
            created[0],
            now=at("2026-11-30T10:30:00"),
            tolerance=300,
            lookback=DAY,
        )
        == []
    )


def test_the_first_monday_anchor_is_right():
    offsets = week_offsets([Schedule("weekly", (0,), (0,), (0,))])  # Mondays 00:00
    assert datetime.fromtimestamp(last_slot(offsets, at("2026-12-02T00:00:00")), tz=UTC) == (
        datetime(2026, 11, 30, tzinfo=UTC)
    )
    assert timedelta(seconds=WEEK) == timedelta(days=7)
