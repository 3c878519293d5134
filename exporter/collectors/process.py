"""This exporter process's own series: its version, its shard, and its loops' failures."""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from exporter import __version__
from exporter.shard import Shard


def process_families(
    shard: Shard, loop_failures: tuple[tuple[str, int], ...] = ()
) -> Iterator[Metric]:
    """This exporter process's own series: its version, its shard, and its loops' failures
    (no account label: a loop's name says whose it is)."""
    build = InfoMetricFamily("northflank_exporter_build", "Version of the exporter.")
    build.add_metric([], {"version": __version__, "python_version": platform.python_version()})
    shard_ordinal = GaugeMetricFamily(
        "northflank_exporter_shard_ordinal",
        "Which shard this exporter is (--shard); 0 when unsharded.",
        value=shard.ordinal,
    )
    total_shards = GaugeMetricFamily(
        "northflank_exporter_total_shards",
        "How many shards share the destinations (--total-shards); 1 when unsharded.",
        value=shard.total,
    )
    failures = CounterMetricFamily(
        "northflank_exporter_loop_failures",
        "Rounds of a long-running loop (poll:ACCOUNT, coverage:ACCOUNT, render, reload) that "
        "raised an error; the loop goes on, and /-/healthy names a loop that stops making "
        "progress.",
        labels=["loop"],
    )
    for loop, number in loop_failures:
        failures.add_metric([loop], number)
    yield from (build, shard_ordinal, total_shards, failures)
