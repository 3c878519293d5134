"""The verdict: firings matched to the incidents, false firings counted, targets checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.simulator.units import HOUR
from monitoring.backtest.alerting import EVALUATION, Firing
from monitoring.backtest.incidents import Incident
from monitoring.backtest.replay import POLL
from monitoring.backtest.rules import Rule


@dataclass
class Score:
    alert: str
    severity: str
    injected: int = 0
    detected: int = 0
    detect_seconds: list[float] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    false: int = 0
    outage: int = 0
    firing_seconds: float = 0.0

    def false_per_100_week(self, addons: int, days: float) -> float:
        return self.false / (addons / 100) / (days / 7)


@dataclass(frozen=True)
class Noise:
    outage: tuple[float, float]  # when the API answered 5xx
    restart: float


def score(
    rules: list[Rule],
    fired: list[Firing],
    expected: list[Incident],
    incident_starts: dict[str, float],
    noise: Noise,
) -> list[Score]:
    scores = {rule.name: Score(rule.name, rule.severity) for rule in rules}
    for incident in expected:
        entry = scores[incident.alert]
        entry.injected += 1
        entry.targets.append(incident.target)
        hits = _hits(incident, fired)
        if hits:
            entry.detected += 1
            entry.detect_seconds.append(min(f.start for f in hits) - incident.start)
    for firing in fired:
        entry = scores[firing.alert]
        entry.firing_seconds += firing.end - firing.start + EVALUATION
        addon = subject(firing.labels)
        if addon is not None and addon in incident_starts:
            if firing.end >= incident_starts[addon]:
                continue  # on an addon whose incident had begun
        elif addon is None and _overlaps(firing, noise.outage):
            entry.outage += 1  # a destination truly down while the API was
            continue
        entry.false += 1
    return list(scores.values())


def subject(labels: dict[str, str]) -> str | None:
    """The addon, or the volume, an alert is about (None: a destination or the exporter)."""
    return labels.get("addon") or labels.get("volume")


def _hits(incident: Incident, fired: list[Firing]) -> list[Firing]:
    """The firings of the alert that should detect the incident, on its addon, after it began."""
    return [
        f
        for f in fired
        if f.alert == incident.alert
        and subject(f.labels) == incident.addon
        and f.end >= incident.start
    ]


def incident_rows(expected: list[Incident], fired: list[Firing]) -> list[dict[str, Any]]:
    """Per incident: how late it was detected, against its target, and how long its alert
    fired (an incident that ends, like one skipped run, shows how long it kept paging)."""
    rows = []
    for incident in expected:
        hits = _hits(incident, fired)
        detected = min((f.start for f in hits), default=None)
        rows.append(
            {
                "incident": incident.kind,
                "addon": incident.addon,
                "alert": incident.alert,
                "detect_seconds": None if detected is None else detected - incident.start,
                "target_seconds": incident.target,
                "firing_seconds": sum(f.end - f.start + EVALUATION for f in hits),
                "unbroken_seconds": (
                    None if detected is None else _unbroken(incident.addon, detected, fired)
                ),
                "other_alerts": sorted(
                    {
                        f.alert.removeprefix("NorthflankBackup")
                        for f in fired
                        if subject(f.labels) == incident.addon
                        and f.alert != incident.alert
                        and f.end >= incident.start
                    }
                ),
            }
        )
    return rows


def _unbroken(addon: str, detected: float, fired: list[Firing]) -> float:
    """From its detection, how long some alert kept firing on the addon without a gap (one
    alert may hand over to another: Overdue to ScheduleNotArriving once the last backup
    expired and the addon left the listing)."""
    until = detected
    spans = sorted((f.start, f.end) for f in fired if subject(f.labels) == addon)
    for begin, end in spans:
        if begin > until + 2 * EVALUATION:
            break
        until = max(until, end)
    return until - detected + EVALUATION


def _overlaps(firing: Firing, window: tuple[float, float]) -> bool:
    return firing.start <= window[1] + HOUR and firing.end >= window[0]


def verdicts(
    scores: list[Score], expected: list[Incident], addons: int, days: float, end: float
) -> list[str]:
    """Each target the run missed, as one line; none when all were met. An incident whose
    target ends after the run could not be judged: that is a missed target too, never a
    silent pass."""
    missed = [
        f"{incident.kind} ({incident.alert}): not judged, its target ends "
        f"{_hours(incident.judged_by - end)} after the run"
        for incident in expected
        if incident.judged_by > end
    ]
    for entry in scores:
        if entry.detected < entry.injected:
            missed.append(
                f"{entry.alert}: {entry.injected - entry.detected} incident(s) not detected"
            )
        if entry.severity == "critical" and entry.false:
            missed.append(f"{entry.alert}: {entry.false} false critical firing(s)")
        if entry.severity == "warning" and entry.false_per_100_week(addons, days) > 1:
            missed.append(
                f"{entry.alert}: {entry.false_per_100_week(addons, days):.2f} false firings "
                "per 100 addons per week (target <= 1)"
            )
        for took, target in zip(entry.detect_seconds, entry.targets, strict=False):
            if took > target:
                missed.append(
                    f"{entry.alert}: detected after {_hours(took)}, target {_hours(target)}"
                )
    return missed


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}h"


def unexpected_warnings(warnings: list[tuple[float, str]], noise: Noise) -> list[tuple[float, str]]:
    """The exporter's warnings that the API outage does not explain."""
    return [(moment, text) for moment, text in warnings if not _in_outage(moment, noise)]


def warning_verdicts(unexpected: list[tuple[float, str]]) -> list[str]:
    """A missed target when a healthy fleet drew any warning: one line, with the first."""
    if not unexpected:
        return []
    return [
        f"the exporter logged {len(unexpected)} warning(s) outside the API outage, "
        f"the first: {unexpected[0][1]}"
    ]


def _in_outage(moment: float, noise: Noise) -> bool:
    """Within the outage, or the polls just after it that find the destinations again."""
    return noise.outage[0] <= moment <= noise.outage[1] + 2 * POLL


def explained(firing: Firing, starts: dict[str, float], noise: Noise) -> bool:
    """A firing on an incident addon once its incident began, or a destination alert while the
    API was down."""
    addon = subject(firing.labels)
    if addon is not None and addon in starts:
        return firing.end >= starts[addon]
    return addon is None and _overlaps(firing, noise.outage)
