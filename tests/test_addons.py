"""Per-addon aggregation on hand-built backups with hand-worked results."""

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.aggregate import summarize
from exporter.config import AddonRules
from tests import reference

NOW = 1_800_000_000.0
HOUR = 3600.0
RULES = AddonRules()


def backup(
    ident,
    status,
    created,
    completed=None,
    size=0,
    expires=None,
    addon="db",
    project="shop",
    schedules=None,
):
    from datetime import UTC, datetime

    def iso(epoch):
        return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat()

    raw = {
        "id": ident,
        "status": status,
        "config": {"size": str(size), "addonType": "postgresql", "addonVersion": "16"},
        "createdAt": iso(created),
        "completedAt": iso(completed),
        "expiredBy": None if expires is None else expires * 1000,
        "project": {"id": project, "name": project.title()},
        "addon": {"id": addon, "name": addon.upper()},
    }
    if schedules is not None:
        raw["schedules"] = schedules
    return raw


HOURLY = [{"interval": "hourly", "minute": [0]}]
DAILY = [{"interval": "daily", "minute": [0], "hour": [3]}]


def only_addon(backups, rules=RULES):
    (addon,) = summarize(backups, NOW, 24 * HOUR, rules).addons
    return addon


def test_last_completed_is_chosen_by_completion_with_its_size_and_duration():
    addon = only_addon(
        [
            backup("a", "completed", NOW - 10 * HOUR, NOW - 2 * HOUR, size=500),  # long-running
            backup("b", "completed", NOW - 5 * HOUR, NOW - 4 * HOUR, size=900),
        ]
    )
    assert addon.last_completed == NOW - 2 * HOUR
    assert addon.last_completed_size == 500
    assert addon.last_completed_duration == 8 * HOUR
    assert addon.newest_completed_created == NOW - 5 * HOUR  # creation decides schedule coverage


def test_failures_use_completed_at_or_else_created_at():
    addon = only_addon(
        [
            backup("a", "failed", NOW - 3 * HOUR, NOW - 2.5 * HOUR),
            backup("b", "aborted", NOW - 1 * HOUR),
            backup("c", "not-supported", NOW - 0.5 * HOUR),
        ]
    )
    assert addon.last_failure == NOW - 1 * HOUR
    assert addon.never_completed


def test_oldest_running_backup_of_any_running_status():
    addon = only_addon(
        [
            backup("a", "in-progress", NOW - 2 * HOUR),
            backup("b", "aborting", NOW - 5 * HOUR),
            backup("c", "scheduled", NOW - 60),
            backup("d", "completed", NOW - 9 * HOUR, NOW - 8 * HOUR),
        ]
    )
    assert addon.oldest_running_created == NOW - 5 * HOUR
    assert not addon.never_completed


def test_restorable_until_is_the_latest_expiry_of_completed_backups_only():
    addon = only_addon(
        [
            backup("a", "completed", NOW - 9 * HOUR, NOW - 8 * HOUR, expires=NOW + 3 * HOUR),
            backup("b", "completed", NOW - 30 * HOUR, NOW - 29 * HOUR, expires=NOW + 5 * HOUR),
            backup("c", "failed", NOW - HOUR, expires=NOW + 90 * HOUR),
        ]
    )
    assert addon.restorable_until == NOW + 5 * HOUR
    assert addon.expiring == 2


def test_the_newest_backup_with_schedules_declares_them():
    addon = only_addon(
        [
            backup("old", "completed", NOW - 50 * HOUR, NOW - 49 * HOUR, schedules=DAILY),
            backup("new", "completed", NOW - 2 * HOUR, NOW - 1.9 * HOUR, schedules=HOURLY),
            backup("manual", "completed", NOW - HOUR, NOW - 0.9 * HOUR),
        ]
    )
    assert [s.interval for s in addon.schedules] == ["hourly"]
    assert addon.expected_interval == HOUR


def test_no_schedule_means_no_schedule_judgement():
    addon = only_addon([backup("m", "completed", NOW - HOUR, NOW - 0.9 * HOUR)])
    assert addon.schedules == ()
    assert addon.expected_interval is None
    assert addon.missed_slots is None


def test_backups_without_an_addon_count_for_the_destination_only():
    raw = backup("x", "completed", NOW - HOUR, NOW - 0.5 * HOUR)
    raw["addon"] = None
    summary = summarize(
        [raw, backup("y", "completed", NOW - HOUR, NOW - 0.5 * HOUR)], NOW, HOUR, RULES
    )
    assert summary.total == 2
    assert [a.addon for a in summary.addons] == ["db"]


def test_an_addon_without_a_project_gets_an_empty_project_label():
    raw = backup("x", "completed", NOW - HOUR, NOW - 0.5 * HOUR)
    del raw["project"]
    assert (only_addon([raw]).project, only_addon([raw]).project_name) == ("", "")


