"""Renders the current snapshots as Prometheus metric families; does no I/O and no polling.

One function per group of families, each named for what it emits, builds those families with
their name, HELP and labels side by side; every account-level family has the `account` label
first, and gets one set of samples per account.
"""

from __future__ import annotations

import itertools
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
from exporter.addons import RECENT_SIZES, AddonSummary
from exporter.config import AddonRules
from exporter.inventory import MANAGED_STORAGE
from exporter.logs import MIN_SECRET_LENGTH, scrub
from exporter.schedule import (
    first_slot_at_or_after,
    last_slot,
    next_slot,
    overdue_seconds,
    week_offsets,
)
from exporter.shard import Shard
from exporter.snapshot import CoverageSnapshot, Snapshot

CACHED = "Cached from the last poll of the Northflank API."
ACCOUNT = "account"
Accounts = tuple[tuple[str, Snapshot], ...]  # (account name, its snapshot)
Coverage = tuple[tuple[str, CoverageSnapshot], ...]  # (account name, its coverage)


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=[ACCOUNT, *labels])


def _counter(name: str, documentation: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, labels=[ACCOUNT, *labels])


def _info(name: str, documentation: str, labels: Iterable[str] = ()) -> InfoMetricFamily:
    return InfoMetricFamily(name, documentation, labels=[ACCOUNT, *labels])


def _with_samples(*families: Metric) -> Iterator[Metric]:
    """Only the families that have samples: for values that exist only once the API said them."""
    return (family for family in families if family.samples)


@dataclass(frozen=True)
class Rendered:
    """What one rendering shows: each account's snapshot, and this exporter's shard."""

    accounts: Accounts = ()
    shard: Shard = field(default_factory=Shard)
    loop_failures: tuple[tuple[str, int], ...] = ()  # (loop, times a step of it failed)
    coverage: Coverage = ()  # the accounts whose inventory this exporter takes
    # The API tokens: a label value the API sent (a name, a type, a status) never shows one.
    secrets: tuple[str, ...] = ()

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
            addon_families(rendered.accounts, now, rendered.coverage),
            coverage_families(rendered.coverage, now),
            volume_families(rendered.coverage, now),
            poll_families(rendered.accounts),
            request_families(rendered.accounts),
            process_families(rendered.shard, rendered.loop_failures),
        )
        secrets = tuple(s for s in rendered.secrets if len(s) >= MIN_SECRET_LENGTH)
        for family in families:
            if secrets:
                _scrub_labels(family, secrets)
            yield family


def _scrub_labels(family: Metric, secrets: tuple[str, ...]) -> None:
    """Every label value of the family without a token in it (as log lines are scrubbed)."""
    # One search of the family's label values joined, and a sample at a time only on a find:
    # searched value by value, it took 0.73 s of 3.85 s of the alert backtest's rendering
    # (200 addons, 73 polls, cProfile); joined, 0.43 s.
    text = "\n".join("\n".join(sample.labels.values()) for sample in family.samples)
    if not any(secret in text for secret in secrets):
        return
    for number, sample in enumerate(family.samples):
        if any(secret in value for value in sample.labels.values() for secret in secrets):
            labels = {name: scrub(value, secrets) for name, value in sample.labels.items()}
            family.samples[number] = sample._replace(labels=labels)


