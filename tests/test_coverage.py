"""Coverage: every addon and volume, what backs it up, and managed-storage backups held to the
same reference as destination backups; permissions, sharding and the request cadence."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest

from exporter.config import CoverageSettings
from exporter.inventory import MANAGED_STORAGE, read_addon_schedule
from exporter.resources.schedule_book import ScheduleBook
from exporter.runtime import Exporter, coverage_left_out
from exporter.shard import Shard
from exporter.simulator.data import MANAGED
from exporter.simulator.scenarios import COVERAGE_SCENARIOS
from exporter.simulator.server import InProcess
from exporter.simulator.virtual_time import run_virtually
from tests.conftest import NOW, config_for, parse_samples, pick, poll_once, run, series
from tests.reference import addon_expectations, approx_equal, managed_now, with_listing_context
from tests.test_scenarios import GAUGES


@pytest.fixture
def fleet_simulator(start_simulator):
    return start_simulator(fleet=True, scenarios=tuple(COVERAGE_SCENARIOS), destinations=3)


def scrape(exporter):
    return parse_samples(exporter.exposition().decode())


def api(simulator, path):
    """Every item of an inventory listing, read straight from the simulator."""
    items, cursor = [], None
    key = path.rstrip("/").rsplit("/", 1)[-1].replace("backup-", "")
    while True:
        params = {"per_page": 100} | ({"cursor": cursor} if cursor else {})
        response = httpx.get(
            simulator.base_url + path,
            params=params,
            headers={"Authorization": f"Bearer {simulator.token}"},
        )
        body = response.json()
        data = body["data"]
        # volumes and a volume's backups are the list itself; schedules may be left out
        items.extend(data if isinstance(data, list) else data.get(key, []))
        if not body["pagination"]["hasNextPage"]:
            return items
        cursor = body["pagination"]["cursor"]


def every_addon(simulator):
    for project in api(simulator, "/v1/projects"):
        for addon in api(simulator, f"/v1/projects/{project['id']}/addons"):
            yield project, addon


def test_every_addon_and_volume_is_seen_with_what_backs_it_up(fleet_simulator, clock):
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    assert poll_once(exporter)
    samples = scrape(exporter)
    assert pick(samples, "northflank_coverage_up") == 1
    assert pick(samples, "northflank_coverage_last_successful_inventory_timestamp_seconds") == (
        clock.now
    )
    listed = list(every_addon(fleet_simulator))
    assert len(series(samples, "northflank_coverage_addon_info")) == len(listed) > 15
    for project, addon in listed:
        labels = {"project": project["id"], "addon": addon["id"]}
        info = {
            "project_name": project["name"],
            "addon_name": addon["name"],
            "addon_type": addon["spec"]["type"],
            "status": addon["status"],
        }
        assert pick(samples, "northflank_coverage_addon_info", **labels, **info) == 1
        base = f"/v1/projects/{project['id']}/addons/{addon['id']}"
        declared = api(fleet_simulator, f"{base}/backup-schedules")
        assert pick(samples, "northflank_coverage_addon_backup_schedules", **labels) == len(
            declared
        )
        unprotected = not declared and addon["status"] == "running"
        assert pick(samples, "northflank_coverage_addon_unprotected", **labels) == unprotected
        for schedule in declared:
            where = [(schedule.get("customDestinationId") or MANAGED_STORAGE, "primary")]
            where += [
                (d["destinationId"], "additional")
                for d in schedule.get("additionalDestinations", [])
            ]
            for destination, role in where:
                assert (
                    pick(
                        samples,
                        "northflank_coverage_addon_backup_schedule_info",
                        **labels,
                        schedule=schedule["id"],
                        interval=schedule["scheduling"]["interval"],
                        backup_type=schedule["backupType"],
                        destination=destination,
                        role=role,
                    )
                    == 1
                )
    # the named cases, spelled out
    assert (
        pick(
            samples,
            "northflank_coverage_addon_unprotected",
            project="scenarios",
            addon="unprotected-postgresql",
        )
        == 1
    )
    assert (
        pick(
            samples,
            "northflank_coverage_addon_unprotected",
            project="storefront",
            addon="archive-mongodb",
        )
        == 0
    )
    assert (
        pick(
            samples,
            "northflank_coverage_addon_backup_schedules",
            project="storefront",
            addon="archive-mongodb",
        )
        == 0
    )
    assert (
        pick(
            samples, "northflank_coverage_volume_unprotected", project="scenarios", volume="scratch"
        )
        == 1
    )
    assert (
        pick(
            samples,
            "northflank_coverage_volume_unprotected",
            project="storefront",
            volume="uploads",
        )
        == 0
    )
    assert (
        pick(
            samples,
            "northflank_coverage_volume_backup_schedule_info",
            project="analytics",
            volume="exports",
            schedule="exports-0",  # its item leaves them out: read from its backup-schedules
            interval="weekly",
            destination=MANAGED_STORAGE,
        )
        == 1
    )
    assert len(series(samples, "northflank_coverage_volume_info")) == 4


def managed_items(simulator, project, addon, declared):
    """An addon's managed-storage backups in the shape the reference reads."""
    items = []
    for item in api(simulator, f"/v1/projects/{project['id']}/addons/{addon['id']}/backups"):
        if item.get("customDestinationId"):
            continue
        items.append(
            with_listing_context(
                item,
                {"id": project["id"], "name": project["name"]},
                {"id": addon["id"], "name": addon["name"]},
                addon["spec"]["type"],
                declared,
            )
        )
    return items


