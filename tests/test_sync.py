"""Incremental sync: unit cases on scripted pages, and a property test against the simulator
comparing the incremental exporter's exposition with a fresh full poll's after every step."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.api import ApiError, Page
from exporter.backups import wire_item
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.scenarios import SCENARIOS
from exporter.store import BackupStore
from exporter.sync import Misfit, Syncer, full_sync, incremental_sync, missed_by_increments
from tests.conftest import NOW, TOKEN, Clock, config_for, run

HOUR = 3600.0


def iso(epoch):
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def raw(ident, created, status="completed", size=10, expires=None):
    item = {
        "id": ident,
        "status": status,
        "config": {"size": str(size)},
        "createdAt": iso(created),
        "expiredBy": (expires or created + 48 * HOUR) * 1000,
    }
    if status == "completed":
        item["completedAt"] = iso(created + 60)
    return item


async def pages_of(items, per_page=2):
    for start in range(0, len(items), per_page):
        chunk = [wire_item(item) for item in items[start : start + per_page]]
        yield Page(chunk, len(chunk))


def held(items, now=NOW):
    return run(full_sync(pages_of(items), now)).store


def ids(store):
    return [b.created for b in store]


LISTING = [raw(f"b{n}", NOW - n * HOUR) for n in range(1, 11)]  # b1 newest ... b10 oldest


def test_a_new_backup_costs_one_page_and_lands_on_top():
    """One page, when the page goes on past the createdAt where the head meets what is held
    (a backup new to this read may share it, anywhere among those that do)."""
    store = held(LISTING)
    newer = [raw("b0", NOW - 60), *LISTING]
    result = run(incremental_sync(pages_of(newer, per_page=3), store, NOW))
    assert result.pages == 1
    assert list(result.store) == list(held(newer))
    # met on a page's last backup: the next page says whether a tie of it follows
    result = run(incremental_sync(pages_of(newer, per_page=2), store, NOW))
    assert result.pages == 2
    assert list(result.store) == list(held(newer))


def test_a_running_backup_is_followed_until_it_is_final():
    listing = [raw("b1", NOW - HOUR, "in-progress"), *LISTING[1:]]
    store = held(listing)
    finished = [raw("b1", NOW - HOUR), *LISTING[1:]]
    result = run(incremental_sync(pages_of(finished), store, NOW))
    assert result.store.status(0) == "completed"
    assert list(result.store) == list(held(finished))


def test_the_walk_goes_as_deep_as_the_oldest_backup_that_may_change():
    listing = [*LISTING[:7], raw("b8", NOW - 8 * HOUR, "in-progress"), *LISTING[8:]]
    store = held(listing)
    result = run(incremental_sync(pages_of(listing), store, NOW))
    assert result.pages == 5  # rows 0-9: the in-progress one is row 7, on page 4; page 5 ends it


def test_expired_backups_are_dropped_even_when_still_listed():
    store = held(LISTING)
    later = NOW + 40 * HOUR  # b8, b9 and b10 (created 8-10 hours before NOW) are past 48h
    result = run(incremental_sync(pages_of(LISTING), store, later))
    assert len(result.store) == 7


@pytest.mark.parametrize(
    ("listing", "reason"),
    [
        ([LISTING[0], LISTING[2], *LISTING[3:]], "vanished"),
        ([raw("new2", NOW - 30), raw("new1", NOW - 10), *LISTING], "order"),
    ],
)
def test_a_head_that_does_not_fit_is_a_misfit(listing, reason):
    store = held(LISTING)
    with pytest.raises(Misfit) as misfit:
        run(incremental_sync(pages_of(listing), store, NOW))
    assert misfit.value.reason == reason


def test_a_page_whose_count_disagrees_is_a_misfit():
    store = held(LISTING)

    async def lying():
        yield Page([wire_item(item) for item in LISTING[:2]], 3)

    with pytest.raises(Misfit) as misfit:
        run(incremental_sync(lying(), store, NOW))
    assert misfit.value.reason == "count"


def test_a_full_sync_notices_disorder():
    result = run(full_sync(pages_of([LISTING[1], LISTING[0]]), NOW))
    assert result.ordered is False


def test_the_store_is_compact():
    store = held([raw(f"x{n}", NOW - n * 60) for n in range(1000)])
    assert store.nbytes() / len(store) == 50


def test_an_empty_store_reads_everything_once():
    result = run(incremental_sync(pages_of(LISTING), BackupStore(), NOW))
    assert result.pages == 5
    assert list(result.store) == list(held(LISTING))


# --- the property: incremental equals full, series for series


# What only a full read can know, and says so: an incremental read never walks the tail, where
# expired backups wait for the API to delete them.
AS_OF_THE_LAST_FULL_READ = ("northflank_backups_expired_listed",)


def backup_series(exporter):
    """The exposition without the exporter's own bookkeeping (requests, pages, timings)."""
    return [
        line
        for line in exporter.exposition().decode().splitlines()
        if line.startswith("northflank_")
        and not line.startswith(("northflank_exporter_", *AS_OF_THE_LAST_FULL_READ))
    ]