def destination_families(accounts: Accounts, now: float) -> Iterator[Metric]:
    """What each destination holds: its backups by status, bytes, freshness and expiry."""
    info = _info(
        "northflank_backup_destination",
        "Backup destinations the exporter polls (value always 1).",
        ["destination"],
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
    expired = _gauge(
        "northflank_backups_expired_listed",
        "Backups the destination still lists whose expiredBy has passed, as of its last full "
        "read (every count above leaves them out).",
        ["destination"],
    )
    for account, snapshot in accounts:
        for state in snapshot.destinations:
            labels = [account, state.destination.id]
            info.add_metric(
                labels, {"name": state.destination.name, "usage": state.destination.usage}
            )
            summary = state.summary
            if summary is None:
                continue
            for status, number in summary.backups_by_status:
                count.add_metric([*labels, status], number)
            for status, total in summary.bytes_by_status:
                size.add_metric([*labels, status], total)
            if summary.last_completed is not None:
                last.add_metric(labels, summary.last_completed)
                age.add_metric(labels, max(now - summary.last_completed, 0.0))
            expiring.add_metric(labels, summary.expiring)
            if summary.next_expiry is not None:
                next_expiry.add_metric(labels, summary.next_expiry)
            expired.add_metric(labels, state.expired_listed)
    yield from (info, count, size, last, age, expiring, next_expiry, expired)


ADDON_LABELS = ("account", "destination", "project", "addon")
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
        summary.answered_until,
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
        "northflank_addon_backup_consecutive_failures",
        f"Failed or aborted backups created since the addon's newest completed one. {CACHED}",
        lambda s, now, rules: s.consecutive_failures,
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
    (
        "northflank_addon_backup_last_missed_slot_timestamp_seconds",
        "The newest schedule slot in the lookback with no backup of any status created near it; "
        f"absent when none. {CACHED}",
        lambda s, now, rules: s.last_missed_slot,
    ),
)


def _addon_rows(
    accounts: Accounts, coverage: Coverage
) -> Iterator[tuple[str, str, AddonSummary, AddonRules]]:
    """(account, destination, summary, rules) of every addon in every destination, then of
    every addon's backups in managed storage."""
    for account, snapshot in accounts:
        for state in snapshot.destinations:
            for summary in state.summary.addons if state.summary else ():
                yield account, state.destination.id, summary, snapshot.addon_rules
    for account, covered in coverage:
        for summary in covered.managed:
            yield account, MANAGED_STORAGE, summary, covered.rules


def addon_families(
    accounts: Accounts,
    now: float,
    coverage: Coverage = (),
) -> Iterator[Metric]:
    """Each addon's backups as one destination (or managed storage, destination
    "northflank-managed") lists them: health against its schedules."""
    labels = ADDON_LABELS[1:]
    info = _info("northflank_addon", "Addons whose backups are listed (always 1).", labels)
    counts = _gauge(
        "northflank_addon_backups", f"The addon's backups, by status. {CACHED}", [*labels, "status"]
    )
    schedules = _info(
        "northflank_addon_backup_schedule",
        "Backup schedules the addon's newest scheduled backup declares (always 1).",
        [*labels, "interval"],
    )
    gauges = [(_gauge(name, text, labels), value) for name, text, value in ADDON_GAUGES]
    for account, destination, summary, rules in _addon_rows(accounts, coverage):
        values = [account, destination, summary.project, summary.addon]
        info.add_metric(
            values,
            {
                "project_name": summary.project_name,
                "addon_name": summary.addon_name,
                "addon_type": summary.addon_type,
                "addon_version": summary.addon_version,
            },
        )
        for status, number in summary.backups_by_status:
            counts.add_metric([*values, status], number)
        for interval in sorted({schedule.interval for schedule in summary.schedules}):
            schedules.add_metric([*values, interval], {})
        for family, value in gauges:
            measured = value(summary, now, rules)
            if measured is not None:
                family.add_metric(values, measured)
    yield info
    yield counts
    yield schedules
    yield from (family for family, _ in gauges)


