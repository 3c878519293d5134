"""Aggregation of one destination's backups, on hand-built objects with hand-worked results."""

from exporter.aggregate import summarize, summarize_store
from exporter.backups import parse_backup, read_page, wire_item
from exporter.model import STATUSES
from exporter.store import BackupStore

NOW = 1_800_000_000.0
HOUR = 3600.0


def backup(ident, status, size, created, completed=None, expires=None):
    raw = {
        "id": ident,
        "status": status,
        "config": {"size": str(size)},
        "createdAt": created,
        "expiredBy": None if expires is None else str(expires * 1000),
    }
    if completed is not None:
        raw["completedAt"] = completed
    return raw


def iso(epoch):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


BACKUPS = [
    backup("a", "completed", 100, iso(NOW - 3 * HOUR), iso(NOW - 2 * HOUR), NOW + 10 * HOUR),
    backup("b", "completed", 250, iso(NOW - 30 * HOUR), iso(NOW - 29 * HOUR), NOW + 2 * HOUR),
    backup("c", "failed", 0, iso(NOW - 5 * HOUR), None, NOW + 30 * HOUR),
    backup("d", "in-progress", 7, iso(NOW - 60), None, NOW + 48 * HOUR),
    backup("e", "restoring", 5, iso(NOW - 60), None, NOW + 50 * HOUR),  # a new status
    backup("f", "completed", 1000, iso(NOW - 90 * HOUR), iso(NOW - 89 * HOUR), NOW - 1),  # gone
    {"id": "broken", "status": "completed"},  # no config: invalid
]


def test_counts_and_bytes_by_status_with_every_documented_status_present():
    summary = summarize(BACKUPS, NOW, 24 * HOUR)
    counts = dict(summary.backups_by_status)
    assert [status for status, _ in summary.backups_by_status] == [*STATUSES, "restoring"]
    assert counts == {
        "scheduled": 0,
        "in-progress": 1,
        "completed": 2,
        "aborting": 0,
        "aborted": 0,
        "failed": 1,
        "not-supported": 0,
        "restoring": 1,
    }
    assert dict(summary.bytes_by_status)["completed"] == 350
    assert dict(summary.bytes_by_status)["in-progress"] == 7
    assert summary.total == 5
    assert summary.invalid == 1


def test_last_completed_is_the_newest_completion_not_the_first_listed():
    summary = summarize(list(reversed(BACKUPS)), NOW, 24 * HOUR)
    assert summary.last_completed == NOW - 2 * HOUR


def test_expiring_counts_only_unexpired_backups_inside_the_window():
    summary = summarize(BACKUPS, NOW, 24 * HOUR)
    assert summary.expiring == 2  # a (+10h) and b (+2h); c, d and e later; f already expired
    assert summary.next_expiry == NOW + 2 * HOUR


def test_window_edge_is_inclusive_and_expired_now_is_not_expiring():
    edge = [
        backup("x", "completed", 1, iso(NOW - HOUR), iso(NOW - HOUR), NOW + HOUR),
        backup("y", "completed", 1, iso(NOW - HOUR), iso(NOW - HOUR), NOW),
    ]
    summary = summarize(edge, NOW, HOUR)
    assert summary.expiring == 1
    assert summary.next_expiry == NOW + HOUR


def test_nothing_completed_means_no_last_completed():
    summary = summarize([BACKUPS[2], BACKUPS[3]], NOW, HOUR)
    assert summary.last_completed is None


def test_empty_destination():
    summary = summarize([], NOW, HOUR)
    assert dict(summary.backups_by_status) == dict.fromkeys(STATUSES, 0)
    assert dict(summary.bytes_by_status) == dict.fromkeys(STATUSES, 0)
    assert (summary.last_completed, summary.next_expiry, summary.expiring) == (None, None, 0)
    assert (summary.total, summary.invalid, summary.addons) == (0, 0, ())


def test_invalid_items_are_counted_and_the_first_reason_kept_for_the_log():
    assert read_page([wire_item({"id": "x"}), wire_item(None)]).invalid == [
        "status: missing or not a short string",
        "backup: not an object",
    ]
    assert summarize([{"id": "x"}, None, BACKUPS[0]], NOW, HOUR).invalid == 2


def test_a_backup_past_its_expiry_counts_nowhere_even_if_listed():
    gone = backup("gone", "completed", 900, iso(NOW - HOUR), iso(NOW - 0.5 * HOUR), NOW)
    summary = summarize([gone], NOW, 24 * HOUR)
    assert summary.total == 0
    assert summary.last_completed is None


def test_a_store_still_holding_an_expired_row_is_summarized_without_it():
    store = BackupStore()
    store.extend(parse_backup(raw) for raw in BACKUPS[:6])  # f expired
    assert len(store) == 6
    summary = summarize_store(store, NOW, 24 * HOUR)
    assert summary == summarize(BACKUPS[:6], NOW, 24 * HOUR)
    assert summary.total == 5