step = st.one_of(
    st.tuples(st.just("time"), st.floats(30, 6 * HOUR)),
    st.tuples(st.just("manual"), st.integers(1, 3)),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=6), seed=st.integers(0, 3))
def test_incremental_exposition_equals_a_fresh_full_poll(steps, seed):
    clock = Clock(NOW)
    # Backups are deleted up to 30 minutes after they expire: they must count nowhere meanwhile.
    world = build_world(seed, NOW, 2, 240, scenarios=tuple(SCENARIOS))
    world = replace(world, deletion_lag=1800)
    with Simulator(world, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        config = config_for(simulator)
        incremental = Exporter(config, clock=clock)
        run(incremental.poll_once())
        manual = 0
        for kind, amount in [*steps, ("time", 60.0)]:  # the last step is always incremental
            if kind == "time":
                clock.now += amount
            elif kind == "manual":
                backups = []
                for _ in range(amount):
                    manual += 1
                    backups.append(raw(f"manual-{manual}", clock.now - 1))
                simulator.add_backups("primary-backups", backups)
            run(incremental.poll_once())
            fresh = Exporter(config, clock=clock)
            run(fresh.poll_once())
            assert backup_series(incremental) == backup_series(fresh)
            run(fresh.aclose())
        pages = dict(incremental.parts[0].poller.snapshot.pages_fetched)
        assert pages.get(("primary-backups", "incremental"), 0) >= 1
        run(incremental.aclose())
    asyncio.set_event_loop(None)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    size=st.integers(min_value=2, max_value=40),
    moments=st.integers(min_value=1, max_value=6),
    new=st.integers(min_value=0, max_value=5),
)
def test_ties_listed_in_another_order_on_each_read_never_bend_the_store(data, size, moments, new):
    """Backups that share a createdAt may come in any order on every read (the API promises
    none among them): an incremental read holds each listed backup exactly once, as a full
    read would."""
    created = [NOW - HOUR * data.draw(st.integers(0, moments - 1)) for _ in range(size)]
    backups = [raw(f"b{n}", moment) for n, moment in enumerate(created)]

    def listing(items):
        """Newest first; ties in an order drawn for this read."""
        shuffled = data.draw(st.permutations(items))
        return sorted(
            shuffled, key=lambda item: -datetime.fromisoformat(item["createdAt"]).timestamp()
        )

    before = held(listing(backups))
    added = [raw(f"new{n}", NOW + data.draw(st.integers(0, 2)) * 600) for n in range(new)]
    after = listing(backups + added)
    per_page = data.draw(st.integers(min_value=5, max_value=9))
    store = run(incremental_sync(pages_of(after, per_page), before, NOW)).store
    full = run(full_sync(pages_of(after, per_page), NOW)).store
    assert len(store) == len(full) == size + new
    assert sorted(store.ids) == sorted(full.ids)


def test_a_tied_pair_listed_the_other_way_round_is_held_once():
    """The hostile case: two backups with one createdAt at the end of page 1, swapped."""
    pair = [raw("x", NOW - HOUR), raw("y", NOW - HOUR)]
    rest = [raw(f"o{n}", NOW - (n + 2) * HOUR) for n in range(5)]
    store = held([*pair, *rest])
    for _ in range(3):
        pair.reverse()
        store = run(incremental_sync(pages_of([*pair, *rest]), store, NOW)).store
        assert len(store) == 7


