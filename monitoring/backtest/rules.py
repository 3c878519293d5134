"""The alert rules as the backtest reads them from monitoring/alerts.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parent.parent / "alerts.yaml"


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    hold: float  # for:
    severity: str
    keep: float = 0.0  # keep_firing_for:


def load_rules(path: Path = RULES) -> list[Rule]:
    rules = []
    for rule in yaml.safe_load(path.read_text())["groups"][0]["rules"]:
        rules.append(
            Rule(
                rule["alert"],
                rule["expr"],
                seconds(rule.get("for", "0s")),
                rule["labels"]["severity"],
                seconds(rule.get("keep_firing_for", "0s")),
            )
        )
    return rules


def seconds(text: str) -> float:
    """A Prometheus duration ("1h30m") in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


# An instant selector of one of our series, with its label matchers, not followed by a range.
_INSTANT = re.compile(r"\b(northflank_[a-z0-9_]+)(\{[^}]*\})?(?![\w{])(?!\s*\[)")


def stale_free(expr: str) -> str:
    """The expression with every instant selector of our series read as `(selector > -Inf)`,
    which drops NaN samples: a series that vanished (a NaN sample, see replay.History) is then
    absent at once, for `unless` and `count` too, as a live staleness marker makes it. The
    exporter never publishes NaN, so nothing else is dropped; range selectors are left as they
    are."""
    return _INSTANT.sub(r"(\1\2 > -Inf)", expr)


def rule_metrics(rules: list[Rule]) -> frozenset[str]:
    """Every series name of ours that some rule reads."""
    return frozenset(
        name for rule in rules for name in re.findall(r"\bnorthflank_[a-z0-9_]+", rule.expr)
    )
