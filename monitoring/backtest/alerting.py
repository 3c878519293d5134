"""When an alert fires, from the evaluations at which its expression held: `for:` and
`keep_firing_for:` applied as Prometheus applies them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from monitoring.backtest.rules import Rule

EVALUATION = 60.0  # the rule evaluation interval


@dataclass
class Firing:
    alert: str
    labels: dict[str, str]
    start: float  # when it fired (its condition held for `for:`)
    end: float


def firings(rule: Rule, steps: dict[tuple[tuple[str, str], ...], list[float]]) -> Iterator[Firing]:
    """Apply `for:` and `keep_firing_for:` as Prometheus does: an alert fires once its
    expression has held at every evaluation for `for:`, and stays firing while it holds. An
    evaluation where it does not hold resets a pending alert; a firing one keeps firing until
    `keep_firing_for` has passed since the first evaluation where it stopped holding, and goes
    on firing if it holds again by then. A firing's end is final only once every step of its
    series has been read."""
    for key, moments in steps.items():
        labels = dict(key)
        run_start = previous = -math.inf
        fired: Firing | None = None
        for moment in moments:
            gap = moment - previous > EVALUATION * 1.5
            if fired is not None and gap:
                if moment - previous < rule.keep + 2 * EVALUATION:
                    gap = False  # it kept firing through the gap
                else:
                    fired.end, fired = previous + rule.keep, None
            if gap:
                run_start = moment
            previous = moment
            if fired is None and moment - run_start >= rule.hold:
                fired = Firing(rule.name, labels, moment, moment)
                yield fired
            elif fired is not None:
                fired.end = moment
        if fired is not None:
            fired.end = previous + rule.keep
