"""How coverage's rounds go, per account: up, the last complete round, what the round under way
still needs, and the listings cut short. What each resource publishes is its unit's table."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter.families import counter_family, gauge_family, with_samples
from exporter.snapshot import CoverageSnapshot

Coverage = tuple[tuple[str, CoverageSnapshot], ...]  # (account name, its coverage)


def coverage_families(coverage: Coverage) -> Iterator[Metric]:
    """How the inventory went, per account."""
    up = gauge_family(
        "northflank_coverage_up",
        "1 when every read of the last coverage round succeeded (projects, addons, volumes, "
        "schedules, managed-storage backups), else 0. A round whose rest gave way to the next "
        "one is judged by the reads it made.",
    )
    last = gauge_family(
        "northflank_coverage_last_successful_inventory_timestamp_seconds",
        "When a coverage round last ended with every read it made successful.",
    )
    requests_left = gauge_family(
        "northflank_coverage_inventory_requests_left",
        "Requests the inventory round under way still needs, as far as it knows; between "
        "rounds, what the last one left to the next (0: nothing).",
    )
    seconds_left = gauge_family(
        "northflank_coverage_inventory_seconds_left",
        "How long the rest of the inventory round under way will take at the request budget "
        "(0: none is under way, or nothing waits).",
    )
    cut = counter_family(
        "northflank_coverage_listings_cut",
        "Listings cut short: past their size cap (10,000 items; 50 schedules an addon or "
        "volume) or as an endless walk. Each is a failed listing, with one log line.",
        ["listing"],
    )
    for account, covered in coverage:
        for listing, times in covered.listings_cut:
            cut.add_metric([account, listing], times)
        if covered.up is not None:
            up.add_metric([account], 1.0 if covered.up else 0.0)
        if covered.last_success is not None:
            last.add_metric([account], covered.last_success)
        requests_left.add_metric([account], covered.inventory_requests_left)
        seconds_left.add_metric([account], covered.inventory_seconds_left)
    yield from with_samples(up, last, requests_left, seconds_left, cut)
