"""What each destination holds and how its polls go: its backups by status, bytes, freshness and
expiry; up, when, how long, what was skipped; and what the API rate limit costs each account.
The per-addon rows a destination's backups give are rendered by `addon_health.ADDON_HEALTH`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from exporter.aggregate import DestinationSummary
from exporter.collectors.addon_health import AddonRow
from exporter.families import (
    CACHED,
    Table,
    age,
    by_label,
    counter_family,
    gauge,
    gauge_family,
    info,
    with_samples,
)
from exporter.snapshot import DestinationState, Snapshot

Accounts = tuple[tuple[str, Snapshot], ...]  # (account name, its snapshot)


def addon_rows(accounts: Accounts) -> Iterator[tuple[str, AddonRow]]:
    """(account, row) of every addon in every destination."""
    for account, snapshot in accounts:
        for state in snapshot.destinations:
            for summary in state.summary.addons if state.summary else ():
                yield account, AddonRow(state.destination.id, summary, snapshot.addon_rules)


def _held(
    value: Callable[[DestinationSummary], float | None],
) -> Callable[[DestinationState, float], float | None]:
    """A value of the destination's summary; no series before its first good read."""
    return lambda state, now: None if state.summary is None else value(state.summary)


DESTINATION: Table[DestinationState] = Table(
    labels=("destination",),
    key=lambda state: (state.destination.id,),
    families=(
        info(
            "northflank_backup_destination",
            "Backup destinations the exporter polls (value always 1).",
            lambda state: {"name": state.destination.name, "usage": state.destination.usage},
        ),
        by_label(
            "northflank_backups",
            f"Backups listed and not yet expired, by status. {CACHED}",
            "status",
            lambda state: state.summary.backups_by_status if state.summary else (),
        ),
        by_label(
            "northflank_backup_size_bytes",
            f"Sum of the sizes of the backups listed, by status. {CACHED}",
            "status",
            lambda state: state.summary.bytes_by_status if state.summary else (),
        ),
        gauge(
            "northflank_backup_last_completed_timestamp_seconds",
            f"When the newest completed backup completed. {CACHED}",
            _held(lambda summary: summary.last_completed),
        ),
        gauge(
            "northflank_backup_last_completed_age_seconds",
            "Seconds since the newest completed backup completed, as of the last rendering "
            "(every poll).",
            lambda state, now: age(state.summary.last_completed, now) if state.summary else None,
        ),
        gauge(
            "northflank_backups_expiring",
            f"Backups not yet expired that expire within the warning window. {CACHED}",
            _held(lambda summary: summary.expiring),
        ),
        gauge(
            "northflank_backup_next_expiry_timestamp_seconds",
            f"When the next backup that has not yet expired expires. {CACHED}",
            _held(lambda summary: summary.next_expiry),
        ),
        gauge(
            "northflank_backups_expired_listed",
            "Backups the destination still lists whose expiredBy has passed, as of its last "
            "full read (every count above leaves them out).",
            lambda state, now: None if state.summary is None else state.expired_listed,
        ),
    ),
)


def destination_families(accounts: Accounts, now: float) -> Iterator[Metric]:
    """What each destination holds: its backups by status, bytes, freshness and expiry."""
    rows = [(account, state) for account, snapshot in accounts for state in snapshot.destinations]
    return DESTINATION.render(rows, now)


def poll_families(accounts: Accounts) -> Iterator[Metric]:
    """How each destination's polls went: up, when, how long, what was skipped, why they failed."""
    up = gauge_family(
        "northflank_up",
        "1 when the last poll of the destination read every page, else 0.",
        ["destination"],
    )
    last_success = gauge_family(
        "northflank_exporter_last_successful_poll_timestamp_seconds",
        "When the destination was last polled successfully.",
        ["destination"],
    )
    duration = gauge_family(
        "northflank_exporter_poll_duration_seconds",
        "How long the last poll of the destination took.",
        ["destination"],
    )
    invalid = counter_family(
        "northflank_exporter_invalid_backups",
        "Backups skipped because a field could not be read, over all polls.",
        ["destination"],
    )
    duplicates = counter_family(
        "northflank_exporter_duplicate_backups",
        "Backups listed again under an id the same read had already counted (counted once), "
        "over all polls.",
        ["destination"],
    )
    discovery = gauge_family(
        "northflank_exporter_discovery_up",
        "1 when the last listing of backup destinations succeeded.",
    )
    failures = counter_family(
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
    yield from with_samples(discovery)
    yield failures


def next_read_families(accounts: Accounts) -> Iterator[Metric]:
    """When each destination is read next (poll_schedule.py)."""
    next_read = gauge_family(
        "northflank_exporter_next_poll_timestamp_seconds",
        "When the destination is read next: after its addons' schedule slots plus their usual "
        "run time, every poll interval while a backup runs, at least every 30 minutes "
        "(poll.around_slots); every poll interval otherwise.",
        ["destination"],
    )
    for account, snapshot in accounts:
        for state in snapshot.destinations:
            if state.next_read is not None and state.polled:
                next_read.add_metric([account, state.destination.id], state.next_read)
    yield from with_samples(next_read)


def request_families(accounts: Accounts) -> Iterator[Metric]:
    """How the API rate limit is spent: requests made, what the API says is left, our budget,
    the time requests waited for it, and what each destination's polls cost."""
    requests = counter_family(
        "northflank_exporter_api_requests",
        "Requests made to the Northflank API, by endpoint and HTTP status (or timeout, error).",
        ["endpoint", "code"],
    )
    remaining = gauge_family(
        "northflank_exporter_rate_limit_remaining",
        "The lowest x-ratelimit-remaining the API reported in its current rate-limit window.",
    )
    budget = gauge_family(
        "northflank_exporter_rate_limit_budget_requests_per_hour",
        "Requests an hour the exporter allows itself (rate_limit.requests_per_hour).",
    )
    reset = gauge_family(
        "northflank_exporter_rate_limit_reset_timestamp_seconds",
        "When the API's current rate-limit window resets (x-ratelimit-reset).",
    )
    throttled = counter_family(
        "northflank_exporter_throttled_seconds",
        "Time requests waited for the budget, the reserve or a 429 to allow them.",
    )
    connection_wait = counter_family(
        "northflank_exporter_connection_wait_seconds",
        "Time requests waited for a connection to the API URL, shared by the accounts that "
        "poll it; not part of any request's timeout.",
    )
    budget_remaining = gauge_family(
        "northflank_exporter_rate_limit_budget_remaining_requests",
        "Requests the budget still allows in the current rolling hour.",
    )
    cycle_left = gauge_family(
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
        connection_wait.add_metric([account], snapshot.connection_wait_seconds)
        if snapshot.budget_remaining is not None:
            budget_remaining.add_metric([account], snapshot.budget_remaining)
        cycle_left.add_metric([account], snapshot.cycle_seconds_left)
    yield requests
    yield from with_samples(remaining, budget, reset)
    yield throttled
    yield connection_wait
    yield from with_samples(budget_remaining)
    yield cycle_left
    yield from destination_cost_families(accounts)


def destination_cost_families(accounts: Accounts) -> Iterator[Metric]:
    """What each destination's polls cost: how often they run, pages read, full re-reads."""
    interval = gauge_family(
        "northflank_exporter_poll_interval_effective_seconds",
        "Time between polls, stretched beyond poll.interval when the budget requires it.",
        ["destination"],
    )
    pages = counter_family(
        "northflank_exporter_pages_fetched",
        "Pages of backups read, by sync mode (full or incremental).",
        ["destination", "mode"],
    )
    resyncs = counter_family(
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
