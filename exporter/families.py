"""Metric families from tables, as kube-state-metrics builds them: each resource declares its
families once (name, HELP, labels, and a function from one row to its samples), and `Table`
turns the rows of every account into families. Nothing here knows any resource.

Every family carries the `account` label first, then the table's labels, then the family's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

ACCOUNT = "account"
CACHED = "Cached from the last poll of the Northflank API."

Row = TypeVar("Row")
# The label values a row adds to the table's, and the value: a number, or an info's labels.
Sample = tuple[tuple[str, ...], "float | Mapping[str, str]"]


class Kind(Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"


def gauge_family(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=[ACCOUNT, *labels])


def counter_family(
    name: str, documentation: str, labels: Iterable[str] = ()
) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, labels=[ACCOUNT, *labels])


def info_family(name: str, documentation: str, labels: Iterable[str] = ()) -> InfoMetricFamily:
    return InfoMetricFamily(name, documentation, labels=[ACCOUNT, *labels])


def age(moment: float | None, now: float) -> float | None:
    """Seconds since `moment`, as of `now` (never negative); None when there is no moment."""
    return None if moment is None else max(now - moment, 0.0)


def with_samples(*families: Metric) -> Iterator[Metric]:
    """Only the families that have samples: for values that exist only once the API said them."""
    return (family for family in families if family.samples)


@dataclass(frozen=True)
class Family(Generic[Row]):
    """One metric family of a table: `value` gives a row's one sample (None: no series), or
    `samples` gives its samples, each with the label values it adds."""

    name: str
    documentation: str
    samples: Callable[[Row, float], Iterable[Sample]] | None = None
    kind: Kind = Kind.GAUGE
    labels: tuple[str, ...] = ()  # the family's own labels, after the table's
    value: Callable[[Row, float], float | None] | None = None

    def empty(self, table_labels: tuple[str, ...]) -> Metric:
        labels = (*table_labels, *self.labels)
        if self.kind is Kind.INFO:
            return info_family(self.name, self.documentation, labels)
        if self.kind is Kind.COUNTER:
            return counter_family(self.name, self.documentation, labels)
        return gauge_family(self.name, self.documentation, labels)


def gauge(
    name: str, documentation: str, value: Callable[[Row, float], float | None]
) -> Family[Row]:
    """One sample a row, of `value(row, now)`; None: no series for that row."""
    return Family(name, documentation, value=value)


def by_label(
    name: str, documentation: str, label: str, values: Callable[[Row], Iterable[tuple[str, float]]]
) -> Family[Row]:
    """One sample per (label value, number) a row gives: counts by status, say."""

    def samples(row: Row, now: float) -> Iterator[Sample]:
        for value, number in values(row):
            yield (value,), number

    return Family(name, documentation, samples, labels=(label,))


def info(name: str, documentation: str, labels: Callable[[Row], Mapping[str, str]]) -> Family[Row]:
    """An `_info` family: one series a row, its labels from the row, always 1."""

    def samples(row: Row, now: float) -> Iterator[Sample]:
        yield (), labels(row)

    return Family(name, documentation, samples, kind=Kind.INFO)


@dataclass(frozen=True)
class Table(Generic[Row]):
    """The families of one kind of row: the labels that name a row, and what it publishes."""

    labels: tuple[str, ...]
    key: Callable[[Row], tuple[str, ...]]  # a row's values of `labels`
    families: tuple[Family[Row], ...]

    def render(self, rows: Iterable[tuple[str, Row]], now: float) -> Iterator[Metric]:
        """Every family, with the samples of each (account, row); a family without samples
        is still declared. A one-value family adds its sample directly: rendering is every
        poll's, for every addon (bench/README.md, "Speed choices")."""
        built = [family.empty(self.labels) for family in self.families]
        adds = [
            (family.value, family.samples, _adder(metric))
            for family, metric in zip(self.families, built, strict=True)
        ]
        for account, row in rows:
            named = [account, *self.key(row)]
            for value, samples, add in adds:
                if value is not None:
                    measured = value(row, now)
                    if measured is not None:
                        add(named, measured)
                elif samples is not None:
                    for extra, sampled in samples(row, now):
                        add([*named, *extra], sampled)
        yield from built


def _adder(metric: Metric) -> Callable[..., None]:
    """The family's own add_metric: (label values, a number, or an info's labels)."""
    if isinstance(metric, InfoMetricFamily | GaugeMetricFamily | CounterMetricFamily):
        return metric.add_metric
    raise TypeError(f"{metric.name}: not a family a table renders")