def test_the_same_addon_id_in_two_projects_is_two_addons():
    summary = summarize(
        [
            backup("a", "completed", NOW - HOUR, NOW - 0.5 * HOUR, project="p1"),
            backup("b", "failed", NOW - HOUR, project="p2"),
        ],
        NOW,
        HOUR,
        RULES,
    )
    assert [(a.project, a.addon) for a in summary.addons] == [("p1", "db"), ("p2", "db")]


def test_info_labels_come_from_the_newest_backup():
    older = backup("a", "completed", NOW - 9 * HOUR, NOW - 8 * HOUR)
    newer = backup("b", "completed", NOW - HOUR, NOW - 0.5 * HOUR)
    newer["config"]["addonVersion"] = "17"
    assert only_addon([newer, older]).addon_version == "17"
    assert only_addon([older, newer]).addon_version == "17"


def generated_page(draw_items):
    """Backups of a few addons, interleaved, with created times on a coarse grid (ties) and
    distinct completion times."""
    items = []
    for n, (addon, status, created_steps, took, size, expires_hours, scheduled) in enumerate(
        draw_items
    ):
        created = NOW - created_steps * 1800
        finished = status == "completed" or (status == "failed" and n % 2 == 0)
        item = backup(
            f"b{n}",
            status,
            created,
            created + took + n if finished else None,
            size=size,
            expires=NOW + expires_hours * HOUR,
            addon=addon,
            schedules=[HOURLY, DAILY][n % 2] if scheduled else None,
        )
        item["addon"]["name"] = f"{addon}-{n}"  # the newest backup's name must win
        items.append(item)
    return items


# A few distinct backups, then up to 80 drawn from them: enough completed backups per addon
# to go past the ten the size median is taken over.
page_items = st.lists(
    st.tuples(
        st.sampled_from(["db", "cache", "queue"]),
        st.sampled_from(["completed"] * 4 + ["failed", "aborted", "in-progress"]),
        st.integers(0, 400),
        st.integers(0, 7200),
        st.integers(0, 10**12),
        st.integers(1, 96),
        st.booleans(),
    ),
    min_size=1,
    max_size=80,
).flatmap(lambda few: st.lists(st.sampled_from(few), min_size=len(few), max_size=80))


@settings(max_examples=150, deadline=None)
@given(page_items)
def test_every_addon_summary_matches_the_reference_fold(draw_items):
    items = generated_page(draw_items)
    summary = summarize(items, NOW, 24 * HOUR, RULES)
    expected = reference.addon_expectations(items, NOW)
    assert {(a.project, a.addon) for a in summary.addons} == set(expected)
    for addon in summary.addons:
        want = expected[(addon.project, addon.addon)]
        assert dict(addon.backups_by_status) == want["counts"]
        assert (addon.project_name, addon.addon_name) == (
            want["info"]["project_name"],
            want["info"]["addon_name"],
        )
        running_age = (
            None if addon.oldest_running_created is None else NOW - addon.oldest_running_created
        )
        got = {
            "last_completed": addon.last_completed,
            "last_completed_size": addon.last_completed_size,
            "size_median": addon.recent_size_median,
            "last_completed_duration": addon.last_completed_duration,
            "last_failure": addon.last_failure,
            "running_age": running_age,
            "restorable_until": addon.restorable_until,
            "expiring": addon.expiring,
            "missed": addon.missed_slots,
            "last_missed": addon.last_missed_slot,
            "expected_interval": addon.expected_interval,
        }
        assert got == {key: want[key] for key in got}


def test_an_import_counts_by_status_and_is_never_the_newest_backup_nor_answers_a_slot():
    """An upload of outside data (config.source.type fileUpload) is restorable, yet not a
    backup of the addon: the hourly slots it sits beside stay missed, and overdue."""
    imported = backup("import", "completed", NOW - HOUR, NOW - HOUR + 60, size=7, schedules=None)
    imported["config"]["source"] = {"type": "fileUpload"}
    scheduled = backup(
        "b", "completed", NOW - 4 * HOUR + 5, NOW - 4 * HOUR + 65, size=900, schedules=HOURLY
    )
    addon = only_addon([imported, scheduled])
    without = only_addon([scheduled])
    assert dict(addon.backups_by_status)["completed"] == 2
    assert addon.last_completed == NOW - 4 * HOUR + 65
    assert addon.last_completed_size == 900
    assert (addon.missed_slots, addon.last_missed_slot) == (
        without.missed_slots,
        without.last_missed_slot,
    )
    assert addon.missed_slots == 3
    assert addon.answered_until == NOW - 4 * HOUR + 5
