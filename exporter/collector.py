"""Renders the current Snapshot as Prometheus metric families; does no I/O and no polling."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.snapshot import DestinationState, Snapshot

CACHED = "Cached from the last poll of the Northflank API."


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class SnapshotCollector(Collector):
    def __init__(
        self, snapshot: Callable[[], Snapshot], clock: Callable[[], float] = time.time
    ) -> None:
        self._snapshot = snapshot
        self._clock = clock

    def describe(self) -> list[Metric]:
        # Families differ between snapshots, so the registry must not pre-collect them.
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        now = self._clock()
        yield from self._backup_families(snapshot.destinations, now)
        yield from self._health_families(snapshot)
        yield from self._exporter_families(snapshot)

    @staticmethod
    def _backup_families(states: tuple[DestinationState, ...], now: float) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "northflank_backup_destination",
            "Backup destinations the exporter polls (value always 1).",
            labels=["destination"],
        )
        count = _gauge(
            "northflank_backups", f"Backups listed, by status. {CACHED}", ["destination", "status"]
        )
        size = _gauge(
            "northflank_backup_size_bytes",
            f"Sum of the sizes of the backups listed, by status. {CACHED}",
            ["destination", "status"],
        )
        last = _gauge(
            "northflank_backup_last_completed_timestamp_seconds",
            f"When the newest completed backup completed. {CACHED}",
            ["destination"],
        )
        age = _gauge(
            "northflank_backup_last_completed_age_seconds",
            "Seconds since the newest completed backup completed, at scrape time.",
            ["destination"],
        )
        expiring = _gauge(
            "northflank_backups_expiring",
            f"Backups not yet expired that expire within the warning window. {CACHED}",
            ["destination"],
        )
        next_expiry = _gauge(
            "northflank_backup_next_expiry_timestamp_seconds",
            f"When the next backup that has not yet expired expires. {CACHED}",
            ["destination"],
        )
        for state in states:
            ident = state.destination.id
            info.add_metric(
                [ident], {"name": state.destination.name, "usage": state.destination.usage}
            )
            summary = state.summary
            if summary is None:
                continue
            for status, number in summary.backups_by_status:
                count.add_metric([ident, status], number)
            for status, total in summary.bytes_by_status:
                size.add_metric([ident, status], total)
            if summary.last_completed is not None:
                last.add_metric([ident], summary.last_completed)
                age.add_metric([ident], max(now - summary.last_completed, 0.0))
            expiring.add_metric([ident], summary.expiring)
            if summary.next_expiry is not None:
                next_expiry.add_metric([ident], summary.next_expiry)
        yield from (info, count, size, last, age, expiring, next_expiry)

    @staticmethod
    def _health_families(snapshot: Snapshot) -> Iterator[Metric]:
        up = _gauge(
            "northflank_up",
            "1 when the last poll of the destination read every page, else 0.",
            ["destination"],
        )
        last_success = _gauge(
            "northflank_exporter_last_successful_poll_timestamp_seconds",
            "When the destination was last polled successfully.",
            ["destination"],
        )
        duration = _gauge(
            "northflank_exporter_poll_duration_seconds",
            "How long the last poll of the destination took.",
            ["destination"],
        )
        invalid = CounterMetricFamily(
            "northflank_exporter_invalid_backups",
            "Backups skipped because a field could not be read, over all polls.",
            labels=["destination"],
        )
        for state in snapshot.destinations:
            ident = state.destination.id
            if state.polled:
                up.add_metric([ident], 1.0 if state.up else 0.0)
                if state.last_duration is not None:
                    duration.add_metric([ident], state.last_duration)
            if state.last_success is not None:
                last_success.add_metric([ident], state.last_success)
            invalid.add_metric([ident], state.invalid_total)
        yield from (up, last_success, duration, invalid)

    @staticmethod
    def _exporter_families(snapshot: Snapshot) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "northflank_exporter_api_requests",
            "Requests made to the Northflank API, by endpoint and HTTP status (or timeout, error).",
            labels=["endpoint", "code"],
        )
        for (endpoint, code), number in snapshot.api_requests:
            requests.add_metric([endpoint, code], number)
        yield requests
        if snapshot.rate_limit_remaining is not None:
            remaining = _gauge(
                "northflank_exporter_rate_limit_remaining",
                "x-ratelimit-remaining from the last API response.",
            )
            remaining.add_metric([], snapshot.rate_limit_remaining)
            yield remaining
        if snapshot.discovery_up is not None:
            discovery = _gauge(
                "northflank_exporter_discovery_up",
                "1 when the last listing of backup destinations succeeded.",
            )
            discovery.add_metric([], 1.0 if snapshot.discovery_up else 0.0)
            yield discovery
        build = InfoMetricFamily("northflank_exporter_build", "Version of the exporter.")
        build.add_metric([], {"version": __version__, "python_version": platform.python_version()})
        yield build