@pytest.mark.parametrize("hours_later", [0, 5, 30])
def test_managed_storage_backups_match_the_reference_and_are_counted_once(
    fleet_simulator, clock, hours_later
):
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    clock.now += hours_later * 3600
    assert poll_once(exporter)
    samples = scrape(exporter)
    managed = {}
    for project, addon in every_addon(fleet_simulator):
        base = f"/v1/projects/{project['id']}/addons/{addon['id']}"
        declared = [
            s
            for s in api(fleet_simulator, f"{base}/backup-schedules")
            if not s.get("customDestinationId")
        ]
        if declared:
            managed[(project["id"], addon["id"])] = managed_items(
                fleet_simulator, project, addon, declared
            )
    assert len(managed) == 4  # three healthy addons and managed-stopped
    published = {
        (dict(labels)["project"], dict(labels)["addon"])
        for labels in series(samples, "northflank_addon_info")
        if dict(labels)["destination"] == MANAGED_STORAGE
    }
    assert published == set(managed)
    for key, items in managed.items():
        (want,) = addon_expectations(items, clock.now).values()
        labels = {"destination": MANAGED_STORAGE, "project": key[0], "addon": key[1]}
        for status, number in want["counts"].items():
            assert pick(samples, "northflank_addon_backups", **labels, status=status) == number
        for name, metric in GAUGES.items():
            got = pick(samples, metric, **labels)
            assert approx_equal(got, want[name]), (key, name, got, want[name])
    stopped = {
        "destination": MANAGED_STORAGE,
        "project": "scenarios",
        "addon": "managed-stopped-mysql",
    }
    assert pick(samples, "northflank_addon_backup_overdue_seconds", **stopped) > 0
    # no expiredBy in an addon's listing: the window is retentionTime days from createdAt (the
    # reference above holds its value to that)
    invoices = {
        "destination": MANAGED_STORAGE,
        "project": "billing",
        "addon": "invoices-postgresql",
    }
    last = pick(samples, "northflank_addon_backup_last_completed_timestamp_seconds", **invoices)
    until = pick(samples, "northflank_addon_backup_restorable_until_timestamp_seconds", **invoices)
    assert until > last + 13 * 86400
    if hours_later < 12:
        # its import completed at NOW - 3505 s, after its last backup (01:10): not its newest
        assert last < NOW - 3600


