"""Nothing stops the loops: a round that raises is logged, counted and survived; a loop that
stops making progress turns /-/healthy to 503 with its name; values that no output could
encode are made encodable where they enter."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import httpx

from exporter.budget import FLIGHT_MARGIN, RequestBudget, Spend
from exporter.config import PollSettings
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.virtual_time import run_virtually
from exporter.supervise import STALL_INTERVALS, Health, supervised, utc, waiting_with
from tests.conftest import (
    NOW,
    TOKEN,
    Clock,
    FakeTime,
    Serving,
    config_for,
    loops_of_no_api,
    parse_samples,
    pick,
    poll_once,
    run,
)

HOUR = 3600.0


def test_a_loop_is_stalled_after_three_intervals_without_progress_past_its_waits():
    clock = Clock(NOW)
    health = Health(clock)
    health.progress("poll:default", 300)
    clock.now += STALL_INTERVALS * 300
    assert health.stalled() == []
    clock.now += 1
    assert health.stalled() == ["poll:default"]
    health.progress("poll:default", 300, waiting=HOUR)  # a budget pause is not a stall
    clock.now += HOUR + STALL_INTERVALS * 300
    assert health.stalled() == []
    clock.now += 1
    assert health.stalled() == ["poll:default"]
    health.forget("poll:default")
    assert health.stalled() == []


def test_a_loop_is_waiting_while_its_budget_holds_requests_back_whoever_waits():
    """A pause that begins in the middle of a read (the reserve met), seen by a loop that
    started after it and whose request is queued behind another's: announced all the same.
    Before, only the request that slept announced its wait, to the loops running then: a
    coverage loop that began during a 60-second pause with 2-second polls was called stalled
    from its 7th second."""
    clock = Clock(NOW)
    health = Health(clock)
    budget = RequestBudget(300, 10, clock=clock)
    health.progress("coverage:default", 2)
    health.held_by("coverage:default", budget.held_until)
    budget.check_reserve(remaining=5, reset_at=NOW + 60)  # an answer says: 5 left
    clock.now += 60 + STALL_INTERVALS * 2  # the pause, with its 1 s margin, then 3 intervals
    assert health.stalled() == []
    clock.now += 2
    assert health.stalled() == ["coverage:default"]
    health.forget("coverage:default")
    assert health.stalled() == []


def test_a_wait_for_the_rolling_hour_holds_the_loop_until_it_ends():
    clock = Clock(NOW)
    fake = FakeTime(clock)
    budget = RequestBudget(4, 0, clock=clock, sleep=fake.sleep)
    health = Health(clock)
    health.progress("poll:default", 2)
    health.held_by("poll:default", budget.held_until)
    seen = []

    async def five_requests():
        for _ in range(5):
            await budget.acquire()
            seen.append((clock.now, health.stalled()))

    run(five_requests())
    # the fifth waited an hour for the first to leave the rolling hour, and was never a stall
    assert [at - NOW for at, _ in seen] == [0, 0, 0, 0, HOUR + FLIGHT_MARGIN]
    assert all(stalled == [] for _, stalled in seen)


def test_a_wait_for_the_budget_holds_the_loop_that_waits_and_not_the_others_that_spend_it():
    """Both loops of an account spend one budget. While the coverage loop's background read
    waits for the rolling hour, a poller that stops making progress is stalled all the same:
    before, a wait held every loop of the budget, and such a poller went unnoticed for the
    hour."""
    seen = {}

    async def scenario():
        loop = asyncio.get_running_loop()
        budget = RequestBudget(300, 0, clock=loop.time)
        health = Health(loop.time)
        loops = loops_of_no_api(
            poll=PollSettings(interval=60), health=health, budget=budget, clock=loop.time
        )
        for _ in range(300):
            await budget.acquire(Spend.POLL)
        hung = asyncio.Event()

        async def background_read():  # one request that waits an hour for the budget
            await budget.acquire(Spend.BACKGROUND)
            return 60.0

        async def poll_that_hangs():
            await hung.wait()
            return 60.0

        stop = asyncio.Event()
        running = asyncio.gather(
            loops.run("coverage:default", background_read, stop),
            loops.run("poll:default", poll_that_hangs, stop),
        )
        await asyncio.sleep(STALL_INTERVALS * 60 + 1)
        seen["stalled"] = health.stalled()
        seen["waits"] = health.waits()
        stop.set()
        hung.set()
        await running
        await loops.client.aclose()

    run_virtually(scenario(), NOW)
    assert seen["stalled"] == ["poll:default"]
    assert seen["waits"] == [
        f"coverage:default: waiting for the request budget until {utc(NOW + HOUR + FLIGHT_MARGIN)}"
        ": background: 1 waiting, may fill 225 of the hour's 300"
    ]


def test_healthy_says_what_kinds_of_request_the_budget_holds_back_and_what_each_may_fill():
    said = []

    async def scenario():
        loop = asyncio.get_running_loop()
        budget = RequestBudget(300, 0, clock=loop.time)
        health = Health(loop.time)
        health.progress("coverage:default", 60)
        health.held_by("coverage:default", budget.held_until, budget.what_waits)
        for _ in range(300):
            await budget.acquire(Spend.POLL)
        reads = asyncio.gather(
            budget.acquire(Spend.BACKGROUND),
            budget.acquire(Spend.DISCOVERY),
            budget.acquire(Spend.DISCOVERY),
        )
        await asyncio.sleep(60)
        said.extend(health.waits())
        await reads
        said.extend(health.waits())  # nothing held any more

    run_virtually(scenario(), NOW)
    assert said == [
        "coverage:default: waiting for the request budget until "
        f"{utc(NOW + HOUR + FLIGHT_MARGIN)}: discovery: 2 waiting, may fill 270 of the hour's "
        "300; background: 1 waiting, may fill 225 of the hour's 300"
    ]


def test_a_round_that_raises_is_logged_counted_and_the_loop_goes_on(caplog):
    clock = Clock(NOW)
    fake = FakeTime(clock, NOW + 10 * 60)
    health = Health(clock)
    rounds = []

    async def step():
        rounds.append(clock.now)
        if len(rounds) <= 2:
            raise RecursionError("a hostile answer")
        return 60.0

    run(
        supervised(
            "render",
            step,
            interval=60.0,
            health=health,
            stop=fake.stop,
            wait=waiting_with(fake.sleep),
        )
    )
    assert len(rounds) == 10  # a round a minute for ten minutes, the failed ones included
    assert health.failures == {"render": 2}
    failed = [r for r in caplog.records if "render loop failed" in r.getMessage()]
    assert len(failed) == 2 and all(r.exc_info for r in failed)  # with the traceback
    assert health.stalled() == []


def test_a_failing_rendering_does_not_stop_polling(simulator, clock, caplog):
    fake = FakeTime(clock, NOW + 20 * 60)
    exporter = Exporter(config_for(simulator), clock=clock, sleep=fake.sleep)
    refresh = exporter.metrics.refresh
    calls = []

    def fails_once():
        calls.append(clock.now)
        if len(calls) == 1:
            raise UnicodeEncodeError("utf-8", "x\ud800", 1, 2, "surrogates not allowed")
        refresh()

    exporter.metrics.refresh = fails_once
    run(exporter.parts[0].poller.run(fake.stop))
    assert len(calls) >= 4  # the first cycle's rendering failed, the next ones rendered
    exporter.render()
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_exporter_loop_failures_total", loop="poll:default") == 1
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    assert any("poll:default loop failed" in r.getMessage() for r in caplog.records)
    run(exporter.aclose())


def test_healthy_turns_503_and_names_the_loop_that_stopped_making_progress(simulator, clock):
    with Serving(Exporter(config_for(simulator), clock=clock)) as serving:
        serving.wait_ready()
        assert httpx.get(f"{serving.url}/-/healthy").status_code == 200
        # past the 5 minutes both loops sleep (in real time here) and three intervals more
        clock.now += 300 + STALL_INTERVALS * 300 + 1
        answer = httpx.get(f"{serving.url}/-/healthy")
        assert answer.status_code == 503
        assert "poll:default" in answer.text and "render" in answer.text


SURROGATE = "x\ud800y"


def test_a_lone_surrogate_is_made_encodable_where_it_enters(clock):
    world = build_world(3, NOW, 2, 120)
    first = replace(world.destinations[0], name=f"Primary {SURROGATE}")
    world = replace(world, destinations=(first, *world.destinations[1:]))
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        backup = {
            "id": "odd",
            "status": f"done-{SURROGATE}",
            "config": {"size": "1", "addonType": SURROGATE},
            "project": {"id": f"p-{SURROGATE}", "name": SURROGATE},
            "addon": {"id": f"a-{SURROGATE}", "name": SURROGATE},
            "createdAt": "2026-11-30T10:00:00Z",
        }
        simulator.inject("backups-02", [backup])
        assert "\\ud800" in json.dumps(backup)  # the API sends it as an escape
        exporter = Exporter(config_for(simulator), clock=clock)
        assert poll_once(exporter)
        text = exporter.exposition().decode()  # renders: nothing unencodable got in
        samples = parse_samples(text)
        fixed = "x\ufffdy"
        assert (
            pick(
                samples,
                "northflank_backup_destination_info",
                destination="primary-backups",
                name=f"Primary {fixed}",
                usage="globalBackups",
            )
            == 1
        )
        assert (
            pick(samples, "northflank_backups", destination="backups-02", status=f"done-{fixed}")
            == 1
        )
        assert (
            pick(
                samples,
                "northflank_addon_backups",
                destination="backups-02",
                project=f"p-{fixed}",
                addon=f"a-{fixed}",
                status=f"done-{fixed}",
            )
            == 1
        )
        run(exporter.aclose())


def test_a_destination_list_nested_too_deeply_fails_discovery_not_polling(start_simulator, clock):
    simulator = start_simulator(destinations=2)
    exporter = Exporter(config_for(simulator, max_retries=0), clock=clock)
    assert poll_once(exporter)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    simulator.serve_raw("/v1/backup-destinations", deep)
    assert not poll_once(exporter)  # discovery failed; the known destinations were polled
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_exporter_discovery_up") == 0
    assert pick(samples, "northflank_up", destination="backups-02") == 1
    run(exporter.aclose())
