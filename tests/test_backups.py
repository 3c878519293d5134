"""Parsing one backup object as the API notes describe it, quirks included."""

import copy
import math

import pytest

from exporter.backups import InvalidBackup, parse_backup, parse_timestamp, read_backup, wire_item
from exporter.model import Schedule

EXAMPLE = {  # the reference page's example response item, verbatim
    "id": "example-backup",
    "name": "Example Backup",
    "status": "completed",
    "project": {"id": "example-project", "name": "Example Project"},
    "addon": {"id": "example-addon", "name": "Example Addon"},
    "config": {
        "addonVersion": "4.4.8",
        "addonType": "mongodb",
        "source": {"type": "global"},
        "size": "1234",
    },
    "schedules": [{"interval": "weekly", "minute": [30], "hour": [18], "day": [4]}],
    "expiredBy": "1729232400000.0",
    "createdAt": "2021-01-20T11:19:53.175Z",
    "completedAt": "2021-01-20T11:19:54.494Z",
}


def variant(**changes):
    raw = copy.deepcopy(EXAMPLE)
    for key, value in changes.items():
        if value is ...:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def test_reads_the_documented_example_exactly():
    backup = parse_backup(EXAMPLE)
    assert backup.id == "example-backup"
    assert backup.status == "completed"
    assert backup.size == 1234
    assert backup.created == pytest.approx(1611141593.175)
    assert backup.completed == pytest.approx(1611141594.494)
    assert backup.expires == 1729232400.0
    assert (backup.project_id, backup.project_name) == ("example-project", "Example Project")
    assert (backup.addon_id, backup.addon_name) == ("example-addon", "Example Addon")
    assert (backup.addon_type, backup.addon_version) == ("mongodb", "4.4.8")
    assert backup.schedules == (Schedule("weekly", (30,), (18,), (4,)),)


@pytest.mark.parametrize(
    ("expired_by", "seconds"),
    [
        ("1729232400000.0", 1729232400.0),
        (1729232400000, 1729232400.0),
        (1729232400000.0, 1729232400.0),
        ("1729232400000", 1729232400.0),
        (1729232400, 1729232400.0),  # seconds, not milliseconds
        (0, None),
        ("0", None),
        (None, None),
        (..., None),
    ],
)
def test_expired_by_as_number_string_milliseconds_or_seconds(expired_by, seconds):
    assert parse_backup(variant(expiredBy=expired_by)).expires == seconds


@pytest.mark.parametrize("completed_at", [..., None, ""])
def test_a_running_backup_may_lack_completed_at(completed_at):
    backup = parse_backup(variant(status="in-progress", completedAt=completed_at))
    assert backup.completed is None
    assert backup.status == "in-progress"


@pytest.mark.parametrize("size", ["1234", 1234])
def test_size_as_string_or_number(size):
    raw = variant()
    raw["config"]["size"] = size
    assert parse_backup(raw).size == 1234


def test_unknown_status_is_kept_as_a_new_status():
    assert parse_backup(variant(status="restoring")).status == "restoring"


@pytest.mark.parametrize("value", [None, "nope", 42, [1]])
def test_missing_or_odd_project_and_addon_are_absent_not_errors(value):
    backup = parse_backup(variant(project=value, addon=value))
    assert backup.project_id is None
    assert backup.addon_id is None


def test_a_backup_taken_by_hand_has_no_schedules():
    assert parse_backup(variant(schedules=...)).schedules == ()
    assert parse_backup(variant(schedules=[])).schedules == ()


