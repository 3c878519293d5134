"""A short alert backtest (monitoring/backtest.py): one of each incident over four simulated
days, replayed through the real exporter and evaluated by a real Prometheus. Judged on counts:
every incident detected in time, and no critical alert firing for nothing."""

from __future__ import annotations

import argparse

import pytest

from monitoring.backtest import run
from monitoring.fleet import INCIDENTS


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
