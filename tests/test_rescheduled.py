"""An addon rescheduled since its newest scheduled backup (exporter/rescheduled.py): judged by
its backup-schedules, read once a slot goes missing, from when they changed."""

from __future__ import annotations

import json
import logging

import pytest

from exporter.addons import ReadSchedules
from exporter.aggregate import summarize
from exporter.backups import parse_schedule
from exporter.collectors.addon_health import AddonRow, overdue_of
from exporter.config import AddonRules
from exporter.runtime import Exporter
from tests.conftest import config_for, pick, poll_once
from tests.test_addons import DAILY, HOURLY, NOW, backup
from tests.test_scenarios import scrape

HOUR = 3600.0
RULES = AddonRules()
CHANGED = NOW - 2.5 * HOUR  # hourly at :00 became daily at 03:00


def hourly_until_the_change():
    """Hourly backups on the hour, the last at NOW - 3 h; none after the change."""
    return [
        backup(f"b{n}", "completed", NOW - n * HOUR, NOW - n * HOUR + 60, schedules=HOURLY)
        for n in range(3, 30)
    ]


def fold(backups, read):
    (addon,) = summarize(backups, NOW, 24 * HOUR, RULES, read=lambda p, a: read).addons
    return addon


def schedules(raw):
    return tuple(parse_schedule(entry) for entry in raw)


def test_by_its_backups_the_addon_looks_like_it_skipped_runs():
    addon = fold(hourly_until_the_change(), None)
    assert addon.expected_interval == HOUR
    assert addon.missed_slots == 2  # NOW - 2 h and NOW - 1 h; NOW itself is not judged yet
    # the first unanswered slot is NOW - 2 h; with an hour of grace it is an hour overdue,
    # and past its longest gap (Overdue pages) an hour later
    assert _overdue(addon, NOW) == HOUR
    assert _overdue(addon, NOW + 2 * HOUR) == 3 * HOUR


def test_a_newer_read_of_its_schedules_judges_it_from_the_change():
    read = ReadSchedules(schedules(DAILY), NOW - HOUR, CHANGED)
    addon = fold(hourly_until_the_change(), read)
    assert addon.schedules == schedules(DAILY)
    assert addon.expected_interval == 24 * HOUR
    assert addon.schedules_since == CHANGED
    assert addon.missed_slots == 0
    assert addon.last_missed_slot is None
    # its first slot is the next 03:00 after the change; only a day past it would it be overdue
    assert _overdue(addon, NOW + 2 * HOUR) == 0


def test_without_updated_at_it_counts_from_the_read():
    read = ReadSchedules(schedules(DAILY), NOW - HOUR, None)
    assert fold(hourly_until_the_change(), read).schedules_since == NOW - HOUR


def test_a_read_older_than_the_newest_scheduled_backup_changes_nothing():
    read = ReadSchedules(schedules(DAILY), NOW - 4 * HOUR, CHANGED)
    addon = fold(hourly_until_the_change(), read)
    assert addon.expected_interval == HOUR
    assert addon.schedules_since is None
    assert addon.missed_slots == 2


def test_a_read_that_agrees_with_the_backups_changes_nothing():
    read = ReadSchedules(schedules(HOURLY), NOW - HOUR, NOW - 40 * HOUR)
    addon = fold(hourly_until_the_change(), read)
    assert addon.schedules_since is None
    assert addon.missed_slots == 2


def _overdue(summary, now):
    return overdue_of(AddonRow("d", summary, RULES), now)


def test_a_new_schedule_s_slots_before_the_change_are_never_overdue():
    """Daily backups at 03:00, then hourly from CHANGED: the hourly slots between the last daily
    backup and the change were never due."""
    daily = [
        backup(f"d{n}", "completed", NOW - n * 24 * HOUR, NOW - n * 24 * HOUR + 60, schedules=DAILY)
        for n in range(1, 4)
    ]
    read = ReadSchedules(schedules(HOURLY), NOW - HOUR, CHANGED)
    addon = fold(daily, read)
    assert addon.expected_interval == HOUR
    # the first hourly slot after the change is NOW - 2 h; with an hour of grace, 1 h overdue
    assert _overdue(addon, NOW) == HOUR
    assert addon.missed_slots == 2


STOPPED = {"destination": "primary-backups", "project": "scenarios", "addon": "stopped-postgresql"}
SCHEDULES_PATH = "/v1/projects/scenarios/addons/stopped-postgresql/backup-schedules"


def schedule_reads(simulator):
    paths = [r.path.partition("?")[0] for r in simulator.requests]
    return [path for path in paths if path.endswith("/backup-schedules")]


