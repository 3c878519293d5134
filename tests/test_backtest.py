"""A short alert backtest (monitoring/backtest.py): one of each incident over four simulated
days, replayed through the real exporter and evaluated by a real Prometheus. Judged on counts:
every incident detected in time, and no critical alert firing for nothing."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace

import pytest

from monitoring.backtest import (
    Noise,
    Plan,
    Rule,
    firings,
    replay,
    run,
    stale_free,
    unexpected_warnings,
    warning_verdicts,
)
from monitoring.fleet import DAY, INCIDENTS, build_fleet


@pytest.fixture(scope="module")
def result():
    return run(argparse.Namespace(addons=20, days=4, seed=3))


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
    # the API outage took every destination down, and said so
    down = next(s for s in result["scores"] if s["alert"] == "NorthflankBackupDestinationDown")
    assert down["outage_firings"] > 0


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
    plan = Plan(3, 4, 0.05, start, 0, frozenset(), start + DAY, start + DAY)
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