def test_unknown_schedule_interval_is_ignored_for_forward_compatibility():
    raw = variant(
        schedules=[
            {"interval": "monthly", "minute": [0]},
            {"interval": "hourly", "minute": [15, 45, 15]},
        ]
    )
    assert parse_backup(raw).schedules == (Schedule("hourly", (15, 45)),)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2021-01-20T11:19:53Z", 1611141593.0),
        ("2021-01-20T11:19:53+00:00", 1611141593.0),
        ("2021-01-20T12:19:53+01:00", 1611141593.0),
        ("2021-01-20T11:19:53", 1611141593.0),
        ("2021-01-20 11:19:53.5Z", 1611141593.5),
        (1611141593000, 1611141593.0),
        ("", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_timestamps_in_several_iso_forms(timestamp, expected):
    assert parse_timestamp(timestamp) == expected


def _with_config(**config):
    raw = variant()
    raw["config"].update(config)
    return raw


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not an object", "backup"),
        (variant(id=...), "id"),
        (variant(id=12), "id"),
        (variant(status=None), "status"),
        (variant(status="x" * 100), "status"),
        (variant(config=None), "config"),
        (_with_config(size=None), "config.size"),
        (_with_config(size="12 MB"), "config.size"),
        (_with_config(size=-1), "config.size"),
        (_with_config(size=math.nan), "config.size"),
        (_with_config(size="1e400"), "config.size"),
        (_with_config(size=True), "config.size"),
        (_with_config(size="1_000"), "config.size"),
        (_with_config(size="12.9"), "config.size"),
        (_with_config(size="1234.0"), "config.size"),
        (_with_config(size=1234.0), "config.size"),
        (_with_config(size="\u0661\u0662\u0663"), "config.size"),  # Arabic-Indic digits
        (_with_config(size=" 12"), "config.size"),
        (variant(expiredBy=True), "expiredBy"),
        (variant(expiredBy=99), "expiredBy"),  # 1970
        (variant(expiredBy="1_729_232_400_000"), "expiredBy"),
        (variant(expiredBy="9" * 13), "expiredBy"),  # milliseconds of the year 2286
        (variant(expiredBy=-1729232400000), "expiredBy"),
        (variant(createdAt=...), "createdAt"),
        (variant(createdAt="garbage"), "createdAt"),
        (variant(completedAt=None), "completedAt"),
        (variant(expiredBy="soon"), "expiredBy"),
        (variant(schedules="daily"), "schedules"),
        (variant(schedules=[{"interval": "daily", "minute": [0]}]), "schedules"),
        (variant(schedules=[{"interval": "hourly", "minute": [60]}]), "schedules.minute"),
        (
            variant(schedules=[{"interval": "weekly", "minute": [0], "hour": [1], "day": [7]}]),
            "schedules.day",
        ),
    ],
)
def test_an_unusable_field_makes_the_backup_invalid_and_names_the_field(raw, field):
    with pytest.raises(InvalidBackup) as problem:
        parse_backup(raw)
    assert str(problem.value).startswith(f"{field}:")


def test_remembered_schedules_never_stand_in_for_different_ones():
    assert parse_backup(variant(schedules=[{"interval": "hourly", "minute": [1]}])).schedules == (
        Schedule("hourly", (1,)),
    )
    for odd in ([True], [1.0]):  # equal to [1] for ==, and not valid minutes
        with pytest.raises(InvalidBackup, match=r"schedules\.minute"):
            parse_backup(variant(schedules=[{"interval": "hourly", "minute": odd}]))


@pytest.mark.parametrize("ident", ["y/z", ".", ".."])
def test_a_backup_whose_addon_or_project_id_cannot_name_one_thing_is_skipped(ident):
    with pytest.raises(InvalidBackup, match="not an id"):
        parse_backup(variant(addon={"id": ident, "name": "A"}))
    with pytest.raises(InvalidBackup, match="not an id"):
        parse_backup(variant(project={"id": ident, "name": "P"}))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("completedAt", "2099-01-01T00:00:00Z", "later than it was read"),
        ("createdAt", "2099-01-01T00:00:00Z", "later than it was read"),
        ("completedAt", "1970-01-01T00:00:00Z", "before 2001"),
        ("createdAt", 0.5, "before 2001"),
    ],
)
def test_a_time_no_backup_can_have_makes_it_invalid_where_it_is_read(field, value, problem):
    """Judged once, where a backup is read: a completion in 2099 would hide staleness and a
    1970 one read as "never" (docs/design.md, "Times")."""
    read_at = 1_796_000_000.0
    with pytest.raises(InvalidBackup, match=f"{field}: {problem}"):
        read_backup(wire_item(variant(**{field: value})), read_at)
    # within the skew a server's clock may be ahead, it is a time
    ahead = variant(completedAt="2026-11-29T09:00:00Z", createdAt="2026-11-29T08:59:00Z")
    assert read_backup(wire_item(ahead), read_at).completed is not None


@pytest.mark.parametrize(
    "value", [1729232400, 1729232400000, 1729232400000000, 1729232400000000000]
)
def test_epoch_seconds_milliseconds_microseconds_and_nanoseconds_are_one_time(value):
    assert parse_timestamp(value) == 1729232400.0
