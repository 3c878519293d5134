"""An addon's restores and its drill: the series of each case, read from a fake shaped as the
official client declares the endpoint, and what reading them costs. Expected values come from
the simulator's own histories (`exporter/simulator/restores.py`), which share nothing with the
exporter."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest

from exporter.config import RestoreSettings
from exporter.resources.restores import next_read, summarize_restores
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.restores import HISTORIES
from exporter.simulator.units import DAY, HOUR
from tests.conftest import NOW, TOKEN, Clock, config_for, parse_samples, pick, run, series

CASES = ("restore-drilled", "restore-failed", "restore-stuck", "restore-paged")
STATUSES = {"scheduled", "in-progress", "completed", "aborting", "aborted", "failed"}
STATUSES |= {"not-supported"}
DRILL = 30 * DAY


def restores_of(simulator):
    return [r.path for r in simulator.requests if r.path.split("?")[0].endswith("/restores")]


@pytest.fixture
def served():
    """Every restore case and a never-restored addon ("stopped"), the restore cases and the
    never-restored one under a 30-day drill: read at once."""
    clock = Clock(NOW)
    world = build_world(7, NOW, 2, 260, scenarios=(*CASES, "stopped"))
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        config = config_for(simulator, coverage=True)
        drills = ((re.compile("scenarios/(restore-.*|stopped-.*)"), DRILL),)
        config = replace(config, restores=RestoreSettings(drills=drills))
        exporter = Exporter(config, clock=clock)
        run(exporter.poll_once())
        yield simulator, exporter, clock
        run(exporter.aclose())


def addon(case: str, kind: str) -> dict[str, str]:
    return {"project": "scenarios", "addon": f"{case}-{kind}"}


def expected_last(history: str) -> tuple[float, float] | None:
    """(completedAt, restoreTimestamp) of the history's newest completed restore at NOW."""
    done = [
        (NOW - r.began + r.lasted, NOW - r.began - HOUR)
        for r in HISTORIES[history]
        if r.outcome == "completed" and NOW - r.began + r.lasted <= NOW
    ]
    return max(done, default=None)


@pytest.mark.parametrize(
    ("case", "kind", "history"),
    [
        ("restore-drilled", "postgresql", "drilled"),
        ("restore-failed", "mysql", "failed"),
        ("restore-paged", "redis", "paged"),
    ],
)
def test_the_newest_completed_restore_and_the_point_it_proved(served, case, kind, history):
    _, exporter, _ = served
    samples = parse_samples(exporter.exposition().decode())
    labels = addon(case, kind)
    completed, point = expected_last(history)
    assert pick(samples, "northflank_addon_restore_last_completed_timestamp_seconds", **labels) == (
        completed
    )
    assert (
        pick(samples, "northflank_addon_restore_last_completed_point_timestamp_seconds", **labels)
        == point
    )
    counts = {
        dict(key)["status"]: value
        for key, value in series(samples, "northflank_addon_restores").items()
        if dict(key)["addon"] == labels["addon"]
    }
    assert set(counts) == STATUSES  # every status, as for backups
    outcomes = [r.outcome for r in HISTORIES[history]]
    assert counts["completed"] == outcomes.count("completed")
    assert counts["failed"] == outcomes.count("failed")
    assert sum(counts.values()) == len(outcomes)


def test_restores_over_two_pages_are_read_whole(served):
    simulator, _, _ = served
    paged = [p for p in restores_of(simulator) if "restore-paged" in p]
    assert len(paged) == 2 and "cursor=" in paged[1]
    assert len(HISTORIES["paged"]) > 100


def test_a_restore_in_progress_is_timed_from_the_first_read_that_saw_it(served):
    simulator, exporter, clock = served
    labels = addon("restore-stuck", "mongodb")
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_addon_restores", status="in-progress", **labels) == 1
    assert pick(samples, "northflank_addon_restore_running_seconds", **labels) == 0
    assert pick(samples, "northflank_addon_restore_last_completed_timestamp_seconds", **labels) is (
        None
    )
    read_before = len(restores_of(simulator))
    clock.now += 600  # two poll intervals: a running restore is read again sooner
    run(exporter.poll_once())
    again = restores_of(simulator)[read_before:]
    assert [p for p in again if "restore-stuck" in p]
    assert not [p for p in again if "restore-drilled" in p]  # nothing runs there
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_addon_restore_running_seconds", **labels) == 600


