"""Per-addon metrics for every simulator scenario, held to values worked out independently
(tests/reference.py) from the simulator's data and a fixed clock."""

from dataclasses import replace

import pytest

from exporter.config import AddonRules
from exporter.runtime import Exporter
from exporter.simulator.scenarios import SCENARIOS
from tests.conftest import NOW, config_for, parse_samples, pick, poll_once, series
from tests.reference import addon_expectations, approx_equal

GAUGES = {
    "last_completed": "northflank_addon_backup_last_completed_timestamp_seconds",
    "last_completed_size": "northflank_addon_backup_last_completed_size_bytes",
    "size_median": "northflank_addon_backup_completed_size_median_bytes",
    "last_completed_duration": "northflank_addon_backup_last_completed_duration_seconds",
    "last_failure": "northflank_addon_backup_last_failure_timestamp_seconds",
    "consecutive_failures": "northflank_addon_backup_consecutive_failures",
    "running_age": "northflank_addon_backup_running_age_seconds",
    "never_completed": "northflank_addon_backup_never_completed",
    "restorable_until": "northflank_addon_backup_restorable_until_timestamp_seconds",
    "expiring": "northflank_addon_backups_expiring",
    "expected_interval": "northflank_addon_backup_expected_interval_seconds",
    "last_scheduled": "northflank_addon_backup_last_scheduled_timestamp_seconds",
    "next_scheduled": "northflank_addon_backup_next_scheduled_timestamp_seconds",
    "overdue": "northflank_addon_backup_overdue_seconds",
    "missed": "northflank_addon_backup_missed_slots",
    "last_missed": "northflank_addon_backup_last_missed_slot_timestamp_seconds",
}


@pytest.fixture
def scenario_simulator(start_simulator):
    return start_simulator(backups_per_destination=300, scenarios=tuple(SCENARIOS))


def scrape(exporter):
    return parse_samples(exporter.exposition().decode())


def check_every_addon(simulator, samples, now):
    for destination in ("primary-backups", "backups-02"):
        expected = addon_expectations(simulator.backups(destination), now)
        assert expected
        for (project, addon), want in expected.items():
            labels = {"destination": destination, "project": project, "addon": addon}
            assert pick(samples, "northflank_addon_info", **labels, **want["info"]) == 1
            for status, number in want["counts"].items():
                assert pick(samples, "northflank_addon_backups", **labels, status=status) == number
            for key, metric in GAUGES.items():
                got = pick(samples, metric, **labels)
                assert approx_equal(got, want[key]), (addon, key, got, want[key])
            intervals = {
                dict(k)["interval"]
                for k in series(samples, "northflank_addon_backup_schedule_info")
                if labels.items() <= dict(k).items()
            }
            assert intervals == want["intervals"]


def test_every_addon_metric_of_every_scenario_matches_the_reference(scenario_simulator, clock):
    exporter = Exporter(config_for(scenario_simulator), clock=clock)
    assert poll_once(exporter)
    check_every_addon(scenario_simulator, scrape(exporter), clock.now)


@pytest.mark.parametrize("hours_later", [0.5, 3, 26, 24 * 6])
def test_the_reference_holds_as_time_moves_on(scenario_simulator, clock, hours_later):
    exporter = Exporter(config_for(scenario_simulator), clock=clock)
    clock.now = NOW + hours_later * 3600
    assert poll_once(exporter)
    check_every_addon(scenario_simulator, scrape(exporter), clock.now)


def scenario_values(exporter, addon):
    samples = scrape(exporter)
    labels = {"destination": "primary-backups", "project": "scenarios", "addon": addon}
    return {key: pick(samples, metric, **labels) for key, metric in GAUGES.items()}


