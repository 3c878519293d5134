"""A short alert backtest (monitoring/backtest/): one of each incident over four simulated
days, replayed through the real exporter and evaluated by a real Prometheus. Judged on counts:
every incident detected in time, and no critical alert firing for nothing. It runs at a fixed
start and at another one nobody tuned it to; neither is taken from the clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from exporter.simulator.units import DAY
from monitoring.backtest.alerting import firings
from monitoring.backtest.incidents import Incident
from monitoring.backtest.replay import Plan, replay
from monitoring.backtest.rules import Rule, stale_free
from monitoring.backtest.run import DEFAULT_START, Arguments, run, run_end
from monitoring.backtest.scoring import (
    Noise,
    Score,
    unexpected_warnings,
    verdicts,
    warning_verdicts,
)
from monitoring.fleet import INCIDENTS, build_fleet
from monitoring.fleet_runs import scheduled_slots

# A leap day, a Thursday mid-afternoon: nothing about it was chosen to suit the rules.
ANOTHER_START = datetime(2024, 2, 27, 15, 41, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module", params=[DEFAULT_START, ANOTHER_START], ids=["default", "another"])
def result(request):
    return run(Arguments(seed=3, addons=20, days=4, start=request.param))


def test_every_incident_is_detected_within_its_target(result):
    judged = {s["alert"]: s for s in result["scores"] if s["incidents"]}
    assert sum(s["incidents"] for s in judged.values()) == len(INCIDENTS)
    for score in judged.values():
        assert score["detected"] == score["incidents"], score
        for took, target in zip(score["detect_seconds"], score["target_seconds"], strict=True):
            assert 0 <= took <= target, score
    assert result["missed_targets"] == []


def test_no_critical_alert_fires_for_nothing(result):
    critical = [s for s in result["scores"] if s["severity"] == "critical"]
    assert {s["alert"] for s in critical} >= {
        "NorthflankBackupAddonOverdue",
        "NorthflankBackupAddonRestorableWindowEnding",
    }
    assert [s for s in critical if s["false_firings"]] == []
    # Destinations are read around their slots, at least every 30 minutes: the 20-minute API
    # outage is told only where a read meets it (tests/test_faults.py holds that a failed read
    # is down and is retried every interval); it never brings DestinationDown outside it.
    down = next(s for s in result["scores"] if s["alert"] == "NorthflankBackupDestinationDown")
    assert down["false_firings"] == 0


def test_an_outage_past_stale_after_is_told_and_pages_nobody_for_nothing():
    """50 minutes of 500s: longer than poll.stale_after (30m), after which a destination's
    backups are dropped, and than the 30 minutes a destination may go unread around its slots.
    DestinationDown fires during it; ScheduleNotArriving, which once read the dropped backups
    as never arriving (205 false firings a week per 100 addons), stays quiet."""
    result = run(Arguments(seed=3, addons=20, days=4, start=DEFAULT_START, outage=50 * 60.0))
    critical = [s for s in result["scores"] if s["severity"] == "critical"]
    assert [s["alert"] for s in critical if s["false_firings"]] == []
    down = next(s for s in result["scores"] if s["alert"] == "NorthflankBackupDestinationDown")
    assert down["outage_firings"] > 0 and down["false_firings"] == 0
    assert result["missed_targets"] == []


def test_a_worker_share_of_the_fleet_lists_every_backup_once():
    """dataclasses.replace once handed the share the whole fleet's index, and every addon was
    listed twice: the exporter rightly read every page on every poll, and said so."""
    start = 1_790_000_000.0 - 1_790_000_000.0 % DAY
    fleet, _ = build_fleet(3, 20, 2, start)
    share = replace(fleet, destinations=fleet.destinations[:1])
    listed = [b.backup["id"] for b in share.backups(share.destinations[0], start + DAY)]
    assert listed
    assert len(listed) == len(set(listed))


def test_the_exporter_s_warnings_outside_the_outage_miss_a_target():
    """A fleet that lists a backup twice draws the exporter's warning, and the run says so."""
    start = 1_790_000_000.0 - 1_790_000_000.0 % DAY
    fleet, _ = build_fleet(3, 4, 1, start)
    doubled = replace(fleet, addons=fleet.addons + fleet.addons[:1])
    plan = Plan(
        seed=3,
        addons=4,
        days=0.05,
        start=start,
        end=start + 0.05 * DAY,
        worker=0,
        workers=1,
        names=frozenset(),
        restart_at=start + DAY,
        outage_at=start + DAY,
        outage_until=start + DAY,
    )
    _, polls, warnings = asyncio.run(replay(doubled, plan))
    assert polls == 15
    assert warnings
    elsewhere = Noise(outage=(start + 2 * DAY, start + 2 * DAY + 1200), restart=start + DAY)
    (verdict,) = warning_verdicts(unexpected_warnings(warnings, elsewhere))
    assert f"logged {len(warnings)} warning(s) outside the API outage" in verdict
    assert "more than once" in verdict
    # the same warnings during the outage (or the polls just after it) are what it explains
    during = Noise(outage=(start, start + 0.05 * DAY), restart=start + DAY)
    assert unexpected_warnings(warnings, during) == []
    assert warning_verdicts([]) == []


