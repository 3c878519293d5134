"""Every fault the API and the network can throw, injected for real by the simulator: the
exporter keeps serving, the other destinations are untouched, the faulty one is down with its
last good data kept until stale_after, the matching counter moves, one log line says what
happened, and no partial poll is ever published."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.aggregate import summarize
from exporter.backups import InvalidBackup, parse_backup, read_page, wire_item
from exporter.model import STATUSES, Backup, Schedule
from exporter.runtime import Exporter
from exporter.simulator import Faults
from tests.conftest import (
    FakeTime,
    Serving,
    config_for,
    parse_samples,
    pick,
    poll_once,
    series,
)

FAULTY = "backups-02"
STALE_AFTER = 600.0


def destination_series(samples, destination):
    return {
        (name, labels): value
        for (name, labels), value in samples.items()
        if ("destination", destination) in labels
        and not name.startswith("northflank_exporter")
        and name
        not in (
            "northflank_up",
            "northflank_backup_last_completed_age_seconds",
            "northflank_addon_backup_last_completed_age_seconds",
            "northflank_addon_backup_running_age_seconds",
            "northflank_addon_backup_overdue_seconds",
            "northflank_addon_backup_last_scheduled_timestamp_seconds",
            "northflank_addon_backup_next_scheduled_timestamp_seconds",
        )
    }


def inject(kind):
    def apply(simulator):
        if kind.startswith("http-"):
            simulator.faults.destination_status[FAULTY] = int(kind[5:])
        elif kind == "burst":
            simulator.faults.bursts[FAULTY] = 1000
        else:
            simulator.faults.destination_fault[FAULTY] = kind

    return apply


FAULTS = [
    # (fault, reasons the failure counter may show, text the log line must carry)
    ("burst", {"500", "502", "503"}, "HTTP 50"),
    ("http-401", {"401"}, "HTTP 401"),
    ("http-403", {"403"}, "HTTP 403"),
    ("http-404", {"404"}, "HTTP 404"),
    ("stall", {"timeout"}, "timed out"),
    ("reset", {"error"}, "network error"),
    ("truncated", {"invalid_body"}, "not JSON"),
    ("repeat-cursor", {"bad_cursor"}, "repeated a cursor"),
    ("cycle-cursor", {"bad_cursor"}, "repeated a cursor"),
    ("oversized", {"oversized_page"}, "more than the 100 asked for"),
]


def test_a_destination_that_sends_no_cursor_is_read_by_page_number(start_simulator, clock):
    """hasNextPage with no cursor: the official client asks for the next page by number."""
    simulator = start_simulator(destinations=3, backups_per_destination=260)
    exporter = Exporter(config_for(simulator, incremental=False), clock=clock)
    assert poll_once(exporter)
    good = parse_samples(exporter.exposition().decode())
    simulator.faults.destination_fault[FAULTY] = "no-cursor"
    simulator.requests.clear()
    assert poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_up", destination=FAULTY) == 1
    assert destination_series(samples, FAULTY) == destination_series(good, FAULTY)
    asked = [parse_qs(urlsplit(r.path).query) for r in simulator.requests if f"{FAULTY}/" in r.path]
    assert [("page" in query, "cursor" in query) for query in asked] == [
        (False, False),
        (True, False),
        (True, False),
    ]


@pytest.mark.parametrize(("fault", "reasons", "said"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_in_one_destination(start_simulator, clock, caplog, fault, reasons, said):
    simulator = start_simulator(destinations=3, backups_per_destination=260)
    simulator.faults.stall_seconds = 1.5
    # Full reads, so that faults past the first page are met (an incremental poll that stops
    # at page one rightly never asks for the broken page two).
    config = config_for(
        simulator, stale_after=STALE_AFTER, max_retries=1, timeout=0.5, incremental=False
    )
    exporter = Exporter(config, clock=clock)
    assert poll_once(exporter)
    good = parse_samples(exporter.exposition().decode())
    inject(fault)(simulator)
    caplog.clear()
    clock.now += 60
    assert poll_once(exporter) is False
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_up", destination=FAULTY) == 0
    # the last good data, whole: never the pages read before the fault
    assert destination_series(samples, FAULTY) == destination_series(good, FAULTY)
    for other in ("primary-backups", "backups-03"):
        assert pick(samples, "northflank_up", destination=other) == 1
        assert (
            pick(
                samples,
                "northflank_exporter_last_successful_poll_timestamp_seconds",
                destination=other,
            )
            == clock.now
        )
    failures = {
        dict(labels)["reason"]: value
        for labels, value in series(samples, "northflank_exporter_poll_failures_total").items()
        if ("destination", FAULTY) in labels
    }
    assert set(failures) <= reasons and sum(failures.values()) == 1
    lines = [
        r.getMessage()
        for r in caplog.records
        if f"destination={FAULTY} poll failed" in r.getMessage()
    ]
    assert len(lines) == 1 and said in lines[0] and "\n" not in lines[0]
    # past stale_after the kept data goes; the destination stays, down
    clock.now += STALE_AFTER
    poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    assert destination_series(samples, FAULTY) == {
        k: v
        for k, v in destination_series(good, FAULTY).items()
        if k[0] == "northflank_backup_destination_info"
    }
    assert pick(samples, "northflank_up", destination=FAULTY) == 0
    # and it heals
    simulator.faults = Faults()
    poll_once(exporter)
    assert (
        pick(parse_samples(exporter.exposition().decode()), "northflank_up", destination=FAULTY)
        == 1
    )


def test_a_429_storm_is_waited_out_not_hammered(start_simulator, clock):
    simulator = start_simulator(destinations=2, backups_per_destination=100)
    fake = FakeTime(clock)
    config = config_for(simulator, max_retries=5, max_retry_wait=2.0, concurrency=1)
    exporter = Exporter(config, clock=clock, sleep=fake.sleep)
    assert poll_once(exporter)
    simulator.faults.rate_limit_rate = 1.0
    before = len(simulator.requests)
    clock.now += 60
    started = clock.now
    assert poll_once(exporter) is False
    storm = simulator.requests[before:]
    # Each 429 says the window resets in about an hour: no retry can wait that long, and
    # every destination of the token waits for the reset instead of hammering the API.
    assert [r.status for r in storm] == [429, 429, 429]  # the listing, then each destination
    # the window began with the first poll, a minute before the storm
    assert [round(r.at - started) for r in storm] == [0, 3541, 7142]  # reset + 1s margin
    assert sum(1 for s in fake.slept if s > 3000) == 2
    samples = parse_samples(exporter.exposition().decode())
    assert (
        pick(
            samples,
            "northflank_exporter_api_requests_total",
            endpoint="/v1/backup-destinations",
            code="429",
        )
        == 1
    )


def test_the_process_keeps_serving_through_every_fault_at_once(start_simulator):
    simulator = start_simulator(destinations=5, backups_per_destination=250)
    # The stall outlasts the timeout by far, and the timeout any answer on loopback, however
    # busy the machine: the stalled destination times out, and only it.
    simulator.faults = Faults(
        stall_seconds=60.0,
        destination_fault={
            "backups-02": "reset",
            "backups-03": "stall",
            "backups-04": "repeat-cursor",
        },
        destination_status={"backups-05": 500},
    )
    config = config_for(simulator, interval=0.2, timeout=5.0, max_retries=0)
    with Serving(Exporter(config)) as serving:
        serving.wait_ready()
        poller = serving.exporter.parts[0].poller

        def healthy_pages() -> int:
            return sum(n for (d, _), n in poller.snapshot.pages_fetched if d == "primary-backups")

        # scrape through two more poll cycles of every fault at once, a dozen times at least
        until, answers = healthy_pages() + 2, 0
        deadline = time.monotonic() + 120  # a guard against a hang, not a speed target
        while answers < 12 or healthy_pages() < until:
            assert time.monotonic() < deadline, "the exporter stopped polling"
            response = httpx.get(f"{serving.url}/metrics", timeout=10)
            assert response.status_code == 200
            samples = parse_samples(response.text)
            assert pick(samples, "northflank_up", destination="primary-backups") == 1
            for faulty in ("backups-02", "backups-03", "backups-04", "backups-05"):
                assert pick(samples, "northflank_up", destination=faulty) == 0
            answers += 1
        assert threading.active_count() < 50


# --- schema drift: bad fields are skipped and counted, the poll stays whole

DRIFT = [
    {"id": "no-status", "config": {"size": "1"}, "createdAt": "2026-11-30T10:00:00Z"},
    {
        "id": "wrong-types",
        "status": 7,
        "config": {"size": "1"},
        "createdAt": "2026-11-30T10:00:00Z",
    },
    {"id": "null-config", "status": "completed", "config": None},
    {
        "id": "negative",
        "status": "failed",
        "config": {"size": -5},
        "createdAt": "2026-11-30T10:00:00Z",
    },
    {
        "id": "nan",
        "status": "failed",
        "config": {"size": "NaN"},
        "createdAt": "2026-11-30T10:00:00Z",
    },
    {
        "id": "huge",
        "status": "failed",
        "config": {"size": "1e30"},
        "createdAt": "2026-11-30T10:00:00Z",
    },
    None,
    ["not", "an", "object"],
]
ACCEPTED = [
    {
        "id": "null-objects",
        "status": "completed",
        "config": {"size": "10"},
        "project": None,
        "addon": None,
        "createdAt": "2026-11-30T10:00:00Z",
        "completedAt": "2026-11-30T10:05:00Z",
    },
    {
        "id": "new-status",
        "status": "verifying",
        "config": {"size": "20"},
        "createdAt": "2026-11-30T10:00:00+00:00",
    },
    {
        "id": "other-iso",
        "status": "completed",
        "config": {"size": 30},
        "createdAt": "2026-11-30 11:00:00",
        "completedAt": "2026-11-30T12:00:00.123456+01:00",
        "expiredBy": 0,
    },
    {
        "id": "seconds",
        "status": "completed",
        "config": {"size": "40"},
        "createdAt": "2026-11-30T10:00:00.5Z",
        "completedAt": "2026-11-30T10:01:00Z",
        "expiredBy": 1_900_000_000,
    },
]


def test_schema_drift_is_skipped_and_counted_and_the_rest_is_exact(start_simulator, clock):
    simulator = start_simulator(destinations=2, backups_per_destination=0)
    simulator.inject(FAULTY, [*DRIFT, *ACCEPTED])
    exporter = Exporter(config_for(simulator), clock=clock)
    assert poll_once(exporter) is True
    samples = parse_samples(exporter.exposition().decode())
    assert pick(samples, "northflank_up", destination=FAULTY) == 1
    assert pick(samples, "northflank_exporter_invalid_backups_total", destination=FAULTY) == len(
        DRIFT
    )
    assert pick(samples, "northflank_backups", destination=FAULTY, status="verifying") == 1
    assert pick(samples, "northflank_backups", destination=FAULTY, status="completed") == 3
    assert (
        pick(samples, "northflank_backup_size_bytes", destination=FAULTY, status="completed")
        == 10 + 30 + 40
    )
    # 12:00:00.123456+01:00, the newest completion, read in its own zone
    assert pick(
        samples, "northflank_backup_last_completed_timestamp_seconds", destination=FAULTY
    ) == pytest.approx(1796036400.123456)
    # expiredBy 1_900_000_000 is seconds (2030), not milliseconds (1970): not expired
    assert (
        pick(samples, "northflank_backup_next_expiry_timestamp_seconds", destination=FAULTY)
        == 1_900_000_000
    )
    assert pick(samples, "northflank_up", destination="primary-backups") == 1


# --- fuzz: parsing never raises anything but InvalidBackup, and what is counted adds up

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
field_values = {
    "id": st.one_of(st.text(max_size=20), json_values),
    "status": st.one_of(st.sampled_from(STATUSES), st.text(max_size=80), json_values),
    "config": st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "size": st.one_of(
                    st.integers(-10, 10**20), st.floats(), st.text(max_size=12), json_values
                )
            },
        ),
        json_values,
    ),
    "createdAt": st.one_of(
        st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=30), json_values
    ),
    "completedAt": st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), json_values),
    "expiredBy": st.one_of(
        st.integers(-10, 10**15), st.floats(), st.text(max_size=20), json_values
    ),
    "schedules": st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {
                    "interval": st.sampled_from(["hourly", "daily", "weekly", "monthly", 3]),
                    "minute": st.lists(st.integers(-1, 61), max_size=3),
                },
                optional={
                    "hour": st.lists(st.integers(-1, 25), max_size=3),
                    "day": st.lists(st.integers(-1, 8), max_size=3),
                },
            ),
            max_size=3,
        ),
        json_values,
    ),
    "project": json_values,
    "addon": st.one_of(
        st.fixed_dictionaries({"id": st.text(max_size=8), "name": json_values}), json_values
    ),
}
backup_objects = st.one_of(st.fixed_dictionaries({}, optional=field_values), json_values)


@settings(max_examples=400, deadline=None)
@given(st.lists(backup_objects, max_size=30))
def test_parsing_never_raises_and_counts_add_up(page):
    now = 1_800_000_000.0
    accepted = expired = 0
    for raw in page:
        try:
            backup = parse_backup(raw)
        except InvalidBackup:
            pass
        else:
            accepted += 1
            expired += backup.expires is not None and backup.expires <= now
            assert backup.size >= 0 and math.isfinite(backup.created)
    summary = summarize(page, now, 86400.0)
    assert summary.invalid + accepted == len(page)
    assert summary.total + expired == accepted
    assert sum(count for _, count in summary.backups_by_status) == summary.total


# --- the one reader on a hand-written odd page: every item judged alone, in listing order

CREATED = "2026-11-30T10:00:00Z"
ODD_PAGE = [
    {  # the API's usual shape
        "id": "usual",
        "status": "completed",
        "project": {"id": "shop", "name": "Shop"},
        "addon": {"id": "db", "name": "DB"},
        "config": {"size": "1234", "addonType": "postgresql", "addonVersion": "16"},
        "schedules": [{"interval": "daily", "minute": [30, 0, 30], "hour": [2]}],
        "expiredBy": "1900000000000.0",
        "createdAt": CREATED,
        "completedAt": "2026-11-30T10:05:00.500Z",
    },
    {  # numbers where text is usual, text where numbers are, odd references
        "id": "odd-types",
        "status": "failed",
        "project": "shop",
        "addon": {"id": "", "name": "no id"},
        "config": {"size": 12, "addonType": 7},
        "schedules": [{"interval": "monthly", "minute": [0]}],
        "expiredBy": 1_900_000_000,
        "createdAt": 1_796_032_800_000,
        "completedAt": "",
    },
    {  # a name that is not text is absent, the id stays
        "id": "odd-name",
        "status": "in-progress",
        "addon": {"id": "db", "name": 5},
        "config": {"size": "0"},
        "createdAt": "2026-11-30 10:00:00",
        "completedAt": None,
    },
    {"id": "bad-size", "status": "failed", "config": {"size": True}, "createdAt": CREATED},
    {
        "id": "bad-expiry",
        "status": "failed",
        "config": {"size": "1"},
        "createdAt": CREATED,
        "expiredBy": "soon",
    },
    {
        "id": "bad-schedule",
        "status": "failed",
        "config": {"size": "1"},
        "createdAt": CREATED,
        "schedules": [{"interval": "weekly", "minute": [0], "hour": [1]}],
    },
    {"id": "unfinished", "status": "completed", "config": {"size": "1"}, "createdAt": CREATED},
    "a string",
    None,
]


def test_the_reader_judges_each_item_of_an_odd_page_on_its_own():
    body = json.dumps({"data": ODD_PAGE}).encode()
    items = [wire_item(raw) for raw in json.loads(body)["data"]]
    page = read_page(items)
    created = 1_796_032_800.0
    assert page.backups == [
        Backup(
            "usual",
            "completed",
            1234,
            created,
            created + 300.5,
            1_900_000_000.0,
            "shop",
            "Shop",
            "db",
            "DB",
            "postgresql",
            "16",
            (Schedule("daily", (0, 30), (2,)),),
        ),
        Backup("odd-types", "failed", 12, created, None, 1_900_000_000.0),
        Backup("odd-name", "in-progress", 0, created, None, None, addon_id="db"),
    ]
    assert page.invalid == [
        "config.size: not a whole number of bytes: True",
        "expiredBy: not an epoch time: 'soon'",
        "schedules: weekly schedule lacks its minute, hour or day list",
        "completedAt: missing on a completed backup",
        "backup: not an object",
        "backup: not an object",
    ]


def test_log_level_of_a_fault_is_warning(caplog, start_simulator, clock):
    simulator = start_simulator(
        destinations=1,
        backups_per_destination=10,
        faults=Faults(destination_status={"primary-backups": 403}),
    )
    caplog.set_level(logging.WARNING)
    poll_once(Exporter(config_for(simulator), clock=clock))
    assert [r.levelname for r in caplog.records if "poll failed" in r.getMessage()] == ["WARNING"]


def test_the_same_backup_listed_on_several_pages_counts_once(start_simulator, clock):
    simulator = start_simulator(destinations=2, backups_per_destination=100)
    alone = Exporter(config_for(simulator), clock=clock)
    assert poll_once(alone)
    expected = parse_samples(alone.exposition().decode())
    page = simulator.backups(FAULTY)
    assert len(page) == 100
    simulator.serve_pages(f"/v1/backup-destinations/{FAULTY}/backups", [page] * 5)
    exporter = Exporter(config_for(simulator), clock=clock)
    assert poll_once(exporter)
    samples = parse_samples(exporter.exposition().decode())
    for status in STATUSES:
        assert pick(samples, "northflank_backups", destination=FAULTY, status=status) == pick(
            expected, "northflank_backups", destination=FAULTY, status=status
        )
        assert pick(
            samples, "northflank_backup_size_bytes", destination=FAULTY, status=status
        ) == pick(expected, "northflank_backup_size_bytes", destination=FAULTY, status=status)
    assert pick(samples, "northflank_exporter_duplicate_backups_total", destination=FAULTY) == 400
    assert (
        pick(samples, "northflank_exporter_duplicate_backups_total", destination="primary-backups")
        == 0
    )
    assert poll_once(exporter)  # the next poll reads every page again, as for disorder
    samples = parse_samples(exporter.exposition().decode())
    assert (
        pick(
            samples, "northflank_exporter_full_resyncs_total", destination=FAULTY, reason="fallback"
        )
        == 1
    )
    assert (
        pick(samples, "northflank_exporter_pages_fetched_total", destination=FAULTY, mode="full")
        == 2 * 5
    )


@pytest.mark.parametrize("with_data", [True, False])
def test_a_cursor_that_never_ends_is_cut_long_before_max_pages(start_simulator, clock, with_data):
    simulator = start_simulator(destinations=2, backups_per_destination=260)
    page = simulator.backups(FAULTY)[:100] if with_data else []
    simulator.serve_pages(f"/v1/backup-destinations/{FAULTY}/backups", [page] * 200)
    exporter = Exporter(config_for(simulator), clock=clock)
    assert not poll_once(exporter)
    walked = [r for r in simulator.requests if f"{FAULTY}/backups" in r.path]
    # the first page led to expect 2 pages: cut past 2 x 2 + 10 (or past 10 empty in a row)
    assert len(walked) == (15 if with_data else 11)
    samples = parse_samples(exporter.exposition().decode())
    assert (
        pick(
            samples,
            "northflank_exporter_poll_failures_total",
            destination=FAULTY,
            reason="too_many_pages",
        )
        == 1
    )
    assert pick(samples, "northflank_up", destination=FAULTY) == 0
    assert pick(samples, "northflank_up", destination="primary-backups") == 1


def test_a_destination_that_drips_delays_only_itself(start_simulator, clock):
    simulator = start_simulator(destinations=2, faults=Faults(destination_fault={FAULTY: "drip"}))
    # an hour of dripping per request: the dripping poll outlasts the test on any machine
    config = config_for(simulator, interval=0.2, timeout=3600.0, max_retries=0)
    with Serving(Exporter(config, clock=clock)) as serving:
        poller = serving.exporter.parts[0].poller

        def healthy_polls():
            pages = dict(poller.snapshot.pages_fetched)
            return pages.get(("primary-backups", "full"), 0) + pages.get(
                ("primary-backups", "incremental"), 0
            )

        deadline = time.monotonic() + 120  # a guard against a hang: a cycle waiting for it
        while healthy_polls() < 10:
            assert time.monotonic() < deadline, "the healthy destination waited for the slow one"
            time.sleep(0.05)
        samples = parse_samples(serving.exporter.exposition().decode())
        assert pick(samples, "northflank_up", destination="primary-backups") == 1
        # the dripping poll is still under way: it has neither succeeded nor failed
        assert pick(samples, "northflank_up", destination=FAULTY) is None
        assert [r for r in simulator.requests if f"{FAULTY}/backups" in r.path] != []
