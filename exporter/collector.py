"""Renders the current Snapshot as Prometheus metric families; does no I/O and no polling."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.addons import RECENT_SIZES, AddonRules, AddonSummary
from exporter.schedule import last_slot, next_slot, overdue_seconds
from exporter.shard import Shard
from exporter.snapshot import DestinationState, Snapshot

CACHED = "Cached from the last poll of the Northflank API."


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


@dataclass(frozen=True)
class Rendered:
    """What one rendering shows: each account's snapshot, and this exporter's shard."""

    accounts: tuple[tuple[str, Snapshot], ...] = ()
    shard: Shard = field(default_factory=Shard)

    def ready(self) -> bool:
        return bool(self.accounts) and all(snapshot.ready for _, snapshot in self.accounts)


class SnapshotCollector(Collector):
    def __init__(
        self, rendered: Callable[[], Rendered], clock: Callable[[], float] = time.time
    ) -> None:
        self._rendered = rendered
        self._clock = clock

    def describe(self) -> list[Metric]:
        # Families differ between snapshots, so the registry must not pre-collect them.
        return []

    def collect(self) -> Iterator[Metric]:
        rendered = self._rendered()
        now = self._clock()
        families: dict[str, Metric] = {}
        for account, snapshot in rendered.accounts:
            for family in self._account_families(snapshot, now):
                _label_samples(family, "account", account)
                if family.name in families:
                    families[family.name].samples.extend(family.samples)
                else:
                    families[family.name] = family
        yield from families.values()
        yield from _process_families(rendered.shard)

    def _account_families(self, snapshot: Snapshot, now: float) -> Iterator[Metric]:
        yield from self._backup_families(snapshot.destinations, now)
        yield from addon_families(snapshot.destinations, now, snapshot.addon_rules)
        yield from self._health_families(snapshot)
        yield from self._exporter_families(snapshot)
        yield from budget_families(snapshot)

    @staticmethod
    def _backup_families(states: tuple[DestinationState, ...], now: float) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "northflank_backup_destination",
            "Backup destinations the exporter polls (value always 1).",
            labels=["destination"],
        )
        count = _gauge(
            "northflank_backups",
            f"Backups listed and not yet expired, by status. {CACHED}",
            ["destination", "status"],
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
            "Seconds since the newest completed backup completed, as of the last rendering "
            "(every poll).",
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


def _label_samples(family: Metric, name: str, value: str) -> None:
    """Put `name="value"` first on every sample of the family."""
    family.samples = [
        sample._replace(labels={name: value, **sample.labels}) for sample in family.samples
    ]


def _process_families(shard: Shard) -> Iterator[Metric]:
    """This exporter process's own series: its version and its shard (no account label)."""
    build = InfoMetricFamily("northflank_exporter_build", "Version of the exporter.")
    build.add_metric([], {"version": __version__, "python_version": platform.python_version()})
    yield build
    yield from _single(
        "northflank_exporter_shard_ordinal",
        "Which shard this exporter is (--shard); 0 when unsharded.",
        shard.ordinal,
    )
    yield from _single(
        "northflank_exporter_total_shards",
        "How many shards share the destinations (--total-shards); 1 when unsharded.",
        shard.total,
    )


ADDON_LABELS = ("destination", "project", "addon")
AddonValue = Callable[[AddonSummary, float, AddonRules], float | None]


def _age(moment: float | None, now: float) -> float | None:
    return None if moment is None else max(now - moment, 0.0)


def _last_scheduled(summary: AddonSummary, now: float) -> float | None:
    return last_slot(summary.offsets, now) if summary.offsets else None


def _next_scheduled(summary: AddonSummary, now: float) -> float | None:
    return next_slot(summary.offsets, now) if summary.offsets else None


def _overdue(summary: AddonSummary, now: float, rules: AddonRules) -> float | None:
    if not summary.offsets:
        return None
    return overdue_seconds(
        summary.offsets,
        summary.newest_completed_created,
        summary.oldest_created,
        now=now,
        tolerance=rules.tolerance,
        grace=rules.grace,
    )


# (name, help, value); a value of None means no series for that addon.
ADDON_GAUGES: tuple[tuple[str, str, AddonValue], ...] = (
    (
        "northflank_addon_backup_last_completed_timestamp_seconds",
        f"When the addon's newest completed backup completed. {CACHED}",
        lambda s, now, rules: s.last_completed,
    ),
    (
        "northflank_addon_backup_last_completed_age_seconds",
        "Seconds since the addon's newest completed backup completed, as of the last "
        "rendering (every poll).",
        lambda s, now, rules: _age(s.last_completed, now),
    ),
    (
        "northflank_addon_backup_last_completed_size_bytes",
        f"Size of the addon's newest completed backup. {CACHED}",
        lambda s, now, rules: s.last_completed_size,
    ),
    (
        "northflank_addon_backup_completed_size_median_bytes",
        f"Median size of the addon's {RECENT_SIZES} newest completed backups. {CACHED}",
        lambda s, now, rules: s.recent_size_median,
    ),
    (
        "northflank_addon_backup_last_completed_duration_seconds",
        f"completedAt minus createdAt of the addon's newest completed backup. {CACHED}",
        lambda s, now, rules: s.last_completed_duration,
    ),
    (
        "northflank_addon_backup_last_failure_timestamp_seconds",
        f"When the addon's newest failed or aborted backup ended (or began). {CACHED}",
        lambda s, now, rules: s.last_failure,
    ),
    (
        "northflank_addon_backup_running_age_seconds",
        "Age of the addon's oldest backup still scheduled, in progress or aborting, "
        "as of the last rendering (every poll).",
        lambda s, now, rules: _age(s.oldest_running_created, now),
    ),
    (
        "northflank_addon_backup_never_completed",
        f"1 when the addon has backups but none of them completed. {CACHED}",
        lambda s, now, rules: 1.0 if s.never_completed else 0.0,
    ),
    (
        "northflank_addon_backup_restorable_until_timestamp_seconds",
        f"Latest expiredBy among the addon's completed backups. {CACHED}",
        lambda s, now, rules: s.restorable_until,
    ),
    (
        "northflank_addon_backups_expiring",
        f"The addon's backups not yet expired that expire within the warning window. {CACHED}",
        lambda s, now, rules: s.expiring,
    ),
    (
        "northflank_addon_backup_expected_interval_seconds",
        f"Longest gap between two consecutive slots of the addon's schedules. {CACHED}",
        lambda s, now, rules: s.expected_interval,
    ),
    (
        "northflank_addon_backup_last_scheduled_timestamp_seconds",
        "The latest schedule slot at or before the last rendering (every poll).",
        lambda s, now, rules: _last_scheduled(s, now),
    ),
    (
        "northflank_addon_backup_next_scheduled_timestamp_seconds",
        "The first schedule slot after the last rendering (every poll).",
        lambda s, now, rules: _next_scheduled(s, now),
    ),
    (
        "northflank_addon_backup_overdue_seconds",
        "Seconds past the first schedule slot no completed backup answers, plus the grace; "
        "0 while on schedule.",
        _overdue,
    ),
    (
        "northflank_addon_backup_missed_slots",
        f"Schedule slots in the lookback with no backup of any status created near them. {CACHED}",
        lambda s, now, rules: s.missed_slots,
    ),
)


