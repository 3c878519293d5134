"""The request budget: a token bucket, the reserve and 429 pauses, judged by the simulator's own
request log over simulated hours (a fake clock that sleeping moves forward)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from exporter.budget import FLIGHT_MARGIN, RequestBudget, Spend
from exporter.config import RateLimitSettings
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.server import RateLimit
from exporter.simulator.virtual_time import run_virtually
from tests.conftest import (
    NOW,
    TOKEN,
    Clock,
    FakeTime,
    config_for,
    parse_samples,
    pick,
    run,
    with_account,
)

HOUR = 3600.0


def most_in_any_hour(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= HOUR:
            start += 1
        best = max(best, end - start + 1)
    return best


def spend(budget, clock, until, kind=Spend.POLL):
    sent = []

    async def go():
        while clock.now < until:
            await budget.acquire(kind)
            sent.append(clock.now)

    run(go())
    return sent


def test_the_rolling_hour_never_holds_more_than_the_budget_and_spends_it_at_once():
    clock = Clock(NOW)
    fake = FakeTime(clock, NOW + 3 * HOUR)
    budget = RequestBudget(300, 0, clock=clock, sleep=fake.sleep)
    sent = spend(budget, clock, NOW + 3 * HOUR)
    assert most_in_any_hour(sent) <= 300
    assert sent.count(NOW) == 300  # what the hour allows goes at once, at the API's pace
    assert sent[300] == NOW + HOUR + FLIGHT_MARGIN  # then as the first ones leave the hour
    assert len([t for t in sent if t < NOW + 3 * HOUR]) == 900  # three whole hours spent


def test_a_resync_leaves_a_quarter_of_the_hour_to_discovery_and_the_polls():
    clock = Clock(NOW)
    fake = FakeTime(clock)
    budget = RequestBudget(300, 0, clock=clock, sleep=fake.sleep)
    run(spend_now(budget, 225))
    assert (clock.now, fake.slept) == (NOW, [])  # 3/4 of the hour at once...
    assert budget.delay(Spend.BACKGROUND) == HOUR + FLIGHT_MARGIN  # ...and no more within it
    assert budget.remaining() == 75
    assert budget.delay(Spend.DISCOVERY) == 0  # while discovery and polls still go at once
    assert budget.delay(Spend.POLL) == 0


def test_discovery_fills_nine_tenths_of_the_hour_and_the_last_tenth_is_the_polls():
    clock = Clock(NOW)
    fake = FakeTime(clock)
    budget = RequestBudget(300, 0, clock=clock, sleep=fake.sleep)
    run(spend_now(budget, 270, Spend.DISCOVERY))
    assert (clock.now, fake.slept) == (NOW, [])
    assert budget.allows_now(Spend.DISCOVERY) == 0
    assert budget.delay(Spend.DISCOVERY) == HOUR + FLIGHT_MARGIN
    assert budget.allows_now(Spend.POLL) == 30


def test_when_the_hour_frees_up_the_more_valuable_waiter_goes_first():
    """A resync and a discovery read both wait on a full hour (virtual time: both really wait
    side by side): as the hour's first requests leave it, discovery takes them, and the resync
    goes only once discovery is done."""
    sent: list[tuple[float, Spend]] = []

    async def scenario():
        loop = asyncio.get_running_loop()
        budget = RequestBudget(300, 0, clock=loop.time)
        for _ in range(300):  # polls, one every 10 s: they leave the hour one by one
            await budget.acquire(Spend.POLL)
            await asyncio.sleep(10)

        async def read(kind, requests):
            for _ in range(requests):
                await budget.acquire(kind)
                sent.append((loop.time(), kind))

        await asyncio.gather(read(Spend.BACKGROUND, 5), read(Spend.DISCOVERY, 40))

    run_virtually(scenario(), NOW)
    kinds = [kind for _, kind in sent]
    assert kinds == [Spend.DISCOVERY] * 40 + [Spend.BACKGROUND] * 5
    # discovery went as soon as the hour held fewer than 270, the resync when it held fewer
    # than 225: 31 polls out of the hour, then 45 more after discovery's 40 had gone
    assert sent[0][0] == pytest.approx(NOW + 30 * 10 + HOUR + FLIGHT_MARGIN)
    assert sent[40][0] == pytest.approx(NOW + (30 + 40 + 45) * 10 + HOUR + FLIGHT_MARGIN)


@pytest.mark.parametrize(("kind", "at_once"), [(Spend.BACKGROUND, 224), (Spend.DISCOVERY, 269)])
def test_seconds_to_send_is_what_acquiring_takes(kind, at_once):
    for needed in (10, at_once, at_once + 1, 750):
        clock = Clock(NOW)
        fake = FakeTime(clock)
        budget = RequestBudget(300, 0, clock=clock, sleep=fake.sleep)
        run(budget.acquire(Spend.POLL))  # something already sent, a minute ago
        clock.now += 60
        estimate = budget.seconds_to_send(needed, kind)

        async def send_all(budget=budget, needed=needed):
            for _ in range(needed):
                await budget.acquire(kind)

        run(send_all())
        assert clock.now - (NOW + 60) == pytest.approx(estimate)
        assert (estimate == 0) == (needed <= at_once)


def test_after_a_burst_the_interval_stretches_for_the_rest_of_the_hour_only():
    clock = Clock(NOW)
    budget = RequestBudget(300, 0, clock=clock, sleep=FakeTime(clock).sleep)
    run(spend_now(budget, 225))
    # 11 requests a cycle at 5 minutes: 132 an hour fits the budget, but not beside the burst
    stretched = budget.interval_for(11, 300)
    assert stretched > 300
    cycles = int((HOUR + FLIGHT_MARGIN) / stretched)
    assert 225 + 11 * cycles <= 300  # the cycles of that hour fit beside the burst
    clock.now += HOUR + FLIGHT_MARGIN  # the burst has left the rolling hour
    assert budget.interval_for(11, 300) == 300
    assert budget.interval_for(50, 300) == pytest.approx(50 * HOUR / 300)  # the steady state


async def spend_now(budget, requests, kind=Spend.BACKGROUND):
    for _ in range(requests):
        await budget.acquire(kind)


def simulated(simulator, clock, until, **rate_limit):
    config = with_account(
        config_for(simulator, interval=30.0), rate_limit=RateLimitSettings(**rate_limit)
    )
    fake = FakeTime(clock, until)
    exporter = Exporter(config, clock=clock, sleep=fake.sleep)
    run(exporter.parts[0].poller.run(fake.stop))
    return exporter


def test_a_busy_hour_stays_within_budget_and_stretches_the_interval(caplog):
    clock = Clock(NOW)
    world = build_world(5, NOW, 4, 1500, interval="hourly")
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**6) as simulator:
        caplog.set_level(logging.INFO)
        exporter = simulated(simulator, clock, NOW + 2 * HOUR, requests_per_hour=300, reserve=0)
        times = [request.at for request in simulator.requests]
        assert most_in_any_hour(times) <= 300
        assert len(times) > 250
        samples = parse_samples(exporter.exposition().decode())
        effective = pick(
            samples,
            "northflank_exporter_poll_interval_effective_seconds",
            destination="primary-backups",
        )
        assert effective > 30
        assert pick(samples, "northflank_exporter_rate_limit_budget_requests_per_hour") == 300
        # a longer interval, not requests held back, is what kept it within budget
        assert pick(samples, "northflank_exporter_throttled_seconds_total") < 60
        assert (
            pick(
                samples,
                "northflank_exporter_pages_fetched_total",
                destination="primary-backups",
                mode="incremental",
            )
            > 30
        )
        stretched = [r for r in caplog.records if r.getMessage().startswith("polling every")]
        assert len(stretched) == 1
        assert "budget is 300 requests an hour" in stretched[0].getMessage()
        for destination in ("primary-backups", "backups-04"):
            last = pick(
                samples,
                "northflank_exporter_last_successful_poll_timestamp_seconds",
                destination=destination,
            )
            assert clock.now - last <= 2 * effective  # fresh, not starved
        run(exporter.aclose())


def test_a_429_pauses_every_destination_until_the_reset_and_recovers():
    clock = Clock(NOW)
    world = build_world(6, NOW, 2, 150)
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=30) as simulator:
        exporter = simulated(simulator, clock, NOW + 2 * HOUR, requests_per_hour=10_000, reserve=0)
        log = simulator.requests
        first_429 = next(i for i, r in enumerate(log) if r.status == 429)
        window_reset = log[0].at + HOUR
        assert log[first_429].at < window_reset
        after = [r for r in log if r.at > log[first_429].at]
        assert after, "it never tried again"
        assert all(r.at >= window_reset - 1 for r in after)  # silent until the reset...
        # ...so the only 429s of the first window are requests already on their way when the
        # first one came back: at most one per concurrent poll and the listing, not a storm
        concurrency = exporter.config.poll.concurrency
        assert sum(1 for r in log if r.status == 429 and r.at < window_reset) <= concurrency + 1
        assert after[0].status == 200  # and it recovered at once
        samples = parse_samples(exporter.exposition().decode())
        assert pick(samples, "northflank_up", destination="primary-backups") == 1
        run(exporter.aclose())


def test_the_reserve_is_left_for_the_other_users_of_the_token():
    clock = Clock(NOW)
    world = build_world(7, NOW, 2, 150)
    with Simulator(
        world, token=TOKEN, clock=clock, rate_limit=RateLimit(1000, used=880)
    ) as simulator:
        exporter = simulated(simulator, clock, NOW + 90 * 60, requests_per_hour=10_000, reserve=100)
        log = simulator.requests
        window_reset = log[0].at + HOUR
        in_first_window = [r for r in log if r.at < window_reset]
        # 120 were left; the exporter stops once fewer than 100 remain (concurrent requests
        # already on their way may still land)
        assert 21 <= len(in_first_window) <= 21 + exporter.config.poll.concurrency
        assert all(r.status == 200 for r in log)
        assert any(r.at >= window_reset for r in log)  # and it resumed with the new window
        run(exporter.aclose())


def test_a_reload_keeps_the_pause_a_429_began(simulator, clock):
    config = with_account(config_for(simulator, interval=30.0), rate_limit=RateLimitSettings())
    fake = FakeTime(clock, NOW + HOUR)
    exporter = Exporter(config, clock=clock, sleep=fake.sleep)
    exporter.parts[0].budget.rate_limited(NOW + 1800)  # as a 429 with x-ratelimit-reset 1800 does
    paused_until = exporter.parts[0].budget.paused_until
    assert paused_until >= NOW + 1800
    run(exporter.reload(config))
    assert exporter.parts[0].budget.paused_until == paused_until  # a new budget, the same pause
    run(exporter.parts[0].poller.run(fake.stop))
    assert simulator.requests, "it never polled"
    assert all(request.at >= paused_until for request in simulator.requests)
    run(exporter.aclose())