def test_a_token_without_project_access_says_so_once_and_destinations_go_on(
    fleet_simulator, clock, caplog
):
    fleet_simulator.serve_raw(
        "/v1/projects",
        b'{"error": {"status": 403, "message": "Missing permission"}}',
        status=403,
    )
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        poll_once(exporter)
        clock.now += 3600
        poll_once(exporter)
    samples = scrape(exporter)
    assert pick(samples, "northflank_coverage_up") == 0
    assert not series(samples, "northflank_coverage_addon_info")
    lines = [r.getMessage() for r in caplog.records if "may not list projects" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "Project > Projects > Manage > Read" in lines[0] and "HTTP 403" in lines[0]
    assert fleet_simulator.token not in caplog.text
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    assert (
        pick(samples, "northflank_backups", destination="primary-backups", status="completed") > 0
    )


def test_coverage_can_be_turned_off_and_filtered(fleet_simulator, clock):
    config = config_for(fleet_simulator, coverage=True)
    off = Exporter(replace(config, coverage=CoverageSettings(enabled=False)), clock=clock)
    poll_once(off)
    assert not [key for key in scrape(off) if key[0].startswith("northflank_coverage")]
    assert all(not r.path.startswith("/v1/projects") for r in fleet_simulator.requests)
    import re

    only = CoverageSettings(
        include=(re.compile("scenarios/.*"),), exclude=(re.compile(".*/scratch"),)
    )
    exporter = Exporter(replace(config, coverage=only), clock=clock)
    poll_once(exporter)
    samples = scrape(exporter)
    assert {dict(k)["project"] for k in series(samples, "northflank_coverage_addon_info")} == {
        "scenarios"
    }
    # of the volumes in "scenarios", scratch is excluded
    assert {dict(k)["volume"] for k in series(samples, "northflank_coverage_volume_info")} == {
        "media"
    }


def coverage_series(exporter):
    """The coverage families and the managed-storage per-addon series of an exporter."""
    return {
        key: value
        for key, value in scrape(exporter).items()
        if key[0].startswith("northflank_coverage")
        or dict(key[1]).get("destination") == MANAGED_STORAGE
    }


def test_one_shard_takes_the_inventory_and_the_shards_add_up_to_one_exporter(
    fleet_simulator, clock
):
    whole = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    poll_once(whole)
    expected = coverage_series(whole)
    combined: dict = {}
    takers = []
    for ordinal in range(3):
        config = replace(config_for(fleet_simulator, coverage=True), shard=Shard(ordinal, 3))
        exporter = Exporter(config, clock=clock)
        poll_once(exporter)
        mine = coverage_series(exporter)
        if mine:
            takers.append(ordinal)
        assert not set(mine) & set(combined), "a coverage series on two shards"
        combined.update(mine)
    assert len(takers) == 1
    assert combined == expected


def test_managed_listings_are_read_on_the_slot_cadence_and_overdue_shows_within_a_poll(
    start_simulator, clock
):
    """Two simulated days, stepped every poll interval: the simulator's own listing at each
    step says when an addon truly turns overdue (the reference, not the exporter's code); the
    exporter must show it by the next step, never show it when it has not been true for the
    grace (a late backup that arrives clears it at the read planned for its slot: a few
    minutes late), and spend at most two reads per scheduled backup plus the heartbeat."""
    start = clock.now
    simulator = start_simulator(fleet=True, scenarios=("managed-stopped",), destinations=1)
    # the managed-stopped addon stops a day into the run
    simulator.set_world(replace(simulator.world, anchor=start + 86400))
    exporter = Exporter(config_for(simulator, coverage=True), clock=clock)
    watcher = exporter.parts[0].coverage
    interval, grace = 300.0, 3600.0
    due = clock.now
    truth_since: dict = {}
    last_true: dict = {}
    late: list = []
    false_alarms: list = []
    while clock.now < start + 2 * 86400:
        if clock.now >= due:
            due = clock.now + run(watcher.step())
        exporter.render()
        samples = scrape(exporter)
        for project, addon, items in managed_now(simulator, clock.now):
            (want,) = addon_expectations(items, clock.now, grace=grace).values()
            labels = {"destination": MANAGED_STORAGE, "project": project, "addon": addon}
            shown = pick(samples, "northflank_addon_backup_overdue_seconds", **labels)
            if want["overdue"] > 0:
                truth_since.setdefault(addon, clock.now)
                last_true[addon] = clock.now
                if not shown and clock.now - truth_since[addon] >= interval:
                    late.append((addon, clock.now))
            else:
                truth_since.pop(addon, None)
                if shown and clock.now - last_true.get(addon, start - grace) > grace:
                    false_alarms.append((addon, clock.now))
        clock.now += interval
    assert "managed-stopped-mysql" in truth_since, "the stopped addon never turned overdue"
    assert late == []
    assert false_alarms == []
    reads = [r for r in simulator.requests if r.path.endswith("/backups") and "/addons/" in r.path]
    slots = {
        "tokens-redis": 48,
        "invoices-postgresql": 2,
        "warehouse-mysql": 2,
        "managed-stopped-mysql": 24,
    }
    for addon, scheduled in slots.items():
        made = sum(1 for r in reads if f"/addons/{addon}/" in r.path)
        assert made <= 2 * scheduled + 48 + 1, (addon, made)


def test_the_inventory_starts_once_the_destinations_had_their_first_read(fleet_simulator, clock):
    """Both spend the budget's share for full reads: a large inventory must never hold up the
    destinations' first numbers. Both loops serve, on virtual time (the simulator answers in
    process), until the inventory's first round is over."""

    async def serve_until_the_first_round():
        loop = asyncio.get_running_loop()
        config = config_for(fleet_simulator, coverage=True)
        exporter = Exporter(config, clock=loop.time, transport=InProcess(fleet_simulator))
        stop = asyncio.Event()
        (part,) = exporter.parts
        assert part.coverage is not None
        running = asyncio.gather(part.poller.run(stop), part.coverage.run(stop))
        while exporter.rendered.coverage == () or exporter.rendered.coverage[0][1].up is None:
            assert loop.time() < NOW + 3600, "the inventory never ran in its first hour"
            await asyncio.sleep(1)
        stop.set()
        await running
        await exporter.aclose()

    run_virtually(serve_until_the_first_round(), start=NOW)
    paths = [record.path.partition("?")[0] for record in fleet_simulator.requests]
    # the inventory begins with the projects (the first polls may read an addon's schedules)
    first_inventory = paths.index("/v1/projects")
    last_destination = max(i for i, path in enumerate(paths) if "/backup-destinations" in path)
    assert last_destination < first_inventory


def test_without_per_addon_series_no_schedule_is_judged_for_arrival(fleet_simulator, clock):
    config = config_for(fleet_simulator, coverage=True)
    exporter = Exporter(replace(config, addons=replace(config.addons, enabled=False)), clock=clock)
    poll_once(exporter)
    samples = scrape(exporter)
    assert series(samples, "northflank_coverage_addon_backup_schedule_info")
    assert not series(
        samples, "northflank_coverage_addon_backup_schedule_first_slot_timestamp_seconds"
    )
    assert not series(samples, "northflank_addon_info")  # nor managed-storage series


def test_once_takes_what_coverage_the_budget_allows_now_unlisted_addons_first(
    fleet_simulator, clock
):
    """`--once` never waits for coverage: the destinations are read, the inventory takes what
    the hour's budget allows now (the addons no destination lists first: only they can be
    unprotected), and one line says what was left out and how long it would take."""
    from tests.conftest import FakeTime, with_account

    config = config_for(fleet_simulator, coverage=True)
    (account,) = config.accounts
    # 40 an hour: 30 for full reads; the three destinations' first read takes 10
    config = with_account(
        config, rate_limit=replace(account.rate_limit, requests_per_hour=40, reserve=0)
    )
    fake = FakeTime(clock)
    exporter = Exporter(config, clock=clock, sleep=fake.sleep)
    assert run(exporter.poll_once(coverage_waits=False))
    assert fake.slept == []  # nothing waited, not even a second
    samples = scrape(exporter)
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    assert pick(samples, "northflank_coverage_up") == 0
    # read before any addon a destination lists: the unprotected one is found
    unprotected = {"project": "scenarios", "addon": "unprotected-postgresql"}
    assert pick(samples, "northflank_coverage_addon_unprotected", **unprotected) == 1
    (line,) = coverage_left_out(exporter.parts)
    assert "the hour's request budget left out" in line
    assert "schedules" in line and "northflank_coverage_up is 0" in line
    assert "rate_limit.requests_per_hour=40" in line
    schedule_reads = [r.path for r in fleet_simulator.requests if "backup-schedules" in r.path]
    listed = {  # by a destination: managed storage is read for addons no destination lists
        (dict(k)["project"], dict(k)["addon"])
        for k in series(samples, "northflank_addon_info")
        if dict(k)["destination"] != MANAGED_STORAGE
    }
    kinds = [
        any(f"/projects/{p}/addons/{a}/" in path for p, a in listed) for path in schedule_reads
    ]
    assert kinds and kinds == sorted(kinds)  # every unlisted addon's read before any listed one
    # serving (waiting allowed) leaves nothing out
    assert run(exporter.poll_once())
    assert coverage_left_out(exporter.parts) == []


def test_a_round_that_must_wait_says_so_once_shows_what_it_needs_and_the_unlisted_first(
    fleet_simulator, clock, caplog
):
    """Serving with a budget too small for the inventory: one line, before the first wait,
    names coverage and how long the round will take; while it waits, /metrics shows what the
    round still needs and the addons no destination lists, unprotected one included; the
    round then completes on the estimate."""
    from exporter.durations import parse_duration
    from tests.conftest import FakeTime, with_account

    config = config_for(fleet_simulator, coverage=True)
    (account,) = config.accounts
    config = with_account(
        config, rate_limit=replace(account.rate_limit, requests_per_hour=40, reserve=0)
    )
    # the next round falls due after the whole of this one (else the rest gives way to it)
    config = replace(config, coverage=replace(config.coverage, interval=6 * 3600))
    fake = FakeTime(clock)
    while_waiting = []

    async def sleep(seconds):
        if not while_waiting:
            while_waiting.append((clock.now, scrape(exporter)))
        await fake.sleep(seconds)

    exporter = Exporter(config, clock=clock, sleep=sleep)
    started = clock.now
    caplog.set_level(logging.INFO, logger="exporter")
    assert run(exporter.poll_once())
    took = clock.now - started
    said = [r for r in caplog.records if "the inventory needs about" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"
    line = said[0].getMessage()
    assert line.startswith("account=default coverage: the inventory needs about")
    assert "rate_limit.requests_per_hour=40" in line
    estimate = parse_duration(line.split("will take about ")[1].split(";")[0])
    assert 0.8 * took <= estimate <= 1.2 * took
    waited_at, samples = while_waiting[0]
    assert waited_at == started  # the line and the numbers came before the first wait
    assert pick(samples, "northflank_coverage_inventory_requests_left") > 0
    assert pick(samples, "northflank_coverage_inventory_seconds_left") > 0
    unprotected = {"project": "scenarios", "addon": "unprotected-postgresql"}
    assert pick(samples, "northflank_coverage_addon_unprotected", **unprotected) == 1
    # progress at most once a minute of the round (the fake clock jumps a wait at a time)
    progress = [r for r in caplog.records if "inventory progress" in r.getMessage()]
    assert len(progress) <= took / 60 + 1
    samples = scrape(exporter)
    assert pick(samples, "northflank_coverage_up") == 1
    assert pick(samples, "northflank_coverage_inventory_requests_left") == 0
    assert pick(samples, "northflank_coverage_inventory_seconds_left") == 0


def test_the_rest_of_a_long_round_gives_way_to_the_next_round_which_finds_a_new_addon(
    fleet_simulator, clock, caplog
):
    """A budget too small for the inventory (40 requests an hour) and a round every 10
    minutes: the first round's rest gives way when the next round falls due, saying what it
    left, and the next round lists the addons again before going on with it. So an unprotected
    addon created while the first round waits is on /metrics in the next round, not after all
    of the first (and coverage is up: every read made so far succeeded)."""
    from tests.conftest import FakeTime, with_account

    config = config_for(fleet_simulator, coverage=True)
    (account,) = config.accounts
    config = with_account(
        config, rate_limit=replace(account.rate_limit, requests_per_hour=40, reserve=0)
    )
    config = replace(config, coverage=replace(config.coverage, interval=600))
    world = fleet_simulator.world
    unprotected = next(a for a in world.elsewhere if a.addon_id == "unprotected-postgresql")
    late = replace(unprotected, addon_id="late-postgresql", addon_name="Late postgresql")
    fake = FakeTime(clock)

    async def sleep(seconds):
        if fleet_simulator.world is world:  # the first wait of the first round
            fleet_simulator.set_world(replace(world, elsewhere=(*world.elsewhere, late)))
        await fake.sleep(seconds)

    exporter = Exporter(config, clock=clock, sleep=sleep)
    caplog.set_level(logging.INFO, logger="exporter")
    run(exporter.poll_once())
    samples = scrape(exporter)
    assert fleet_simulator.world is not world
    new = {"project": "scenarios", "addon": "late-postgresql"}
    assert pick(samples, "northflank_coverage_addon_unprotected", **new) is None
    assert pick(samples, "northflank_coverage_up") == 1
    left = pick(samples, "northflank_coverage_inventory_requests_left")
    assert left > 0  # it gave way, and says what it left

    clock.now += 600
    run(exporter.poll_once())
    samples = scrape(exporter)
    assert pick(samples, "northflank_coverage_addon_unprotected", **new) == 1
    assert pick(samples, "northflank_coverage_inventory_requests_left") > 0  # before the rest
    rounds = 2
    while pick(samples, "northflank_coverage_inventory_requests_left"):
        clock.now += 600
        run(exporter.poll_once())
        samples = scrape(exporter)
        rounds += 1
        assert rounds < 20
    assert pick(samples, "northflank_coverage_up") == 1
    # warned once; the rounds that go on with what the last one left say so at info
    said = [r for r in caplog.records if "the inventory needs about" in r.getMessage()]
    assert [r.levelname for r in said] == ["WARNING"] + ["INFO"] * (len(said) - 1)
    assert len(said) >= 2
    assert "and it takes longer: each round that falls due meanwhile" in said[0].getMessage()


def serve_a_fleet_short_of_budget(hours: float):
    """150 addons the destinations list and 15 volumes (5 hourly, at minute 35), a budget of
    80 requests an hour and a round every 10 minutes, served `hours` on virtual time: the
    fleet, and the simulator's record of every request."""
    from exporter.config import Account, Config, NorthflankSettings, RateLimitSettings
    from exporter.simulator import Simulator
    from monitoring.fleet import build_fleet
    from monitoring.fleet_served import FleetAt

    start = NOW
    fleet, _ = build_fleet(3, 150, 2, start, projects=3)
    fleet = replace(
        fleet,
        addons=tuple(a for a in fleet.addons if a.incident is None),
        volumes=tuple(v for v in fleet.volumes if v.incident is None),
    )

    async def main():
        loop = asyncio.get_running_loop()
        served = FleetAt(fleet, loop.time)
        with Simulator(served, token="t", clock=loop.time, rate_limit=10**9) as simulator:
            account = Account(
                northflank=NorthflankSettings(api_url=simulator.base_url, token="t"),
                rate_limit=RateLimitSettings(requests_per_hour=80, reserve=0),
            )
            config = Config(accounts=(account,), coverage=CoverageSettings(interval=600))
            exporter = Exporter(config, clock=loop.time, transport=InProcess(simulator))
            stop = asyncio.Event()
            loops = [part.poller.run(stop) for part in exporter.parts]
            loops += [part.coverage.run(stop) for part in exporter.parts if part.coverage]
            running = asyncio.gather(*loops)
            await asyncio.sleep(hours * 3600)
            stop.set()
            await running
            await exporter.aclose()
            return list(simulator.requests)

    return fleet, run_virtually(main(), start=start)


def test_on_a_long_catch_up_every_addon_is_read_once_before_any_is_read_again():
    """150 addons the destinations list, a budget of 80 requests an hour and a round every 10
    minutes: the first pass over their schedules takes 17 hours, longer than their max age
    (stretched to 7.5 h), so re-reads fall due while it still waits. Every addon's schedules
    are read once before any addon's are read a second time. Re-reads first (in the order
    the addons are listed) starved 29 addons for the whole day."""
    _, requests = serve_a_fleet_short_of_budget(hours=36)
    paths = [record.path.partition("?")[0] for record in requests]
    reads = [path for path in paths if path.endswith("/backup-schedules") and "/addons/" in path]
    first_again = next(n for n, path in enumerate(reads) if path in reads[:n])
    assert len(set(reads)) == 150
    assert set(reads[:first_again]) == set(reads)


def test_a_volume_is_read_after_each_slot_while_the_budget_is_full():
    """On the same fleet short of budget, every hourly volume's backups are read after each
    of its slots, before the slot turns overdue (the slot plus the grace): else its overdue
    gauge shows a backup that landed as overdue until a read comes. The slots are the
    fleet's own (minute 35 of every hour); the first hour, which the start's first reads
    fill, aside. While one loop read the rounds and then the
    cadenced listings, and the listed addons' schedules spent as background, a round's
    rest held the volumes' reads back: most slots of the 24 hours had no read before they
    turned overdue."""
    fleet, requests = serve_a_fleet_short_of_budget(hours=24)
    hourly = [v for v in fleet.volumes if v.schedule["interval"] == "hourly"]
    assert hourly and all(v.schedule["minute"] == [35] for v in hourly)
    grace = 3600.0
    unread = []
    for volume in hourly:
        path = f"/v1/projects/{volume.project}/volumes/{volume.ident}/backups"
        reads = [r.at for r in requests if r.path.partition("?")[0] == path]
        assert reads, volume.ident
        # from the third hour: the first fills with every first read (the volumes' too)
        slot = NOW + 2 * 3600 - (NOW + 2 * 3600 - 35 * 60) % 3600
        while slot + grace <= NOW + 24 * 3600:
            if not any(slot <= at < slot + grace for at in reads):
                unread.append((volume.ident, (slot - NOW) / 3600))
            slot += 3600
    assert unread == []


def test_the_schedules_of_a_listed_addon_are_read_less_often_while_they_do_not_change(
    fleet_simulator, clock
):
    """An addon a destination lists is protected whatever its schedules say: they are read
    again after coverage.schedules_max_age (6h), then, while they come back unchanged, after
    twice and four times that, and no longer apart. An unlisted addon keeps 6h."""
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    listed = fleet_simulator.world.destinations[0].addons[0]
    unlisted = next(a for a in fleet_simulator.world.elsewhere if a.target == MANAGED)
    read: dict[str, list[int]] = {"listed": [], "unlisted": []}
    for round_number in range(1, 50):
        before = len(fleet_simulator.requests)
        poll_once(exporter)
        paths = {r.path.partition("?")[0] for r in fleet_simulator.requests[before:]}
        for which, addon in (("listed", listed), ("unlisted", unlisted)):
            path = f"/v1/projects/{addon.project_id}/addons/{addon.addon_id}/backup-schedules"
            if path in paths:
                read[which].append(round_number)
        clock.now += 3600
    assert read == {"listed": [1, 7, 19, 43], "unlisted": [1, 7, 13, 19, 25, 31, 37, 43, 49]}


def test_a_schedule_that_changed_brings_back_the_max_age():
    """Unchanged reads earn 2, then 4 times the max age; a change, 1 again."""
    loops = SimpleNamespace(coverage=CoverageSettings(), coverage_line=str)
    book = ScheduleBook(loops, "addon")
    hourly = {"id": "s", "scheduling": {"interval": "hourly", "minute": [5]}, "retentionTime": 2}
    daily = {"id": "s", "scheduling": {"interval": "daily", "minute": [5], "hour": [1]}}
    stretches = []
    for answer in ([hourly], [hourly], [hourly], [hourly], [daily], [daily]):
        book.fold(("p", "a"), "running", answer, read_addon_schedule, NOW)
        stretches.append(book.known[("p", "a")].stretch)
    assert stretches == [1, 2, 4, 4, 1, 2]
    assert book.due(("p", "a"), "running", NOW + 6 * 3600, paced=False)
    assert not book.due(("p", "a"), "running", NOW + 6 * 3600, paced=True)
    assert book.due(("p", "a"), "running", NOW + 12 * 3600, paced=True)
    assert book.due(("p", "a"), "paused", NOW + 60, paced=True)  # a new status: at once


def test_the_collector_loads_no_http_client():
    """Rendering needs the snapshots, not the code that fills them."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, exporter.collector; print('httpx' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def _projects_page(start, count):
    return [
        {"id": f"p{n:05d}", "name": f"P{n}", "lifecycleStatus": "created"}
        for n in range(start, start + count)
    ]


@pytest.mark.parametrize(
    "listing, pages, most",
    [
        # 15,000 projects, 100 a page: cut past the inventory's 10,000-item cap
        ("too large", [_projects_page(n * 100, 100) for n in range(150)], 101),
        # empty pages that each point to another: cut as endless after 10 in a row
        ("endless", [[] for _ in range(300)], 11),
    ],
)
def test_an_inventory_listing_past_its_cap_is_cut_with_a_line_and_a_counter(
    fleet_simulator, clock, caplog, listing, pages, most
):
    """Every listing gets a walk guard and a size cap: before, an endless projects listing
    walked 10,000 pages (44 hours of the budget) and grew without bound in memory."""
    fleet_simulator.serve_pages("/v1/projects", pages)
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    for _ in range(2):
        poll_once(exporter)
        clock.now += 3600
    reads = [r for r in fleet_simulator.requests if r.path.partition("?")[0] == "/v1/projects"]
    assert len(reads) == 2 * most  # two rounds, each cut at the same page
    samples = scrape(exporter)
    assert pick(samples, "northflank_coverage_listings_cut_total", listing="projects") == 2
    assert pick(samples, "northflank_coverage_up") == 0
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    said = [r.getMessage() for r in caplog.records if "listing projects failed" in r.getMessage()]
    assert len(said) == 1 and ("cap" in said[0] or "endless" in said[0])


def test_an_addon_declaring_more_schedules_than_the_cap_is_cut_and_said(
    fleet_simulator, clock, caplog
):
    """Real addons declare a handful; one with 1,770 cost 701 MB and 3,540 series. Its
    backup-schedules past the cap are a listing too large (the addon's count unknown, with a
    line and a counter); a backup listing more is invalid."""
    from exporter.backups import InvalidBackup, parse_schedules
    from exporter.model import MAX_SCHEDULES

    many = [
        {
            "id": f"s{n}",
            "backupType": "dump",
            "scheduling": {"interval": "hourly", "minute": [n % 60]},
            "customDestinationId": "primary-backups",
        }
        for n in range(1770)
    ]
    path = "/v1/projects/scenarios/addons/unprotected-postgresql/backup-schedules"
    fleet_simulator.serve_pages(path, [many[n : n + 100] for n in range(0, 1770, 100)])
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    poll_once(exporter)
    samples = scrape(exporter)
    where = {"project": "scenarios", "addon": "unprotected-postgresql"}
    assert pick(samples, "northflank_coverage_listings_cut_total", listing="addon_schedules") == 1
    assert pick(samples, "northflank_coverage_addon_backup_schedules", **where) is None
    infos = series(samples, "northflank_coverage_addon_backup_schedule_info")
    assert not [labels for labels in infos if set(where.items()) <= labels]
    reads = [r for r in fleet_simulator.requests if r.path.startswith(path)]
    assert len(reads) == 1  # 50 fit a page: the first page already says too many
    assert any("the cap for this listing" in r.getMessage() for r in caplog.records)
    with pytest.raises(InvalidBackup, match="schedules: more than 50"):
        parse_schedules([entry["scheduling"] for entry in many[: MAX_SCHEDULES + 1]])
    assert len(parse_schedules([e["scheduling"] for e in many[:MAX_SCHEDULES]])) == 50


def test_the_slot_cache_is_bounded_in_bytes_not_entries():
    from exporter.model import Schedule
    from exporter.schedule import _OffsetsCache

    cache = _OffsetsCache(limit=1_000_000)
    every_minute = tuple(range(60))
    for number in range(100):  # each a week of minutes, 10,080 offsets: about 400 KB
        weekly = Schedule("weekly", every_minute, tuple(range(24)), (number % 7,))
        daily = Schedule("daily", every_minute, tuple(range(24)), ())
        cache.get((weekly, daily, Schedule("hourly", (number % 60,), (), ())))
        assert cache.bytes <= cache.limit
    assert len(cache._entries) == 2


def test_a_managed_listing_that_never_ends_is_cut_at_its_cap(fleet_simulator, clock, caplog):
    """Every page a new cursor and new backups: the managed listing had only the destinations'
    guard, and was walked 10,000 pages before it was cut. One addon keeps a few thousand
    backups (hourly for a year is 8,760): past 10,000 it is a listing too large, at page 101."""
    import json

    from exporter.simulator.units import iso

    path = "/v1/projects/scenarios/addons/managed-stopped-mysql/backups"
    template = api(fleet_simulator, path)[0]
    pages = []
    for number in range(300):
        items = [
            dict(
                template,
                id=f"endless-{number}-{n}",
                createdAt=iso(clock.now - number * 6000 - n * 60),
            )
            for n in range(100)
        ]
        pagination = {"hasNextPage": True, "cursor": str(number + 1), "count": 100}
        pages.append(json.dumps({"data": {"backups": items}, "pagination": pagination}).encode())
    fleet_simulator.raw_pages[path] = pages
    before = len(fleet_simulator.requests)
    exporter = Exporter(config_for(fleet_simulator, coverage=True), clock=clock)
    poll_once(exporter)
    reads = [r for r in fleet_simulator.requests[before:] if r.path.partition("?")[0] == path]
    assert len(reads) == 101
    samples = scrape(exporter)
    assert pick(samples, "northflank_coverage_listings_cut_total", listing="managed_backups") == 1
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    said = [r.getMessage() for r in caplog.records if "the cap for this listing" in r.getMessage()]
    assert len(said) == 1
    assert "listing managed backups of scenarios/managed-stopped-mysql failed" in said[0]