def test_an_addon_never_restored_has_counts_and_its_drill_but_no_last_restore(served):
    _, exporter, _ = served
    samples = parse_samples(exporter.exposition().decode())
    labels = addon("stopped", "postgresql")
    assert pick(samples, "northflank_addon_restores", status="completed", **labels) == 0
    assert pick(samples, "northflank_addon_restore_drill_interval_seconds", **labels) == DRILL
    assert pick(samples, "northflank_addon_restore_last_completed_timestamp_seconds", **labels) is (
        None
    )


def test_a_drill_policy_that_matches_nothing_publishes_nothing_and_reads_spread():
    """Without a drill, each addon's first read waits for a point of the interval its name
    picks: a start reads at once only the addon whose status says a restore runs, and a day of
    polls reads each addon once."""
    clock = Clock(NOW)
    world = build_world(7, NOW, 2, 260, scenarios=CASES)
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        config = config_for(simulator, coverage=True)
        nothing = ((re.compile("no-such-project/.*"), DRILL),)
        exporter = Exporter(replace(config, restores=RestoreSettings(drills=nothing)), clock=clock)
        run(exporter.poll_once())
        samples = parse_samples(exporter.exposition().decode())
        assert not series(samples, "northflank_addon_restore_drill_interval_seconds")
        assert restores_of(simulator) == [
            "/v1/projects/scenarios/addons/restore-stuck-mongodb/restores?per_page=100"
        ]
        addons = {
            (dict(k)["project"], dict(k)["addon"]) for k in series(samples, "northflank_addon_info")
        }
        for _ in range(24):
            clock.now += HOUR
            run(exporter.poll_once())
        # the stuck addon's restore runs: it is read again, every poll, after its first read
        read = [tuple(p.split("/")[3:6:2]) for p in restores_of(simulator)]
        stuck = ("scenarios", "restore-stuck-mongodb")
        paged = read.count(("scenarios", "restore-paged-redis"))
        assert set(read) == addons
        assert paged == 2  # once, in two pages
        assert sorted(read) == sorted(
            [*addons, ("scenarios", "restore-paged-redis")] + [stuck] * (read.count(stuck) - 1)
        )  # each once; the running one again every poll
        assert read.count(stuck) > 1
        run(exporter.aclose())


def test_a_restore_the_addon_status_shows_is_read_at_once_and_its_outcome_when_it_ends():
    """The failed history's newest restore ran from 6 h to 5 h 50 min before NOW. Started 5
    minutes into it, the listing shows the addon `restore`: its restores are read at once, not
    at the day's sweep, and again a poll interval later, as while any restore runs, which shows
    the failure; then nothing until the sweep."""
    began = NOW - HISTORIES["failed"][-1].began
    start = began + 300
    clock = Clock(start)
    world = build_world(7, NOW, 1, 100, scenarios=("restore-failed",))
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        config = config_for(simulator, coverage=True)
        exporter = Exporter(config, clock=clock)
        reads, failed = [], []
        labels = addon("restore-failed", "mysql")
        while clock.now < start + 3 * HOUR:
            before = len(restores_of(simulator))
            run(exporter.poll_once())
            if len(restores_of(simulator)) > before:
                reads.append(clock.now - start)
                samples = parse_samples(exporter.exposition().decode())
                failed.append(
                    pick(
                        samples, "northflank_addon_restore_last_failed_timestamp_seconds", **labels
                    )
                )
            clock.now += 300
        run(exporter.aclose())
    assert reads == [0, 300]
    assert failed == [None, began + HISTORIES["failed"][-1].lasted]


def test_restores_can_be_switched_off():
    clock = Clock(NOW)
    world = build_world(7, NOW, 1, 100, scenarios=CASES)
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        config = config_for(simulator, coverage=True)
        drills = ((re.compile(".*"), DRILL),)
        off = RestoreSettings(enabled=False, drills=drills)
        exporter = Exporter(replace(config, restores=off), clock=clock)
        run(exporter.poll_once())
        samples = parse_samples(exporter.exposition().decode())
        assert restores_of(simulator) == []
        assert not series(samples, "northflank_addon_restores")
        assert not series(samples, "northflank_addon_restore_drill_interval_seconds")
        run(exporter.aclose())


