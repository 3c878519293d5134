"""Renders the current snapshots as Prometheus metric families; does no I/O and no polling.

Each concern renders its own families (`exporter/collectors/`), and each resource unit its
table (`exporter/resources/`); every account-level family has the `account` label first, and
gets one set of samples per account. A table two resources share (the per-addon health of a
destination's and of managed storage's backups) is rendered once, with the rows of both.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.collectors.addon_health import ADDON_HEALTH
from exporter.collectors.coverage import Coverage, coverage_families
from exporter.collectors.destinations import (
    Accounts,
    addon_rows,
    destination_families,
    next_read_families,
    poll_families,
    request_families,
)
from exporter.collectors.process import Reloads, process_families
from exporter.families import Table
from exporter.logs import MIN_SECRET_LENGTH, scrub
from exporter.shard import Shard


@dataclass(frozen=True)
class Rendered:
    """What one rendering shows: each account's snapshot, and this exporter's shard."""

    accounts: Accounts = ()
    shard: Shard = field(default_factory=Shard)
    loop_failures: tuple[tuple[str, int], ...] = ()  # (loop, times a step of it failed)
    coverage: Coverage = ()  # the accounts whose inventory this exporter takes
    # The API tokens: a label value the API sent (a name, a type, a status) never shows one.
    secrets: tuple[str, ...] = ()
    reloads: Reloads = field(default_factory=Reloads)

    def ready(self) -> bool:
        return bool(self.accounts) and all(snapshot.ready for _, snapshot in self.accounts)


class SnapshotCollector(Collector):
    def __init__(
        self,
        rendered: Callable[[], Rendered],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rendered = rendered
        self._clock = clock

    def describe(self) -> list[Metric]:
        # Families differ between snapshots, so the registry must not pre-collect them.
        return []

    def collect(self) -> Iterator[Metric]:
        rendered = self._rendered()
        now = self._clock()
        families = itertools.chain(
            destination_families(rendered.accounts, now),
            table_families(rendered, now),
            coverage_families(rendered.coverage),
            poll_families(rendered.accounts),
            next_read_families(rendered.accounts),
            request_families(rendered.accounts),
            process_families(rendered.shard, rendered.loop_failures, rendered.reloads),
        )
        secrets = tuple(s for s in rendered.secrets if len(s) >= MIN_SECRET_LENGTH)
        for family in families:
            if secrets:
                _scrub_labels(family, secrets)
            yield family


def table_families(rendered: Rendered, now: float) -> Iterator[Metric]:
    """Every table's families: the per-addon health of the destinations' backups, then each
    resource unit's table with the rows of every account (a table shared by several units,
    or by a unit and the destinations, once)."""
    tables: dict[int, tuple[Table[Any], list[tuple[str, Any]]]] = {
        id(ADDON_HEALTH): (ADDON_HEALTH, list(addon_rows(rendered.accounts)))
    }
    for account, covered in rendered.coverage:
        for table, published in covered.published:
            _, gathered = tables.setdefault(id(table), (table, []))
            gathered.extend((account, row) for row in published)
    for table, rows in tables.values():
        yield from table.render(rows, now)


def _scrub_labels(family: Metric, secrets: tuple[str, ...]) -> None:
    """Every label value of the family without a token in it (as log lines are scrubbed)."""
    # One search of the family's label values joined, and a sample at a time only on a find:
    # a find is rare, and one search is cheaper than one a value (bench/README.md, "Speed choices").
    text = "\n".join("\n".join(sample.labels.values()) for sample in family.samples)
    if not any(secret in text for secret in secrets):
        return
    for number, sample in enumerate(family.samples):
        if any(secret in value for value in sample.labels.values() for secret in secrets):
            labels = {name: scrub(value, secrets) for name, value in sample.labels.items()}
            family.samples[number] = sample._replace(labels=labels)