def test_what_each_scenario_shows(scenario_simulator, clock):
    """The situations as an on-call engineer would read them (the exact values are checked
    against the reference above; here, what they mean)."""
    exporter = Exporter(config_for(scenario_simulator), clock=clock)
    poll_once(exporter)
    stopped = scenario_values(exporter, "stopped-postgresql")
    assert stopped["missed"] == 3
    assert stopped["overdue"] > 0
    assert stopped["expected_interval"] == 3600
    skipped = scenario_values(exporter, "skipped-runs-mysql")
    assert skipped["overdue"] == 0  # manual backups keep it fresh...
    assert skipped["missed"] >= 20  # ...but the scheduler skipped every other run
    assert clock.now - skipped["last_missed"] <= 2 * 3600  # the newest of them, within a slot
    stuck = scenario_values(exporter, "stuck-mongodb")
    assert stuck["running_age"] > 5 * 3600
    assert stuck["overdue"] == 0
    never = scenario_values(exporter, "never-completed-redis")
    assert never["never_completed"] == 1
    assert never["last_completed"] is None
    assert never["restorable_until"] is None
    assert never["last_failure"] is not None
    shrunk = scenario_values(exporter, "shrunk-mysql")
    assert shrunk["last_completed_size"] < 0.1 * shrunk["size_median"]
    expiring = scenario_values(exporter, "expiring-postgresql")
    assert expiring["restorable_until"] - clock.now == pytest.approx(40 * 60, abs=1)
    assert expiring["last_failure"] > expiring["last_completed"]
    ordinary = {
        dict(k)["project"]: dict(k)["addon"]
        for k in series(scrape(exporter), "northflank_addon_info")
        if dict(k)["project"] != "scenarios" and dict(k)["destination"] == "primary-backups"
    }
    project, addon = next(iter(ordinary.items()))
    samples = scrape(exporter)
    labels = {"destination": "primary-backups", "project": project, "addon": addon}
    assert pick(samples, GAUGES["overdue"], **labels) == 0
    assert pick(samples, GAUGES["never_completed"], **labels) == 0


def test_overdue_keeps_growing_while_a_schedule_stays_broken(scenario_simulator, clock):
    exporter = Exporter(config_for(scenario_simulator), clock=clock)
    values = []
    for _ in range(3):
        poll_once(exporter)
        values.append(scenario_values(exporter, "stopped-postgresql")["overdue"])
        clock.now += 3600
    assert values[1] - values[0] == pytest.approx(3600)
    assert values[2] - values[1] == pytest.approx(3600)


def test_an_addon_that_disappears_stops_being_exported(scenario_simulator, clock):
    exporter = Exporter(config_for(scenario_simulator), clock=clock)
    poll_once(exporter)
    assert 'addon="stuck-mongodb"' in exporter.exposition().decode()
    world = scenario_simulator.world
    first = world.destinations[0]
    kept = tuple(a for a in first.addons if a.addon_id != "stuck-mongodb")
    scenario_simulator.set_world(
        replace(world, destinations=(replace(first, addons=kept), *world.destinations[1:]))
    )
    poll_once(exporter)
    text = exporter.exposition().decode()
    assert 'addon="stuck-mongodb"' not in text
    assert 'addon="stopped-postgresql"' in text


def rules_config(simulator, **rules):
    import re

    patterns = {
        key: tuple(re.compile(p) for p in value)
        for key, value in rules.items()
        if key in ("include", "exclude")
    }
    others = {key: value for key, value in rules.items() if key not in patterns}
    return replace(config_for(simulator), addons=AddonRules(**patterns, **others))


def addons_exported(exporter):
    return {
        (dict(k)["project"], dict(k)["addon"])
        for k in series(scrape(exporter), "northflank_addon_info")
    }


def test_include_and_exclude_filter_project_slash_addon(scenario_simulator, clock):
    every = Exporter(config_for(scenario_simulator), clock=clock)
    poll_once(every)
    everything = addons_exported(every)
    only = Exporter(
        rules_config(scenario_simulator, include=["scenarios/.*"], exclude=[".*/stuck-.*"]),
        clock=clock,
    )
    poll_once(only)
    assert addons_exported(only) == {
        k for k in everything if k[0] == "scenarios" and not k[1].startswith("stuck-")
    }
    assert len(addons_exported(only)) == len(SCENARIOS) - 1
    # destination totals still count every backup
    assert series(scrape(only), "northflank_backups") == series(scrape(every), "northflank_backups")


def test_addons_disabled_exports_no_addon_series(scenario_simulator, clock):
    exporter = Exporter(rules_config(scenario_simulator, enabled=False), clock=clock)
    poll_once(exporter)
    assert "northflank_addon_backups{" not in exporter.exposition().decode()
    assert pick(scrape(exporter), "northflank_up", destination="primary-backups") == 1


def addon_series_count(text):
    return sum(1 for line in text.splitlines() if line.startswith("northflank_addon"))


def test_series_count_depends_on_addons_not_backups(start_simulator, clock):
    counts = []
    for backups in (150, 1500):
        simulator = start_simulator(
            destinations=1, backups_per_destination=backups, addons_per_destination=3
        )
        exporter = Exporter(config_for(simulator), clock=clock)
        poll_once(exporter)
        assert len(simulator.backups("primary-backups")) == backups
        counts.append(addon_series_count(exporter.exposition().decode()))
    assert counts[0] == counts[1]
    # The README promises at most 28 series an addon (plus one per status the API invents).
    assert 20 * 3 <= counts[0] <= 28 * 3
