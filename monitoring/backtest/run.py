"""One backtest run: the fleet of one seed replayed, evaluated and scored."""

from __future__ import annotations

import math
import multiprocessing
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.api import cost_kind
from exporter.simulator.units import DAY, MINUTE
from monitoring.backtest.alerting import EVALUATION, Firing, firings
from monitoring.backtest.incidents import Incident, incidents
from monitoring.backtest.prometheus import Replayed
from monitoring.backtest.replay import OUTAGE, POLL, WORKERS, Plan, Share, replay_share
from monitoring.backtest.rules import load_rules, rule_metrics, stale_free
from monitoring.backtest.scoring import (
    Noise,
    Score,
    explained,
    incident_rows,
    score,
    subject,
    unexpected_warnings,
    verdicts,
    warning_verdicts,
)
from monitoring.fleet import build_fleet

# Never the clock: the same arguments give the same verdicts on any day. A Monday at midnight.
DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


@dataclass(frozen=True, kw_only=True)
class Arguments:
    seed: int = 1
    addons: int = 200
    days: float = 30
    start: float = DEFAULT_START
    workers: int = WORKERS  # processes that replay the run's destinations side by side
    outage: float = OUTAGE  # how long the API answers every request with a 500


def run_end(start: float, days: float, expected: list[Incident]) -> float:
    """The last poll: `days` after the start, or later when an incident's target ends later
    (the run grows to judge it, rather than drop it), on the poll grid."""
    end = start + days * DAY
    latest = max((incident.judged_by for incident in expected), default=end)
    if latest > end:
        end = start + math.ceil((latest - start) / POLL) * POLL
    return end


def noise_of(start: float, days: float, outage_for: float = OUTAGE) -> Noise:
    outage = start + days * DAY * 0.7 + 13 * MINUTE
    return Noise(
        outage=(outage, outage + outage_for), restart=start + days * DAY * 0.55 + 2 * MINUTE
    )


def _replay_all(plans: list[Plan], scratch: str) -> list[Share]:
    if len(plans) == 1:
        return [replay_share(plans[0], scratch)]
    with multiprocessing.get_context("fork").Pool(len(plans)) as pool:
        return pool.starmap(replay_share, [(plan, scratch) for plan in plans])


def _plans(args: Arguments, end: float, names: frozenset[str], noise: Noise) -> list[Plan]:
    """One replay plan a worker, each replaying its share of the fleet."""
    return [
        Plan(
            seed=args.seed,
            addons=args.addons,
            days=args.days,
            start=args.start,
            end=end,
            worker=worker,
            workers=args.workers,
            names=names,
            restart_at=noise.restart,
            outage_at=noise.outage[0],
            outage_until=noise.outage[1],
        )
        for worker in range(args.workers)
    ]


def _score_row(s: Score, addons: int, days: float) -> dict[str, Any]:
    return {
        "alert": s.alert,
        "severity": s.severity,
        "incidents": s.injected,
        "detected": s.detected,
        "detect_seconds": s.detect_seconds,
        "target_seconds": s.targets,
        "false_firings": s.false,
        "false_per_100_addons_per_week": round(s.false_per_100_week(addons, days), 3),
        "outage_firings": s.outage,
        "firing_seconds": s.firing_seconds,
    }


def requests_per_hour(shares: list[Share], days: float) -> dict[str, float]:
    """The exporters' API requests an hour over the run, by what they are spent on."""
    by_kind: Counter[str] = Counter()
    for share in shares:
        for endpoint, number in share.requests.items():
            by_kind[cost_kind(endpoint)] += number
    return {kind: round(number / (days * 24), 1) for kind, number in sorted(by_kind.items())}


def run(args: Arguments) -> dict[str, Any]:
    began = time.monotonic()
    rules = load_rules()
    fleet, incident_addons = build_fleet(args.seed, args.addons, args.days, args.start)
    expected = incidents(fleet, incident_addons, rules)
    end = run_end(args.start, args.days, expected)
    noise = noise_of(args.start, args.days, args.outage)
    plans = _plans(args, end, rule_metrics(rules), noise)
    with tempfile.TemporaryDirectory(prefix="backtest-") as scratch:
        shares = _replay_all(plans, scratch)
        replayed_at = time.monotonic()
        prometheus = Replayed(Path(scratch))
        imported_at = time.monotonic()
        try:
            fired: list[Firing] = []
            for rule in rules:
                steps = prometheus.true_steps(stale_free(rule.expr), args.start, end)
                fired.extend(firings(rule, steps))
        finally:
            prometheus.stop()
    days = (end - args.start) / DAY
    starts = {a.ident: a.incident_at for a in incident_addons if a.incident_at is not None}
    scores = score(rules, fired, expected, starts, noise)
    missed = verdicts(scores, expected, args.addons, days, end)
    unexpected = unexpected_warnings([w for share in shares for w in share.warnings], noise)
    missed.extend(warning_verdicts(unexpected))
    return {
        "seed": args.seed,
        "addons": args.addons,
        "days": args.days,
        "replayed_days": round(days, 4),
        "start": datetime.fromtimestamp(args.start, tz=UTC).isoformat(),
        "poll_interval_seconds": POLL,
        "evaluation_interval_seconds": EVALUATION,
        "polls": sum(share.polls for share in shares),
        "requests_per_hour": requests_per_hour(shares, days),
        "samples": sum(share.samples for share in shares),
        "seconds": {
            "replay": round(replayed_at - began, 1),
            "import": round(imported_at - replayed_at, 1),
            "total": round(time.monotonic() - began, 1),
        },
        "scores": [_score_row(s, args.addons, days) for s in scores],
        "incidents": incident_rows(expected, fired),
        "incident_firings": [
            {"alert": f.alert, "addon": subject(f.labels), "start": f.start, "end": f.end}
            for f in sorted(fired, key=lambda f: (subject(f.labels) or "", f.start))
            if subject(f.labels) in starts
        ],
        "false_firings": [
            {"alert": f.alert, "labels": f.labels, "start": f.start, "end": f.end}
            for f in fired
            if not explained(f, starts, noise)
        ][:50],
        "exporter_warnings_outside_outage": [
            {"at": moment, "message": message} for moment, message in unexpected[:50]
        ],
        "missed_targets": missed,
    }