def test_the_newest_failure_is_timed_by_its_completed_at(served):
    _, exporter, _ = served
    samples = parse_samples(exporter.exposition().decode())
    failed = HISTORIES["failed"][-1]
    assert failed.outcome == "failed"
    assert (
        pick(
            samples,
            "northflank_addon_restore_last_failed_timestamp_seconds",
            **addon("restore-failed", "mysql"),
        )
        == NOW - failed.began + failed.lasted
    )
    assert (
        pick(
            samples,
            "northflank_addon_restore_last_failed_timestamp_seconds",
            **addon("restore-drilled", "postgresql"),
        )
        is None
    )


STUCK_RESTORES = "/v1/projects/scenarios/addons/restore-stuck-mongodb/restores"


def listing(*restores: dict) -> bytes:
    return json.dumps(
        {"data": {"restores": list(restores)}, "pagination": {"hasNextPage": False}}
    ).encode()


def test_a_failure_listed_without_completed_at_is_timed_by_the_read_that_saw_it_end(served):
    """The clients declare completedAt optional: a restore seen running, then failed with no
    completedAt, ended between those reads; one never seen running has no known end."""
    simulator, exporter, clock = served
    labels = addon("restore-stuck", "mongodb")
    point = "2026-01-01T00:00:00.000Z"
    ended = {
        "id": "restore-stuck-mongodb-restore-000",
        "backupId": "b",
        "status": "failed",
        "restoreTimestamp": point,
    }
    old = {"id": "an-old-one", "backupId": "b", "status": "aborted", "restoreTimestamp": point}
    simulator.serve_raw(STUCK_RESTORES, listing(ended, old))
    clock.now += 600
    run(exporter.poll_once())
    samples = parse_samples(exporter.exposition().decode())
    assert (
        pick(samples, "northflank_addon_restore_last_failed_timestamp_seconds", **labels)
        == NOW + 600
    )
    assert pick(samples, "northflank_addon_restores", status="failed", **labels) == 1
    assert pick(samples, "northflank_addon_restores", status="aborted", **labels) == 1
    assert pick(samples, "northflank_addon_restore_running_seconds", **labels) is None
    # a new process never saw it run: it knows the failures, not when they ended
    fresh = Exporter(exporter.config, clock=clock)
    run(fresh.poll_once())
    samples = parse_samples(fresh.exposition().decode())
    assert pick(samples, "northflank_addon_restores", status="failed", **labels) == 1
    assert pick(samples, "northflank_addon_restore_last_failed_timestamp_seconds", **labels) is None
    run(fresh.aclose())


def test_a_drilled_addon_is_read_again_when_its_drill_lapses_then_hourly_until_drilled():
    """The drilled history's last restore completed three days before NOW; under a 3.5-day
    drill it lapses half a day after NOW, sooner than the 24 h interval."""
    clock = Clock(NOW)
    world = build_world(7, NOW, 1, 100, scenarios=("restore-drilled",))
    every = 3.5 * DAY
    last = NOW - HISTORIES["drilled"][-1].began + HISTORIES["drilled"][-1].lasted
    lapse = last + every
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        config = config_for(simulator, coverage=True)
        drills = ((re.compile("scenarios/restore-drilled-.*"), every),)
        exporter = Exporter(replace(config, restores=RestoreSettings(drills=drills)), clock=clock)
        reads = []
        while clock.now < lapse + 3 * HOUR:
            before = len(restores_of(simulator))
            run(exporter.poll_once())
            if len(restores_of(simulator)) > before:
                reads.append(clock.now)
            clock.now += 300
        run(exporter.aclose())
    first_after_lapse = NOW + math.ceil((lapse - NOW) / 300) * 300
    assert reads == [NOW, first_after_lapse, first_after_lapse + HOUR, first_after_lapse + 2 * HOUR]


@pytest.mark.parametrize(
    ("running", "last", "every", "expected"),
    [
        (("r",), None, 30 * DAY, NOW + 300),  # one runs: in a poll interval
        ((), None, None, NOW + DAY),  # no drill: in an interval
        ((), None, 30 * DAY, NOW + HOUR),  # never drilled: overdue, hourly
        ((), NOW - 29.5 * DAY, 30 * DAY, NOW + 0.5 * DAY),  # when the drill lapses
        ((), NOW - 10 * DAY, 30 * DAY, NOW + DAY),  # lapses in 20 days: in an interval
        ((), NOW - 30 * DAY, 30 * DAY, NOW + HOUR),  # lapsed just now: overdue
    ],
)
def test_when_restores_are_read_next(running, last, every, expected):
    summary = summarize_restores([])
    summary = replace(summary, running=running, last_completed=last)
    assert next_read(summary, every, NOW, poll=300, interval=DAY) == expected