@pytest.mark.parametrize("step", range(0, 48, 2))
def test_a_large_listing_whose_first_page_hides_its_slower_streams_is_read_whole(step):
    """14,900 backups, most of them hourly, at starts spread over a day: the first page shows
    the hourly streams only, and once led to expect as few as 61 pages of 149. The walk was cut
    as endless at 2 x 61 + 10 pages, and the destination was down on every poll, at a third of
    these starts. The estimate is revised from every page read before a walk is cut."""
    now = NOW + step * 1777.0
    world = build_world(1, now, 1, 14900)
    listed = [listed.backup for listed in world.backups(world.destinations[0], now)]
    assert len(listed) > 14000
    result = run(full_sync(pages_of(listed, 100), now))
    assert result.pages == -(-len(listed) // 100)
    assert len(result.store) + result.expired_listed == len(listed)


def test_an_endless_listing_of_ever_older_backups_is_still_cut():
    """New backups on every page, a minute apart and kept 30 hours: past 30 hours back they
    have all expired and the estimate stops growing (19 pages), so the walk is cut past
    2 x 19 + 10 pages, not at poll.max_pages."""
    read = []

    async def endless():
        for number in range(10**6):
            first = number * 100
            items = [
                raw(f"e{n}", NOW - n * 60, expires=NOW - n * 60 + 30 * HOUR)
                for n in range(first, first + 100)
            ]
            read.append(number)
            yield Page([wire_item(item) for item in items], 100)

    with pytest.raises(ApiError) as cut:
        run(full_sync(endless(), NOW))
    assert cut.value.code == "too_many_pages"
    assert len(read) == 2 * 19 + 10 + 1


# --- resyncs paced by what they find


def test_a_full_read_finds_only_what_the_incremental_reads_missed():
    """Counted below the newest held backup: one deleted by hand, one listed late and one final
    whose status changed; not a newer one, nor a running one that ended, nor one about to
    expire that the API has deleted already."""
    listing = [
        raw("run", NOW - 3 * HOUR, status="in-progress"),
        *[raw(f"b{n}", NOW - n * HOUR) for n in range(4, 9)],
        raw("soon", NOW - 9 * HOUR, expires=NOW + 600),
    ]
    before = held(listing)
    assert missed_by_increments(before, held(listing), NOW) == 0
    later = [
        raw("newer", NOW - HOUR),
        raw("run", NOW - 3 * HOUR),  # ended
        raw("b4", NOW - 4 * HOUR),
        raw("late", NOW - 4.5 * HOUR),  # listed late
        raw("b5", NOW - 5 * HOUR, status="failed"),  # a final status changed
        raw("b6", NOW - 6 * HOUR),
        # b7 deleted by hand; "soon" gone a little before its expiry
        raw("b8", NOW - 8 * HOUR),
    ]
    assert missed_by_increments(before, held(later), NOW) == 3


class Listing:
    """One destination's listing, which a test changes between polls."""

    def __init__(self, items):
        self.items = items
        self.full_reads = 0

    def pages(self, destination, full):
        self.full_reads += full
        return pages_of(self.items, per_page=2)


def test_resyncs_that_find_nothing_come_less_often_and_one_that_finds_a_deletion_brings_them_back(
    caplog,
):
    """At a 6 h resync interval and a poll every hour: resyncs 6, 12 and then 24 hours apart
    while they find what the incremental reads held; the one that finds a backup deleted by
    hand brings back 6 hours (and says so), then the doubling starts again."""
    kept = NOW + 90 * 24 * HOUR
    listing = Listing([raw(f"b{n}", NOW - n * HOUR, expires=kept) for n in range(9)])
    syncer = Syncer(listing.pages, 6 * HOUR, incremental=True)
    full_at = []
    for hour in range(85):
        before = listing.full_reads
        if hour == 50:
            del listing.items[5]  # deleted by hand, deep in the list
        run(syncer.sync("d", NOW + hour * HOUR))
        if listing.full_reads > before:
            full_at.append(hour)
    assert full_at == [0, 6, 18, 42, 66, 72, 84]
    assert [r.getMessage() for r in caplog.records if "in full every" in r.getMessage()] == [
        "destination=d is read in full every 6h again: it found 1 backups the incremental "
        "reads had not"
    ]
