"""A hostile API at the HTTP level: each attack served to one destination of a running
exporter, for several polls. The exporter stays up and polling (no loop fails or stalls), its
memory stays bounded (peak RSS read from /proc), and the healthy destination's values stay
exact."""

from __future__ import annotations

import json
import time
import zlib

import httpx
import pytest

from exporter.runtime import Exporter
from exporter.simulator import Faults
from tests.conftest import Serving, config_for, parse_samples, pick, poll_once, run
from tests.test_faults import destination_series

HEALTHY, HOSTILE = "primary-backups", "backups-02"
BACKUPS = f"/v1/backup-destinations/{HOSTILE}/backups"
POLLS = 3
PEAK_GROWTH = 150 * 2**20  # bytes; a gzip bomb alone would inflate to 10 GiB


def reset_peak_rss() -> None:
    """From now on VmHWM is the peak of what follows, not of the process's whole life (which
    an earlier test may have set higher): Linux resets it on writing 5 to clear_refs."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def memory(field: str) -> int:
    """A field of /proc/self/status in bytes: VmHWM (the peak) or VmRSS (now)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def surrogates(simulator):
    odd = dict(simulator.backups(HOSTILE)[0], id="odd")
    odd["addon"] = {"id": "db\ud800", "name": "x\udfff"}
    simulator.inject(HOSTILE, [odd])


def deep_nesting(simulator):
    simulator.serve_raw(BACKUPS, b"[" * 100_000 + b"]" * 100_000)


def gzip_bomb(simulator):
    # 200 MB of JSON in about 200 KB, compressed a megabyte at a time so that the test itself
    # never holds the inflated body (the peak RSS it measures must be the exporter's)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunks = [packer.compress(b'{"data": [')]
    spaces = b" " * 2**20
    chunks += [packer.compress(spaces) for _ in range(200)]
    chunks.append(packer.compress(b"]}") + packer.flush())
    simulator.serve_raw(BACKUPS, b"".join(chunks), {"Content-Encoding": "gzip"})


def huge_body(simulator):
    simulator.serve_raw(BACKUPS, b'{"data": [' + b" " * (64 * 2**20) + b"]}")


def drip(simulator):
    simulator.faults.destination_fault[HOSTILE] = "drip"


def endless_cursor(simulator):
    simulator.serve_pages(BACKUPS, [[]] * 10_000)


def duplicates(simulator):
    simulator.serve_pages(BACKUPS, [simulator.backups(HOSTILE)[:100]] * 5)


def token_echo(simulator):
    echo = {"error": {"status": 400, "message": "x" * 170 + f" bad token {simulator.token}"}}
    simulator.serve_raw(BACKUPS, json.dumps(echo).encode(), status=400)


ATTACKS = {
    "surrogates": surrogates,
    "deep-nesting": deep_nesting,
    "gzip-bomb": gzip_bomb,
    "huge-body": huge_body,
    "drip": drip,
    "endless-cursor": endless_cursor,
    "duplicates": duplicates,
    "token-echo": token_echo,
}