def coverage_families(coverage: Coverage, now: float) -> Iterator[Metric]:
    """What should be backed up: every addon and volume, the schedules each declares and where
    they send backups, and how the inventory went. Linear in addons, whatever their backups."""
    up = _gauge(
        "northflank_coverage_up",
        "1 when the last coverage round read every listing (projects, addons, volumes, "
        "schedules, managed-storage backups), else 0.",
    )
    last = _gauge(
        "northflank_coverage_last_successful_inventory_timestamp_seconds",
        "When the inventory last read every listing.",
    )
    requests_left = _gauge(
        "northflank_coverage_inventory_requests_left",
        "Requests the inventory round under way still needs, as far as it knows (0: none is "
        "under way).",
    )
    seconds_left = _gauge(
        "northflank_coverage_inventory_seconds_left",
        "How long the rest of the inventory round under way will take at the request budget "
        "(0: none is under way, or nothing waits).",
    )
    cut = _counter(
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
    yield from _with_samples(up, last, requests_left, seconds_left, cut)
    yield from _addon_coverage(coverage)
    yield from _volume_coverage(coverage)


SCHEDULE_INFO_LABELS = ("schedule", "interval", "backup_type", "destination", "role")


def _addon_coverage(coverage: Coverage) -> Iterator[Metric]:
    labels = ("project", "addon")
    info = _info(
        "northflank_coverage_addon",
        "Every addon of the account, with its type and status (always 1).",
        labels,
    )
    count = _gauge(
        "northflank_coverage_addon_backup_schedules",
        "Backup schedules the addon declares (0: nothing backs it up).",
        labels,
    )
    unprotected = _gauge(
        "northflank_coverage_addon_unprotected",
        "1 when the addon declares no backup schedule and is not paused, deleting or deleted.",
        labels,
    )
    schedule = _info(
        "northflank_coverage_addon_backup_schedule",
        "One series per backup schedule and place it sends backups to: a custom destination "
        f"id, or {MANAGED_STORAGE} (role primary), plus each additional destination a snapshot "
        "is copied to (role additional). Always 1.",
        [*labels, *SCHEDULE_INFO_LABELS],
    )
    first_slot = _gauge(
        "northflank_coverage_addon_backup_schedule_first_slot_timestamp_seconds",
        "The schedule's first slot after it was created: from then on its backups should arrive. "
        "Only for addons that get per-addon series (addons.*), which the alert on backups that "
        "never arrive joins with.",
        [*labels, "schedule"],
    )
    for account, covered in coverage:
        for entry in covered.addons:
            addon = entry.addon
            values = [account, addon.project, addon.id]
            info.add_metric(
                values,
                {
                    "project_name": addon.project_name,
                    "addon_name": addon.name,
                    "addon_type": addon.type,
                    "status": addon.status,
                },
            )
            if entry.schedules is None:
                continue
            count.add_metric(values, len(entry.schedules))
            unprotected.add_metric(values, 1.0 if entry.unprotected else 0.0)
            for declared in entry.schedules:
                for destination, role in declared.destinations:
                    schedule.add_metric(
                        [
                            *values,
                            declared.id,
                            declared.schedule.interval,
                            declared.backup_type,
                            destination,
                            role,
                        ],
                        {},
                    )
                if declared.created is not None and covered.rules.wants(addon.project, addon.id):
                    offsets = week_offsets((declared.schedule,))
                    first_slot.add_metric(
                        [*values, declared.id], first_slot_at_or_after(offsets, declared.created)
                    )
    yield from (info, count, unprotected, schedule, first_slot)


def _volume_coverage(coverage: Coverage) -> Iterator[Metric]:
    labels = ("project", "volume")
    info = _info(
        "northflank_coverage_volume",
        "Every volume of the account, with its status (always 1).",
        labels,
    )
    count = _gauge(
        "northflank_coverage_volume_backup_schedules",
        "Backup schedules the volume declares (0: nothing backs it up).",
        labels,
    )
    unprotected = _gauge(
        "northflank_coverage_volume_unprotected",
        "1 when the volume declares no backup schedule and is not being deleted.",
        labels,
    )
    schedule = _info(
        "northflank_coverage_volume_backup_schedule",
        "One series per backup schedule of the volume (named by its place in the volume's "
        f"list; its backups stay in {MANAGED_STORAGE}). Always 1.",
        [*labels, "schedule", "interval", "destination"],
    )
    for account, covered in coverage:
        for volume in covered.volumes:
            values = [account, volume.project, volume.id]
            info.add_metric(
                values,
                {
                    "project_name": volume.project_name,
                    "volume_name": volume.name,
                    "status": volume.status,
                },
            )
            if volume.schedules is None:
                continue  # unknown until its backup-schedules are read: never "none"
            count.add_metric(values, len(volume.schedules))
            unprotected.add_metric(values, 1.0 if volume.unprotected else 0.0)
            for declared in volume.schedules:
                schedule.add_metric(
                    [*values, declared.id, declared.schedule.interval, declared.destination], {}
                )
    yield from (info, count, unprotected, schedule)


def volume_families(coverage: Coverage, now: float) -> Iterator[Metric]:
    """Each scheduled volume's backups: counts by status, the newest one, and its health
    against its schedules, as the addon families say it of addons."""
    labels = ("project", "volume")
    counts = _gauge(
        "northflank_volume_backups",
        "The volume's backups listed, by status (free text in the API: lower case, `_` as "
        "`-`; past a dozen statuses the rest are `other`). Cached from the last read.",
        [*labels, "status"],
    )
    last = _gauge(
        "northflank_volume_backup_last_completed_timestamp_seconds",
        "createdAt of the volume's newest backup whose status says it completed (a volume "
        "backup has no completedAt).",
        labels,
    )
    age = _gauge(
        "northflank_volume_backup_last_completed_age_seconds",
        "Seconds since the createdAt of the volume's newest completed backup, as of the last "
        "rendering.",
        labels,
    )
    interval = _gauge(
        "northflank_volume_backup_expected_interval_seconds",
        "Longest gap between two consecutive slots of the volume's schedules.",
        labels,
    )
    overdue = _gauge(
        "northflank_volume_backup_overdue_seconds",
        "Seconds past the first schedule slot no completed backup answers, plus the grace; "
        "0 while on schedule.",
        labels,
    )
    missed = _gauge(
        "northflank_volume_backup_missed_slots",
        "Schedule slots in the lookback with no backup of any status created near them.",
        labels,
    )
    last_missed = _gauge(
        "northflank_volume_backup_last_missed_slot_timestamp_seconds",
        "The newest schedule slot in the lookback with no backup created near it; absent when "
        "none.",
        labels,
    )
    for account, covered in coverage:
        rules = covered.rules
        for summary in covered.volume_health:
            values = [account, summary.project, summary.volume]
            for status, number in summary.backups_by_status:
                counts.add_metric([*values, status], number)
            if summary.last_completed is not None:
                last.add_metric(values, summary.last_completed)
                age.add_metric(values, max(now - summary.last_completed, 0.0))
            if summary.expected_interval is not None:
                interval.add_metric(values, summary.expected_interval)
            overdue.add_metric(
                values,
                overdue_seconds(
                    summary.offsets,
                    summary.last_completed,
                    summary.oldest_created,
                    now=now,
                    tolerance=rules.tolerance,
                    grace=rules.grace,
                ),
            )
            if summary.missed_slots is not None:
                missed.add_metric(values, summary.missed_slots)
            if summary.last_missed_slot is not None:
                last_missed.add_metric(values, summary.last_missed_slot)
    yield from (counts, last, age, interval, overdue, missed, last_missed)


def poll_families(accounts: Accounts) -> Iterator[Metric]:
    """How each destination's polls went: up, when, how long, what was skipped, why they failed."""
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
    invalid = _counter(
        "northflank_exporter_invalid_backups",
        "Backups skipped because a field could not be read, over all polls.",
        ["destination"],
    )
    duplicates = _counter(
        "northflank_exporter_duplicate_backups",
        "Backups listed again under an id the same read had already counted (counted once), "
        "over all polls.",
        ["destination"],
    )
    discovery = _gauge(
        "northflank_exporter_discovery_up",
        "1 when the last listing of backup destinations succeeded.",
    )
    failures = _counter(
        "northflank_exporter_poll_failures",
        "Polls of the destination that failed, by reason: the HTTP status, or timeout, error "
        "(network), too_large, invalid_body, bad_cursor, oversized_page, too_many_pages, internal.",
        ["destination", "reason"],
    )
    for account, snapshot in accounts:
        current = {state.destination.id for state in snapshot.destinations}
        for state in snapshot.destinations:
            labels = [account, state.destination.id]
            if state.polled:
                up.add_metric(labels, 1.0 if state.up else 0.0)
                if state.last_duration is not None:
                    duration.add_metric(labels, state.last_duration)
            if state.last_success is not None:
                last_success.add_metric(labels, state.last_success)
            invalid.add_metric(labels, state.invalid_total)
            duplicates.add_metric(labels, state.duplicates_total)
        if snapshot.discovery_up is not None:
            discovery.add_metric([account], 1.0 if snapshot.discovery_up else 0.0)
        for (ident, reason), number in snapshot.poll_failures:
            if ident in current:
                failures.add_metric([account, ident, reason], number)
    yield from (up, last_success, duration, invalid, duplicates)
    yield from _with_samples(discovery)
    yield failures


def request_families(accounts: Accounts) -> Iterator[Metric]:
    """How the API rate limit is spent: requests made, what the API says is left, our budget,
    the time requests waited for it, and what each destination's polls cost."""
    requests = _counter(
        "northflank_exporter_api_requests",
        "Requests made to the Northflank API, by endpoint and HTTP status (or timeout, error).",
        ["endpoint", "code"],
    )
    remaining = _gauge(
        "northflank_exporter_rate_limit_remaining",
        "The lowest x-ratelimit-remaining the API reported in its current rate-limit window.",
    )
    budget = _gauge(
        "northflank_exporter_rate_limit_budget_requests_per_hour",
        "Requests an hour the exporter allows itself (rate_limit.requests_per_hour).",
    )
    reset = _gauge(
        "northflank_exporter_rate_limit_reset_timestamp_seconds",
        "When the API's current rate-limit window resets (x-ratelimit-reset).",
    )
    throttled = _counter(
        "northflank_exporter_throttled_seconds",
        "Time requests waited for the budget, the reserve or a 429 to allow them.",
    )
    budget_remaining = _gauge(
        "northflank_exporter_rate_limit_budget_remaining_requests",
        "Requests the budget still allows in the current rolling hour.",
    )
    cycle_left = _gauge(
        "northflank_exporter_poll_cycle_remaining_seconds",
        "Estimated seconds until the poll cycle under way completes; 0 when idle.",
    )
    for account, snapshot in accounts:
        for (endpoint, code), number in snapshot.api_requests:
            requests.add_metric([account, endpoint, code], number)
        if snapshot.rate_limit_remaining is not None:
            remaining.add_metric([account], snapshot.rate_limit_remaining)
        if snapshot.budget_per_hour is not None:
            budget.add_metric([account], snapshot.budget_per_hour)
        if snapshot.rate_limit_reset_at is not None:
            reset.add_metric([account], snapshot.rate_limit_reset_at)
        throttled.add_metric([account], snapshot.throttled_seconds)
        if snapshot.budget_remaining is not None:
            budget_remaining.add_metric([account], snapshot.budget_remaining)
        cycle_left.add_metric([account], snapshot.cycle_seconds_left)
    yield requests
    yield from _with_samples(remaining, budget, reset)
    yield throttled
    yield from _with_samples(budget_remaining)
    yield cycle_left
    yield from destination_cost_families(accounts)


def destination_cost_families(accounts: Accounts) -> Iterator[Metric]:
    """What each destination's polls cost: how often they run, pages read, full re-reads."""
    interval = _gauge(
        "northflank_exporter_poll_interval_effective_seconds",
        "Time between polls, stretched beyond poll.interval when the budget requires it.",
        ["destination"],
    )
    pages = _counter(
        "northflank_exporter_pages_fetched",
        "Pages of backups read, by sync mode (full or incremental).",
        ["destination", "mode"],
    )
    resyncs = _counter(
        "northflank_exporter_full_resyncs",
        "Full reads that replaced incremental ones, by reason (scheduled, order, vanished, "
        "count, duplicate, fallback).",
        ["destination", "reason"],
    )
    for account, snapshot in accounts:
        current = {state.destination.id for state in snapshot.destinations}
        fetched = dict(snapshot.pages_fetched)
        for state in snapshot.destinations:
            ident = state.destination.id
            labels = [account, ident]
            if snapshot.effective_interval is not None:
                interval.add_metric(labels, snapshot.effective_interval)
            for mode in ("full", "incremental"):
                pages.add_metric([*labels, mode], fetched.get((ident, mode), 0))
        for (ident, reason), number in snapshot.full_resyncs:
            if ident in current:
                resyncs.add_metric([account, ident, reason], number)
    yield from (interval, pages, resyncs)


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