def addon_families(
    states: tuple[DestinationState, ...], now: float, rules: AddonRules
) -> Iterator[Metric]:
    info = InfoMetricFamily(
        "northflank_addon", "Addons whose backups are listed (always 1).", labels=list(ADDON_LABELS)
    )
    counts = _gauge(
        "northflank_addon_backups",
        f"The addon's backups, by status. {CACHED}",
        [*ADDON_LABELS, "status"],
    )
    schedules = InfoMetricFamily(
        "northflank_addon_backup_schedule",
        "Backup schedules the addon's newest scheduled backup declares (always 1).",
        labels=[*ADDON_LABELS, "interval"],
    )
    gauges = [(_gauge(name, text, ADDON_LABELS), value) for name, text, value in ADDON_GAUGES]
    for state in states:
        for summary in state.summary.addons if state.summary else ():
            labels = [state.destination.id, summary.project, summary.addon]
            info.add_metric(
                labels,
                {
                    "project_name": summary.project_name,
                    "addon_name": summary.addon_name,
                    "addon_type": summary.addon_type,
                    "addon_version": summary.addon_version,
                },
            )
            for status, number in summary.backups_by_status:
                counts.add_metric([*labels, status], number)
            for interval in sorted({schedule.interval for schedule in summary.schedules}):
                schedules.add_metric([*labels, interval], {})
            for family, value in gauges:
                measured = value(summary, now, rules)
                if measured is not None:
                    family.add_metric(labels, measured)
    yield info
    yield counts
    yield schedules
    yield from (family for family, _ in gauges)


def _single(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        family = _gauge(name, documentation)
        family.add_metric([], value)
        yield family


def budget_families(snapshot: Snapshot) -> Iterator[Metric]:
    """How the API rate limit is spent: the budget, the pauses, and how each poll read."""
    yield from _single(
        "northflank_exporter_rate_limit_budget_requests_per_hour",
        "Requests an hour the exporter allows itself (rate_limit.requests_per_hour).",
        snapshot.budget_per_hour,
    )
    yield from _single(
        "northflank_exporter_rate_limit_reset_timestamp_seconds",
        "When the API's current rate-limit window resets (x-ratelimit-reset).",
        snapshot.rate_limit_reset_at,
    )
    throttled = CounterMetricFamily(
        "northflank_exporter_throttled_seconds",
        "Time requests waited for the budget, the reserve or a 429 to allow them.",
    )
    throttled.add_metric([], snapshot.throttled_seconds)
    yield throttled
    destinations = [state.destination.id for state in snapshot.destinations]
    interval = _gauge(
        "northflank_exporter_poll_interval_effective_seconds",
        "Time between polls, stretched beyond poll.interval when the budget requires it.",
        ["destination"],
    )
    if snapshot.effective_interval is not None:
        for ident in destinations:
            interval.add_metric([ident], snapshot.effective_interval)
    yield interval
    pages = CounterMetricFamily(
        "northflank_exporter_pages_fetched",
        "Pages of backups read, by sync mode (full or incremental).",
        labels=["destination", "mode"],
    )
    fetched = dict(snapshot.pages_fetched)
    for ident in destinations:
        for mode in ("full", "incremental"):
            pages.add_metric([ident, mode], fetched.get((ident, mode), 0))
    yield pages
    resyncs = CounterMetricFamily(
        "northflank_exporter_full_resyncs",
        "Full reads that replaced incremental ones, by reason (scheduled, order, vanished, "
        "count, fallback).",
        labels=["destination", "reason"],
    )
    current = set(destinations)
    for (ident, reason), number in snapshot.full_resyncs:
        if ident in current:
            resyncs.add_metric([ident, reason], number)
    yield resyncs
    failures = CounterMetricFamily(
        "northflank_exporter_poll_failures",
        "Polls of the destination that failed, by reason: the HTTP status, or timeout, error "
        "(network), invalid_body, bad_cursor, oversized_page, too_many_pages, internal.",
        labels=["destination", "reason"],
    )
    for (ident, reason), number in snapshot.poll_failures:
        if ident in current:
            failures.add_metric([ident, reason], number)
    yield failures