def test_a_missed_slot_reads_the_schedules_once_and_a_change_is_followed(start_simulator, clock):
    simulator = start_simulator(backups_per_destination=300, scenarios=("stopped",))
    exporter = Exporter(config_for(simulator), clock=clock)
    poll_once(exporter)
    assert schedule_reads(simulator) == []  # a first read's numbers never wait for them
    poll_once(exporter)
    # the world still declares the hourly schedule it stopped keeping: one read, nothing new
    assert schedule_reads(simulator) == [SCHEDULES_PATH]
    assert pick(scrape(exporter), "northflank_addon_backup_missed_slots", **STOPPED) == 3
    poll_once(exporter)
    assert len(schedule_reads(simulator)) == 1  # no slot missed since that read
    # it was rescheduled to daily two hours ago; its next missed hourly slot reads that
    simulator.serve_raw(
        SCHEDULES_PATH,
        json.dumps(
            {
                "data": {
                    "schedules": [
                        {
                            "id": "s1",
                            "createdAt": "2026-01-01T00:00:00Z",
                            "updatedAt": _iso(clock.now - 2 * HOUR),
                            "backupType": "dump",
                            "scheduling": {"interval": "daily", "minute": [15], "hour": [4]},
                            "customDestinationId": "primary-backups",
                        }
                    ]
                },
                "pagination": {"hasNextPage": False, "count": 1},
            }
        ).encode(),
    )
    clock.now += HOUR
    poll_once(exporter)
    assert len(schedule_reads(simulator)) == 2
    samples = scrape(exporter)
    assert pick(samples, "northflank_addon_backup_expected_interval_seconds", **STOPPED) == 86400
    assert pick(samples, "northflank_addon_backup_missed_slots", **STOPPED) == 0
    assert pick(samples, "northflank_addon_backup_overdue_seconds", **STOPPED) == 0


def test_schedules_that_cannot_be_read_are_said_once_and_the_backups_still_judge(
    start_simulator, clock, caplog
):
    simulator = start_simulator(backups_per_destination=300, scenarios=("stopped",))
    simulator.serve_raw(
        SCHEDULES_PATH, b'{"error": {"status": 403, "message": "Missing permission"}}', status=403
    )
    exporter = Exporter(config_for(simulator), clock=clock)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        poll_once(exporter)
        poll_once(exporter)
        clock.now += HOUR
        poll_once(exporter)
    lines = [r.getMessage() for r in caplog.records if "backup-schedules" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "code=403" in lines[0] and "Project > Addons > General > Read" in lines[0]
    assert simulator.token not in caplog.text
    assert len(schedule_reads(simulator)) == 2  # tried again on the next missed slot
    assert pick(scrape(exporter), "northflank_addon_backup_missed_slots", **STOPPED) == 4


def _iso(moment):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")


def test_a_hostile_schedules_answer_leaves_the_destination_up_and_judged_by_its_backups(
    start_simulator, clock, caplog
):
    simulator = start_simulator(backups_per_destination=300, scenarios=("stopped",))
    bad_entry = {"id": "s1", "scheduling": {"interval": "hourly", "minute": ["x"]}}
    simulator.serve_raw(
        SCHEDULES_PATH,
        json.dumps(
            {"data": {"schedules": [bad_entry]}, "pagination": {"hasNextPage": False}}
        ).encode(),
    )
    exporter = Exporter(config_for(simulator), clock=clock)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        poll_once(exporter)
        assert poll_once(exporter)  # the poll that read them is clean
    samples = scrape(exporter)
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    assert pick(samples, "northflank_addon_backup_missed_slots", **STOPPED) == 3
    lines = [r.getMessage() for r in caplog.records if "backup-schedules" in r.getMessage()]
    assert len(lines) == 1 and "stopped-postgresql" in lines[0], lines


def test_a_bug_reading_schedules_never_fails_the_destination_s_poll(
    start_simulator, clock, caplog, monkeypatch
):
    def broken(item):
        raise RuntimeError("a bug")

    monkeypatch.setattr("exporter.rescheduled.read_addon_schedule", broken)
    simulator = start_simulator(backups_per_destination=300, scenarios=("stopped",))
    exporter = Exporter(config_for(simulator), clock=clock)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        poll_once(exporter)
        assert poll_once(exporter)
    assert pick(scrape(exporter), "northflank_addon_backup_missed_slots", **STOPPED) == 3
    assert any("RuntimeError('a bug')" in r.getMessage() for r in caplog.records)


def _daily_schedules_answer(updated_at):
    schedule = {
        "id": "s1",
        "createdAt": "2026-01-01T00:00:00Z",
        "backupType": "dump",
        "scheduling": {"interval": "daily", "minute": [15], "hour": [4]},
        "customDestinationId": "primary-backups",
    }
    if updated_at is not None:
        schedule["updatedAt"] = updated_at
    return json.dumps(
        {"data": {"schedules": [schedule]}, "pagination": {"hasNextPage": False, "count": 1}}
    ).encode()


@pytest.mark.parametrize("updated", ["ten years ahead", "missing", "moves on every read"])
def test_a_strange_updated_at_never_silences_a_rescheduled_addon_that_stopped(
    start_simulator, clock, updated
):
    """Rescheduled to daily, and no backup ever comes: whatever updatedAt says, the change took
    effect no later than the first read that saw it, so the daily slots after it are missed
    and the addon turns overdue. Before, each of these kept overdue and missed slots at 0:
    until 2036, or for good (each read reset the clock)."""
    simulator = start_simulator(backups_per_destination=300, scenarios=("stopped",))
    exporter = Exporter(config_for(simulator), clock=clock)
    poll_once(exporter)
    for _ in range(30):  # 30 hours, an hour a poll: a daily slot passes, well before expiry
        clock.now += HOUR
        moment = {
            "ten years ahead": _iso(clock.now + 3650 * 24 * HOUR),
            "missing": None,
            "moves on every read": _iso(clock.now),
        }[updated]
        simulator.serve_raw(SCHEDULES_PATH, _daily_schedules_answer(moment))
        poll_once(exporter)
    samples = scrape(exporter)
    assert pick(samples, "northflank_addon_backup_expected_interval_seconds", **STOPPED) == 86400
    assert pick(samples, "northflank_addon_backup_missed_slots", **STOPPED) >= 1
    assert pick(samples, "northflank_addon_backup_overdue_seconds", **STOPPED) > 0