def test_instant_selectors_drop_the_nan_that_ends_a_series():
    expr = (
        "a unless on (x) northflank_addon_info and "
        'max_over_time(northflank_d[7d]) > northflank_u{y="1"}'
    )
    assert stale_free(expr) == (
        "a unless on (x) (northflank_addon_info > -Inf) and "
        'max_over_time(northflank_d[7d]) > (northflank_u{y="1"} > -Inf)'
    )


def _spans(hold, keep, moments):
    rule = Rule("A", "x", hold, "warning", keep)
    fired = list(firings(rule, {(("addon", "a"),): moments}))  # ends are known once all is read
    return [(f.start, f.end) for f in fired]


def test_for_and_keep_firing_for_are_applied_as_prometheus_applies_them():
    minutes = [m * 60.0 for m in (0, 1, 2, 3, 4, 10, 11, 12, 13, 40, 41)]
    # for: 2m fires at the third evaluation; a gap resets it, and a short run never fires
    assert _spans(120, 0, minutes) == [(120, 240), (720, 780)]
    # keep_firing_for: 10m bridges the 6-minute gap, not the 27-minute one, and outlasts the run
    assert _spans(120, 600, minutes) == [(120, 780 + 600)]
    # a pending alert is never kept
    assert _spans(600, 600, minutes) == []


def test_the_same_arguments_give_the_same_run_on_any_day():
    """Nothing of a run depends on the day it is run: the fleet, its incidents and the run's
    end are functions of the arguments alone."""
    first, incidents_first = build_fleet(3, 20, 4, DEFAULT_START)
    again, incidents_again = build_fleet(3, 20, 4, DEFAULT_START)
    assert first.addons == again.addons
    assert incidents_first == incidents_again
    listed = [b.backup for b in first.backups(first.destinations[0], DEFAULT_START + DAY)]
    assert listed == [b.backup for b in again.backups(again.destinations[0], DEFAULT_START + DAY)]


def test_a_run_grows_to_judge_an_incident_whose_target_ends_after_it():
    late = Incident("shrunk", "incident-shrunk", DEFAULT_START + 3.9 * DAY, "A", DAY)
    early = Incident("stuck", "incident-stuck", DEFAULT_START + DAY, "B", 3600)
    end = run_end(DEFAULT_START, 4, [early, late])
    assert end >= late.judged_by
    assert (end - DEFAULT_START) % 300 == 0
    assert end - late.judged_by < 300
    assert run_end(DEFAULT_START, 4, [early]) == DEFAULT_START + 4 * DAY


def test_an_incident_the_run_cannot_judge_is_a_missed_target_never_dropped():
    late = Incident("shrunk", "incident-shrunk", DEFAULT_START + 3.9 * DAY, "A", DAY)
    scores = [Score("A", "warning", injected=1, detected=1, detect_seconds=[60], targets=[DAY])]
    missed = verdicts(scores, [late], 20, 4, end=DEFAULT_START + 4 * DAY)
    assert missed == ["shrunk (A): not judged, its target ends 21.60h after the run"]


def test_the_fleet_works_out_its_slots_on_its_own():
    """Hand-worked: a weekly Sunday 04:00 slot, and a daily one at 06:00 and 18:00, in the week
    from Monday 2026-03-02."""
    fleet, _ = build_fleet(1, 5, 1, DEFAULT_START)
    weekly = replace(
        fleet.addons[0], schedules=({"interval": "weekly", "minute": [0], "hour": [4], "day": [6]},)
    )
    twice = replace(
        fleet.addons[0], schedules=({"interval": "daily", "minute": [0], "hour": [6, 18]},)
    )
    week = (DEFAULT_START, DEFAULT_START + 7 * DAY)
    assert scheduled_slots(weekly, *week) == [DEFAULT_START + 6 * DAY + 4 * 3600]
    assert scheduled_slots(twice, *week)[:3] == [
        DEFAULT_START + 6 * 3600,
        DEFAULT_START + 18 * 3600,
        DEFAULT_START + DAY + 6 * 3600,
    ]
    assert len(scheduled_slots(twice, *week)) == 14


def test_the_run_reports_the_exporter_s_requests_an_hour_by_kind(result):
    """What issue 32's scheduler will be judged on: the requests an hour, by what they buy.
    Two exporters (the run's two workers) each list the whole inventory, as two shards do."""
    spent = result["requests_per_hour"]
    assert set(spent) == {
        "destinations",
        "projects, addons, volumes",
        "schedules",
        "managed and volume backups",
        "restores",
    }
    # read around their addons' slots (poll.around_slots), at least every 30 minutes: at
    # least 2 requests an hour each, and at most half the 12 of a read every 5 minutes
    assert 2 * 4 <= spent["destinations"] <= 12 * 4 / 2
    assert spent["restores"] > 0  # the drilled projects' and the incidents' restores are read
