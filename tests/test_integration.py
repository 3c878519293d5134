"""The exporter polling the simulator on loopback; every value checked against the raw API data."""

from dataclasses import replace
from datetime import datetime

import pytest

from exporter.model import STATUSES
from exporter.runtime import Exporter
from exporter.simulator import Faults
from tests.conftest import config_for, parse_samples, pick, poll_once, series, with_account

WINDOW = 86400.0


def epoch(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def expected_for(items, now):
    """Worked out from the raw API objects with nothing from the exporter's own code."""
    counts = dict.fromkeys(STATUSES, 0)
    sizes = dict.fromkeys(STATUSES, 0)
    completions, expiries = [], []
    for item in items:
        if float(item["expiredBy"]) / 1000 <= now:
            continue  # gone, even if still listed
        counts[item["status"]] += 1
        sizes[item["status"]] += int(item["config"]["size"])
        if item["status"] == "completed":
            completions.append(epoch(item["completedAt"]))
        expires = float(item["expiredBy"]) / 1000
        if expires > now:
            expiries.append(expires)
    return {
        "counts": counts,
        "sizes": sizes,
        "last_completed": max(completions),
        "expiring": sum(1 for e in expiries if e <= now + WINDOW),
        "next_expiry": min(expiries),
    }


@pytest.fixture
def exporter(simulator, clock):
    return Exporter(config_for(simulator), clock=clock)


def scrape(exporter):
    return parse_samples(exporter.exposition().decode())


def test_every_destination_gauge_matches_the_api_data(simulator, exporter, clock):
    assert poll_once(exporter) is True
    samples = scrape(exporter)
    for destination in ("primary-backups", "backups-02"):
        want = expected_for(simulator.backups(destination), clock.now)
        for status in STATUSES:
            assert (
                pick(samples, "northflank_backups", destination=destination, status=status)
                == want["counts"][status]
            )
            assert (
                pick(
                    samples, "northflank_backup_size_bytes", destination=destination, status=status
                )
                == want["sizes"][status]
            )
        assert pick(
            samples, "northflank_backup_last_completed_timestamp_seconds", destination=destination
        ) == pytest.approx(want["last_completed"], abs=1e-3)
        assert pick(
            samples, "northflank_backup_last_completed_age_seconds", destination=destination
        ) == pytest.approx(clock.now - want["last_completed"], abs=1e-3)
        assert (
            pick(samples, "northflank_backups_expiring", destination=destination)
            == want["expiring"]
        )
        assert pick(
            samples, "northflank_backup_next_expiry_timestamp_seconds", destination=destination
        ) == pytest.approx(want["next_expiry"], abs=1e-3)
        assert pick(samples, "northflank_up", destination=destination) == 1
        assert (
            pick(
                samples,
                "northflank_exporter_last_successful_poll_timestamp_seconds",
                destination=destination,
            )
            == clock.now
        )
        assert (
            pick(samples, "northflank_exporter_poll_duration_seconds", destination=destination) > 0
        )
        assert (
            pick(samples, "northflank_exporter_invalid_backups_total", destination=destination) == 0
        )
    assert (
        pick(
            samples,
            "northflank_backup_destination_info",
            destination="primary-backups",
            name="Primary backups",
            usage="globalBackups",
        )
        == 1
    )
    assert series(samples, "northflank_exporter_api_requests_total") == {
        frozenset({("endpoint", "/v1/backup-destinations"), ("code", "200")}): 1,
        frozenset(
            {("endpoint", "/v1/backup-destinations/{backupDestinationId}/backups"), ("code", "200")}
        ): 6,
    }
    assert pick(samples, "northflank_exporter_rate_limit_remaining") == 1000 - 7
    assert pick(samples, "northflank_exporter_discovery_up") == 1


def test_age_is_as_of_the_last_rendering(exporter, clock):
    poll_once(exporter)
    age = "northflank_backup_last_completed_age_seconds"
    before = pick(scrape(exporter), age, destination="backups-02")
    clock.now += 120
    assert pick(scrape(exporter), age, destination="backups-02") == before  # the same bytes
    poll_once(exporter)
    assert pick(scrape(exporter), age, destination="backups-02") == pytest.approx(before + 120)


def test_no_last_completed_series_when_nothing_completed(start_simulator, clock):
    simulator = start_simulator(destinations=1, backups_per_destination=0)
    assert simulator.backups("primary-backups") == []
    simulator.inject(
        "primary-backups",
        [
            {
                "id": "r",
                "status": "in-progress",
                "config": {"size": "0"},
                "createdAt": "2026-11-30T12:00:00Z",
            }
        ],
    )
    exporter = Exporter(config_for(simulator), clock=clock)
    poll_once(exporter)
    samples = scrape(exporter)
    assert (
        pick(samples, "northflank_backups", destination="primary-backups", status="in-progress")
        == 1
    )
    assert series(samples, "northflank_backup_last_completed_timestamp_seconds") == {}
    assert series(samples, "northflank_backup_last_completed_age_seconds") == {}
    assert series(samples, "northflank_backup_next_expiry_timestamp_seconds") == {}


def test_invalid_backups_are_skipped_and_counted_and_the_poll_stays_up(simulator, exporter):
    good = simulator.backups("primary-backups")
    simulator.inject(
        "primary-backups",
        [
            {
                "id": "no-size",
                "status": "completed",
                "config": {},
                "createdAt": "2026-11-30T12:00:00Z",
                "completedAt": "2026-11-30T12:01:00Z",
            },
            "not even an object",
            {
                "id": "new-status",
                "status": "restoring",
                "config": {"size": "5"},
                "createdAt": "2026-11-30T12:00:00Z",
            },
        ],
    )
    assert poll_once(exporter) is True
    samples = scrape(exporter)
    assert (
        pick(samples, "northflank_exporter_invalid_backups_total", destination="primary-backups")
        == 2
    )
    assert (
        pick(samples, "northflank_backups", destination="primary-backups", status="restoring") == 1
    )
    assert pick(
        samples, "northflank_backups", destination="primary-backups", status="completed"
    ) == sum(1 for b in good if b["status"] == "completed")
    poll_once(exporter)
    assert (
        pick(
            scrape(exporter),
            "northflank_exporter_invalid_backups_total",
            destination="primary-backups",
        )
        == 4
    )


def test_a_destination_unread_for_longer_than_stale_after_keeps_its_data_through_a_failure(
    simulator, clock
):
    """Read around the slots, a destination may go half an hour unread by design: one failed
    read then must not drop what it held. stale_after is timed from the first failed read."""
    exporter = Exporter(config_for(simulator, stale_after=600.0, max_retries=0), clock=clock)

    def held() -> dict:
        found = series(scrape(exporter), "northflank_backups")
        return {k: v for k, v in found.items() if ("destination", "backups-02") in k}

    poll_once(exporter)
    good = held()
    assert len(good) == 7
    simulator.faults.destination_status["backups-02"] = 503
    clock.now += 900  # unread for longer than stale_after, then the read fails
    assert poll_once(exporter) is False
    assert pick(scrape(exporter), "northflank_up", destination="backups-02") == 0
    assert held() == good
    clock.now += 599
    poll_once(exporter)
    assert held() == good
    clock.now += 1
    poll_once(exporter)
    assert held() == {}


def test_a_failing_destination_keeps_its_last_data_until_stale_then_drops_it(simulator, clock):
    exporter = Exporter(config_for(simulator, stale_after=600.0, max_retries=0), clock=clock)
    poll_once(exporter)
    good = scrape(exporter)
    last_success = clock.now
    simulator.faults.destination_status["backups-02"] = 503
    clock.now += 300
    assert poll_once(exporter) is False
    samples = scrape(exporter)
    assert pick(samples, "northflank_up", destination="backups-02") == 0
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    kept = {
        k: v
        for k, v in series(good, "northflank_backups").items()
        if ("destination", "backups-02") in k
    }
    assert len(kept) == 7
    assert {
        k: v
        for k, v in series(samples, "northflank_backups").items()
        if ("destination", "backups-02") in k
    } == kept
    assert (
        pick(
            samples,
            "northflank_exporter_last_successful_poll_timestamp_seconds",
            destination="backups-02",
        )
        == last_success
    )
    # stale_after is timed from the first failed read: 600 s after it, the data goes
    clock.now += 600
    poll_once(exporter)
    samples = scrape(exporter)
    assert pick(samples, "northflank_up", destination="backups-02") == 0
    assert pick(samples, "northflank_backups", destination="backups-02", status="completed") is None
    assert pick(samples, "northflank_backups_expiring", destination="backups-02") is None
    assert (
        pick(samples, "northflank_backups", destination="primary-backups", status="completed")
        is not None
    )
    assert (
        pick(
            samples,
            "northflank_backup_destination_info",
            destination="backups-02",
            name="Backups 02",
            usage="globalBackups",
        )
        == 1
    )
    assert (
        pick(
            samples,
            "northflank_exporter_api_requests_total",
            endpoint="/v1/backup-destinations/{backupDestinationId}/backups",
            code="503",
        )
        == 2
    )
    simulator.faults.destination_status.clear()
    poll_once(exporter)
    assert pick(scrape(exporter), "northflank_up", destination="backups-02") == 1


def test_a_destination_that_disappears_stops_being_exported(simulator, exporter):
    poll_once(exporter)
    simulator.set_world(replace(simulator.world, destinations=simulator.world.destinations[:1]))
    poll_once(exporter)
    text = exporter.exposition().decode()
    assert 'destination="backups-02"' not in text
    assert 'destination="primary-backups"' in text


def test_configured_destinations_are_the_only_ones_polled(simulator, clock):
    config = with_account(config_for(simulator), destinations=("backups-02",))
    exporter = Exporter(config, clock=clock)
    assert poll_once(exporter) is True
    samples = scrape(exporter)
    assert set(series(samples, "northflank_up")) == {frozenset({("destination", "backups-02")})}
    assert (
        pick(
            samples,
            "northflank_backup_destination_info",
            destination="backups-02",
            name="Backups 02",
            usage="globalBackups",
        )
        == 1
    )
    assert not any("primary-backups" in r.path for r in simulator.requests)


def test_a_configured_destination_that_does_not_exist_is_down_not_fatal(simulator, clock):
    config = with_account(config_for(simulator), destinations=("backups-02", "gone"))
    exporter = Exporter(config, clock=clock)
    assert poll_once(exporter) is False
    samples = scrape(exporter)
    assert pick(samples, "northflank_up", destination="gone") == 0
    assert pick(samples, "northflank_up", destination="backups-02") == 1
    assert (
        pick(samples, "northflank_backup_destination_info", destination="gone", name="", usage="")
        == 1
    )


def test_discovery_failure_keeps_polling_known_destinations(simulator, exporter):
    poll_once(exporter)
    simulator.faults.destination_status[""] = 500  # the list route has no destination id
    assert poll_once(exporter) is False
    samples = scrape(exporter)
    assert pick(samples, "northflank_exporter_discovery_up") == 0
    assert pick(samples, "northflank_up", destination="primary-backups") == 1
    assert pick(samples, "northflank_up", destination="backups-02") == 1


def test_ready_only_after_every_destination_was_polled(simulator, exporter):
    assert exporter.parts[0].poller.snapshot.ready is False
    poll_once(exporter)
    assert exporter.parts[0].poller.snapshot.ready is True


def test_an_unknown_status_appears_and_then_vanishes(simulator, exporter):
    simulator.inject(
        "backups-02",
        [
            {
                "id": "x",
                "status": "restoring",
                "config": {"size": "1"},
                "createdAt": "2026-11-30T12:00:00Z",
            }
        ],
    )
    poll_once(exporter)
    assert (
        pick(scrape(exporter), "northflank_backups", destination="backups-02", status="restoring")
        == 1
    )
    simulator.inject("backups-02", [])
    poll_once(exporter)
    assert (
        pick(scrape(exporter), "northflank_backups", destination="backups-02", status="restoring")
        is None
    )


def test_faults_in_one_destination_leave_the_other_untouched(start_simulator, clock):
    simulator = start_simulator(faults=Faults(destination_status={"primary-backups": 401}))
    exporter = Exporter(config_for(simulator), clock=clock)
    poll_once(exporter)
    samples = scrape(exporter)
    want = expected_for(simulator.backups("backups-02"), clock.now)
    assert (
        pick(samples, "northflank_backups", destination="backups-02", status="completed")
        == want["counts"]["completed"]
    )
    assert pick(samples, "northflank_up", destination="primary-backups") == 0
