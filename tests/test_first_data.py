"""How soon the first numbers appear: a read the budget can afford goes at the API's pace, a
larger one says at the start how long it will take and then keeps to the rolling-hour promise,
judged by the simulator's own request log on a fake clock."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from exporter.config import RateLimitSettings
from exporter.durations import parse_duration
from exporter.runtime import Exporter
from exporter.simulator import Faults, Simulator, build_world
from tests.conftest import (
    NOW,
    TOKEN,
    Clock,
    FakeTime,
    Serving,
    config_for,
    parse_samples,
    pick,
    run,
    with_account,
)
from tests.test_budget import most_in_any_hour

HOUR = 3600.0
DEFAULT_BUDGET = RateLimitSettings()  # what a user gets without rate_limit: keys


def exporter_for(simulator, clock, rate_limit=DEFAULT_BUDGET, **poll):
    config = with_account(config_for(simulator, **poll), rate_limit=rate_limit)
    fake = FakeTime(clock)
    return Exporter(config, clock=clock, sleep=fake.sleep), fake


def lines(caplog, start):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


def test_a_read_the_budget_affords_goes_at_once_with_the_default_budget(start_simulator, clock):
    simulator = start_simulator(destinations=3, backups_per_destination=450)
    exporter, fake = exporter_for(simulator, clock)
    assert run(exporter.poll_once())
    assert len(simulator.requests) == 16  # the listing and 5 pages for each destination
    assert {request.at for request in simulator.requests} == {NOW}  # nothing waited
    assert fake.slept == []
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_exporter_throttled_seconds_total") == 0
    assert pick(samples, "northflank_exporter_rate_limit_budget_remaining_requests") == 300 - 16
    assert pick(samples, "northflank_exporter_poll_cycle_remaining_seconds") == 0
    run(exporter.aclose())


def test_a_first_read_of_two_and_a_half_budgets_keeps_the_promise_and_says_how_long(caplog):
    clock = Clock(NOW)
    world = build_world(3, NOW, 3, 5000, interval="hourly")
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**6) as simulator:
        caplog.set_level(logging.INFO)
        budget = RateLimitSettings(requests_per_hour=60, reserve=0)
        exporter, _ = exporter_for(simulator, clock, budget)
        assert run(exporter.poll_once())
        took = clock.now - NOW
        times = [request.at for request in simulator.requests]
        assert len(times) >= 2.4 * 60  # about 150 pages and the listing: 2.5 budgets
        assert most_in_any_hour(times) <= 60
        (start,) = lines(caplog, "this poll cycle needs about")
        assert "rate_limit.requests_per_hour=60" in start
        assert "a higher rate_limit.requests_per_hour" in start
        needed = int(re.search(r"needs about (\d+) more requests", start).group(1))
        # said at the first wait, after what the budget let go at once
        at_once = times.count(NOW)
        assert at_once <= 54  # nine tenths of 60: a first read is discovery
        assert 0.8 * 150 <= at_once + needed <= 1.2 * 150
        estimate = parse_duration(re.search(r"take about (\S+);", start).group(1))
        assert abs(estimate - took) <= 0.2 * took
        progress = lines(caplog, "read progress:")
        assert 1 <= len(progress) <= took / 60 + 1  # at most once a minute
        assert re.fullmatch(
            r"read progress: \d+ of about \d+ pages, \d of 3 destinations done, about \S+ left",
            progress[-1],
        )
        samples = parse_samples(exporter.exposition().decode())
        assert pick(samples, "northflank_exporter_poll_cycle_remaining_seconds") == 0
        run(exporter.aclose())


def test_a_restart_in_the_middle_of_the_hour_costs_at_most_its_first_read(caplog):
    clock = Clock(NOW)
    world = build_world(4, NOW, 4, 3000, interval="hourly")
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**6) as simulator:
        budget = RateLimitSettings(requests_per_hour=300, reserve=0)
        before, fake = exporter_for(simulator, clock, budget, interval=60.0)
        fake.until = NOW + HOUR / 2
        run(before.parts[0].poller.run(fake.stop))
        run(before.aclose())
        restarted = len(simulator.requests)
        after, fake = exporter_for(simulator, clock, budget, interval=60.0)
        fake.until = NOW + 2 * HOUR
        run(after.parts[0].poller.run(fake.stop))
        run(after.aclose())
    times = [request.at for request in simulator.requests]
    assert most_in_any_hour(times[:restarted]) <= 300  # each process keeps the promise...
    assert most_in_any_hour(times[restarted:]) <= 300
    # ...and together they spend at most the old one's hour and the new one's first read
    assert most_in_any_hour(times) <= 300 + 225


def test_each_destination_is_published_when_its_own_first_read_completes(start_simulator, clock):
    simulator = start_simulator(
        destinations=2,
        faults=Faults(stall_seconds=20.0, destination_fault={"backups-02": "stall"}),
    )
    config = config_for(simulator, timeout=60.0)
    with Serving(Exporter(config, clock=clock)) as serving:
        deadline = httpx.Timeout(10.0)

        def published(destination):
            text = httpx.get(f"{serving.url}/metrics", timeout=deadline).text
            return pick(parse_samples(text), "northflank_up", destination=destination) == 1

        wait_for_event(lambda: any("backups-02/backups" in p for p in simulator.stalled))
        wait_for_event(lambda: published("primary-backups"))
        assert not published("backups-02")  # still stalled: the cycle has not completed
        assert httpx.get(f"{serving.url}/-/ready").status_code == 503


def wait_for_event(condition, timeout=15.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the event never happened")
        time.sleep(0.05)