def healthy_polls(exporter) -> float:
    snapshot = exporter.parts[0].poller.snapshot
    return sum(n for (destination, _), n in snapshot.pages_fetched if destination == HEALTHY)


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_exporter_holds_against_a_hostile_api(start_simulator, clock, caplog, attack):
    simulator = start_simulator(destinations=2, faults=Faults(), backups_per_destination=260)
    clean = Exporter(config_for(simulator), clock=clock)
    assert poll_once(clean)
    expected = destination_series(parse_samples(clean.exposition().decode()), HEALTHY)
    run(clean.aclose())
    ATTACKS[attack](simulator)
    reset_peak_rss()
    before = memory("VmRSS")
    # a timeout no answer on loopback reaches however busy the machine, and that an attack
    # that stalls or drips always does
    config = config_for(simulator, interval=0.2, timeout=5.0, max_retries=0)
    with Serving(Exporter(config, clock=clock)) as serving:
        deadline = time.monotonic() + 60  # a guard against a hang, not a speed target
        while healthy_polls(serving.exporter) < POLLS * 3:  # 3 pages a poll
            assert time.monotonic() < deadline, "the healthy destination stopped being polled"
            time.sleep(0.05)
        metrics = httpx.get(f"{serving.url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert httpx.get(f"{serving.url}/-/healthy").status_code == 200
        assert serving.exporter.health.failures == {}
    samples = parse_samples(metrics.text)
    assert destination_series(samples, HEALTHY) == expected
    assert pick(samples, "northflank_up", destination=HEALTHY) == 1
    assert memory("VmHWM") - before < PEAK_GROWTH
    logged = " ".join(record.getMessage() for record in caplog.records)
    token = simulator.token
    assert all(token[i : i + 8] not in logged for i in range(len(token) - 8))


def samples_after_polls(simulator, clock, polls):
    """What /metrics shows after `polls` clean polls, five minutes apart."""
    exporter = Exporter(config_for(simulator), clock=clock)
    for _ in range(polls):
        assert poll_once(exporter)
        clock.now += 300
    return parse_samples(exporter.exposition().decode())


def test_a_destination_whose_every_backup_expired_says_so_once_and_shows_how_many(
    start_simulator, clock, caplog
):
    """The API may list backups a while past their expiredBy. When that is all a destination
    lists, its counts are 0 as for an empty one: one line and a series tell the two apart."""
    from datetime import UTC, datetime

    def iso(moment):
        return datetime.fromtimestamp(moment, tz=UTC).isoformat()

    day = 86400.0
    expired = [
        {
            "id": f"old-{n}",
            "status": "completed",
            "config": {"size": "10"},
            "createdAt": iso(clock.now - (40 - n) * day),
            "completedAt": iso(clock.now - (40 - n) * day + 60),
            "expiredBy": int((clock.now - (10 - n) * day) * 1000),
        }
        for n in range(3)
    ]
    simulator = start_simulator(destinations=1)
    simulator.serve_pages("/v1/backup-destinations/primary-backups/backups", [expired[::-1]])
    samples = samples_after_polls(simulator, clock, 3)
    where = {"destination": "primary-backups"}
    assert pick(samples, "northflank_up", **where) == 1
    assert pick(samples, "northflank_backups_expired_listed", **where) == 3
    assert pick(samples, "northflank_backups", status="completed", **where) == 0
    said = [r for r in caplog.records if "every one has expired" in r.getMessage()]
    assert len(said) == 1
    assert "destination=primary-backups lists 3 backups" in said[0].getMessage()


def test_one_backup_created_far_ahead_never_stops_a_destination(start_simulator, clock):
    """One scheduled backup created 30 days ahead, at the head of a 1,500-backup listing,
    shrank the page estimate to 1: every poll then failed with too_many_pages. It is now an
    invalid backup (created later than it was read), counted and named, and the rest is read."""
    from datetime import UTC, datetime

    ahead = datetime.fromtimestamp(clock.now + 30 * 86400, tz=UTC).isoformat()
    simulator = start_simulator(destinations=1, backups_per_destination=1500)
    future = {
        "id": "from-the-future",
        "status": "scheduled",
        "config": {"size": "0"},
        "createdAt": ahead,
        "schedules": [{"interval": "hourly", "minute": [0]}],
        "expiredBy": int((clock.now + 40 * 86400) * 1000),
    }
    simulator.inject("primary-backups", [future])  # at the head, as given
    samples = samples_after_polls(simulator, clock, 2)
    where = {"destination": "primary-backups"}
    assert pick(samples, "northflank_up", **where) == 1
    assert pick(samples, "northflank_exporter_invalid_backups_total", **where) >= 1
    listed = len(simulator.backups("primary-backups")) - 1  # all but the future one
    counted = sum(
        value
        for (name, labels), value in samples.items()
        if name == "northflank_backups" and ("destination", "primary-backups") in labels
    )
    assert counted == listed
