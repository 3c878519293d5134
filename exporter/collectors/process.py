"""This exporter process's own series: its version, its shard, and its loops' failures."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from exporter import __version__
from exporter.shard import Shard


@dataclass(frozen=True)
class Reloads:
    """How the configuration was last loaded: at start, or by a reload (SIGHUP)."""

    successful: bool = True
    last_success: float | None = None  # when a configuration was last loaded


def process_families(
    shard: Shard, loop_failures: tuple[tuple[str, int], ...] = (), reloads: Reloads = Reloads()
) -> Iterator[Metric]:
    """This exporter process's own series: its version, its shard, its loops' failures (no
    account label: a loop's name says whose it is), and how its configuration last loaded."""
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
        "Rounds of a long-running loop (poll:ACCOUNT, coverage:ACCOUNT, managed_backups:ACCOUNT, "
        "volume_backups:ACCOUNT, restores:ACCOUNT, render) that raised an error, and reloads "
        "that raised while applying a file (reload); the loop goes on, and /-/healthy names a "
        "loop that stops making progress.",
        labels=["loop"],
    )
    for loop, number in loop_failures:
        failures.add_metric([loop], number)
    reloaded = GaugeMetricFamily(
        "northflank_exporter_config_last_reload_successful",
        "1 when the last reload (SIGHUP) applied the configuration file, 0 when it rejected it "
        "and kept the running one.",
        value=1.0 if reloads.successful else 0.0,
    )
    yield from (build, shard_ordinal, total_shards, failures, reloaded)
    if reloads.last_success is not None:
        yield GaugeMetricFamily(
            "northflank_exporter_config_last_reload_success_timestamp_seconds",
            "When a configuration was last loaded, at start or by a reload.",
            value=reloads.last_success,
        )
