"""The backtest's results as text: per run, a table per alert, one per incident, each false
firing and missed target; over many runs, one summary."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

from monitoring.backtest.alerting import EVALUATION
from monitoring.fleet import INCIDENTS

Result = dict[str, Any]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}h"


def run_text(result: Result) -> str:
    days = result["replayed_days"]
    grown = f" (grown to {days:g} to judge every incident)" if days > result["days"] else ""
    lines = [
        f"backtest: seed {result['seed']}, {result['addons']} addons "
        f"(+{len(INCIDENTS)} with incidents), {result['days']:g} days{grown} from "
        f"{result['start'][:16]}, poll.interval {result['poll_interval_seconds']:.0f}s, "
        f"evaluation every {result['evaluation_interval_seconds']:.0f}s",
        alert_table(result["scores"]),
        "",
        incident_table(result["incidents"]),
    ]
    for firing in result["false_firings"]:
        lines.append(
            f"false: {firing['alert']} on {_where(firing['labels'])}, "
            f"{hours(firing['end'] - firing['start'] + EVALUATION)} from "
            f"{datetime.fromtimestamp(firing['start'], tz=UTC):%Y-%m-%d %H:%M}"
        )
    spent = result["requests_per_hour"]
    parts = ", ".join(f"{kind} {number:g}" for kind, number in spent.items())
    lines.append(f"requests an hour: {sum(spent.values()):.1f} ({parts})")
    lines.extend(f"MISSED: {line}" for line in result["missed_targets"])
    if not result["missed_targets"]:
        lines.append("every target met")
    seconds = result["seconds"]
    lines.append(
        f"took {seconds['total']:.0f}s ({seconds['replay']:.0f}s replaying "
        f"{result['polls']} polls, {seconds['import']:.0f}s importing "
        f"{result['samples']} samples)"
    )
    return "\n".join(lines)


def alert_table(scores: list[dict[str, Any]]) -> str:
    lines = [
        f"{'alert':<44}{'severity':<10}{'incidents':>10}{'detected':>9}"
        f"{'detect median':>15}{'max':>8}{'target':>8}{'false/100/wk':>13}{'outage':>7}"
        f"{'firing h':>9}"
    ]
    for s in scores:
        took = s["detect_seconds"]
        median = hours(statistics.median(took)) if took else "-"
        longest = hours(max(took)) if took else "-"
        target = hours(max(s["target_seconds"])) if s["target_seconds"] else "-"
        lines.append(
            f"{s['alert']:<44}{s['severity']:<10}{s['incidents']:>10}{s['detected']:>9}"
            f"{median:>15}{longest:>8}{target:>8}{s['false_per_100_addons_per_week']:>13.2f}"
            f"{s['outage_firings']:>7}{s['firing_seconds'] / 3600:>9.1f}"
        )
    return "\n".join(lines)


def incident_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'incident':<18}{'alert':<44}{'detected after':>15}{'target':>8}{'firing h':>9}"
        f"{'unbroken h':>11}  also fired"
    ]
    for row in rows:
        took = row["detect_seconds"]
        lines.append(
            f"{row['incident']:<18}{row['alert']:<44}"
            f"{'-' if took is None else hours(took):>15}{hours(row['target_seconds']):>8}"
            f"{row['firing_seconds'] / 3600:>9.1f}{(row['unbroken_seconds'] or 0) / 3600:>11.1f}"
            f"  {', '.join(row['other_alerts']) or '-'}"
        )
    return "\n".join(lines)


def _where(labels: dict[str, str]) -> str:
    if "addon" in labels:
        return f"{labels.get('project')}/{labels['addon']} ({labels.get('destination')})"
    if "volume" in labels:
        return f"{labels.get('project')}/{labels['volume']} (volume)"
    return labels.get("destination") or labels.get("instance") or "-"


def _addon_weeks(result: Result) -> float:
    """Hundreds of addons times weeks: what false firings are counted per."""
    return float(result["addons"]) / 100 * float(result["replayed_days"]) / 7


def _false(result: Result, severity: str) -> int:
    return sum(s["false_firings"] for s in result["scores"] if s["severity"] == severity)


def summary(results: list[Result]) -> dict[str, Any]:
    """Over every run: false firings per 100 addons a week by severity, overall and on the
    worst seed; per alert, the worst time to detect against its target; every missed target."""
    weeks = sum(_addon_weeks(r) for r in results)
    false: dict[str, Any] = {}
    for severity in ("critical", "warning"):
        rates = [(_false(r, severity) / _addon_weeks(r), -r["seed"]) for r in results]
        worst_rate, worst_seed = max(rates)  # the first seed among equals
        worst_seed = -worst_seed
        false[severity] = {
            "overall": round(sum(_false(r, severity) for r in results) / weeks, 3),
            "worst_seed": worst_seed,
            "worst": round(worst_rate, 3),
        }
    detect: dict[str, dict[str, Any]] = {}
    for result in results:
        for row in result["incidents"]:
            entry = detect.setdefault(
                row["alert"], {"incidents": 0, "detected": 0, "worst_seconds": None, "seed": None}
            )
            entry["incidents"] += 1
            took = row["detect_seconds"]
            if took is None:
                continue
            entry["detected"] += 1
            if entry["worst_seconds"] is None or took > entry["worst_seconds"]:
                entry.update(worst_seconds=took, target_seconds=row["target_seconds"])
                entry["seed"] = result["seed"]
    return {
        "runs": [
            {"seed": r["seed"], "addons": r["addons"], "days": r["replayed_days"]} for r in results
        ],
        "false_per_100_addons_per_week": false,
        "worst_detection": detect,
        "missed_targets": [f"seed {r['seed']}: {m}" for r in results for m in r["missed_targets"]],
        "seconds": round(sum(r["seconds"]["total"] for r in results), 1),
    }


def summary_text(total: dict[str, Any]) -> str:
    runs = ", ".join(f"{r['seed']} ({r['addons']}x{r['days']:g}d)" for r in total["runs"])
    lines = [f"summary of {len(total['runs'])} runs, seeds {runs}:"]
    for severity, rate in total["false_per_100_addons_per_week"].items():
        lines.append(
            f"  false {severity} firings per 100 addons a week: {rate['overall']:.2f} overall, "
            f"{rate['worst']:.2f} on the worst seed ({rate['worst_seed']})"
        )
    lines.append(f"  {'alert':<44}{'detected':>12}{'worst':>9}{'target':>9}  seed")
    for alert, entry in sorted(total["worst_detection"].items()):
        worst = entry["worst_seconds"]
        shown = "-" if worst is None else hours(worst)
        target = "-" if worst is None else hours(entry["target_seconds"])
        lines.append(
            f"  {alert:<44}{entry['detected']:>5} of {entry['incidents']:<4}{shown:>9}"
            f"{target:>9}  {entry['seed'] or '-'}"
        )
    lines.extend(f"MISSED: {line}" for line in total["missed_targets"])
    if not total["missed_targets"]:
        lines.append("every target met on every seed")
    lines.append(f"took {total['seconds']:.0f}s")
    return "\n".join(lines)
