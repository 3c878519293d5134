"""Tolerant parsing of one backup object from the Northflank API into a compact record.

The API notes list the quirks handled here: sizes as strings, expiredBy as a number or a
string of epoch milliseconds, completedAt missing or empty while a backup runs, optional
project and addon objects. A field the exporter relies on that cannot be read makes the
whole backup invalid (`InvalidBackup`), so the caller can skip it and count it.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any, NamedTuple

STATUSES = (
    "scheduled",
    "in-progress",
    "completed",
    "aborting",
    "aborted",
    "failed",
    "not-supported",
)
RUNNING_STATUSES = frozenset({"scheduled", "in-progress", "aborting"})
FAILED_STATUSES = frozenset({"failed", "aborted"})
INTERVALS = ("hourly", "daily", "weekly")

MAX_SIZE_BYTES = 2**63 - 1
MAX_STATUS_LENGTH = 64
# Below this, an epoch value can only be seconds: 1e11 ms is 1973, 1e11 s is the year 5138.
_SECONDS_MILLISECONDS_CUTOFF = 1e11


def by_status(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    """Every documented status (0 when absent), then any new status the API invented."""
    extra = sorted(status for status in counts if status not in STATUSES)
    return tuple((status, counts[status]) for status in (*STATUSES, *extra))


class InvalidBackup(ValueError):
    """A backup that cannot be trusted; the message names the field."""


class Schedule(NamedTuple):
    interval: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...] = ()
    days: tuple[int, ...] = ()


class Backup(NamedTuple):
    id: str
    status: str
    size: int
    created: float
    completed: float | None
    expires: float | None
    project_id: str | None = None
    project_name: str | None = None
    addon_id: str | None = None
    addon_name: str | None = None
    addon_type: str | None = None
    addon_version: str | None = None
    schedules: tuple[Schedule, ...] = ()


def parse_timestamp(value: Any) -> float | None:
    """ISO 8601 text (naive means UTC) or epoch seconds/milliseconds -> epoch seconds."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return _epoch_from_number(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_from_number(value)
    return None


def _epoch_from_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number if number < _SECONDS_MILLISECONDS_CUTOFF else number / 1000.0


def parse_expiry(value: Any) -> float | None:
    """expiredBy: epoch milliseconds as a number or string; 0 or missing means unknown."""
    if value is None or value in (0, "", "0"):
        return None
    expires = _epoch_from_number(value)
    if expires is None:
        raise InvalidBackup(f"expiredBy: not an epoch time: {value!r:.40}")
    return expires


def parse_size(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidBackup("config.size: not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidBackup(f"config.size: not a number: {value!r:.40}") from None
    if not math.isfinite(number) or number < 0 or number > MAX_SIZE_BYTES:
        raise InvalidBackup(f"config.size: out of range: {value!r:.40}")
    return int(number)


def _int_list(value: Any, low: int, high: int, field: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and low <= item <= high
        for item in value
    ):
        raise InvalidBackup(f"schedules.{field}: expected whole numbers {low}-{high}")
    return tuple(sorted(set(value)))


def parse_schedule(raw: Any) -> Schedule | None:
    """One entry of `schedules`; None for an interval this exporter does not know yet."""
    if not isinstance(raw, dict):
        raise InvalidBackup("schedules: entry is not an object")
    interval = raw.get("interval")
    if interval not in INTERVALS:
        return None
    minutes = _int_list(raw.get("minute"), 0, 59, "minute")
    hours = _int_list(raw.get("hour"), 0, 23, "hour") if interval != "hourly" else ()
    days = _int_list(raw.get("day"), 0, 6, "day") if interval == "weekly" else ()
    if not minutes or (interval != "hourly" and not hours) or (interval == "weekly" and not days):
        raise InvalidBackup(f"schedules: {interval} schedule lacks its minute, hour or day list")
    return Schedule(interval, minutes, hours, days)


def _parse_schedules(raw: Any) -> tuple[Schedule, ...]:
    """Every backup of an addon repeats the same schedules: parse each distinct list once."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidBackup("schedules: not a list")
    if not raw:
        return ()
    key = repr(raw)  # tells True from 1 and 1.0 from 1, as the checks below do
    cached = _SCHEDULES_SEEN.get(key)
    if cached is not None:
        return cached
    parsed = (parse_schedule(item) for item in raw)
    schedules = tuple(schedule for schedule in parsed if schedule is not None)
    if len(_SCHEDULES_SEEN) >= _SCHEDULES_SEEN_MAX:
        _SCHEDULES_SEEN.clear()
    _SCHEDULES_SEEN[key] = schedules
    return schedules


_SCHEDULES_SEEN: dict[str, tuple[Schedule, ...]] = {}
_SCHEDULES_SEEN_MAX = 4096


def _reference(raw: Any) -> tuple[str | None, str | None]:
    """The (id, name) of an optional `project` or `addon` object; null or odd shapes are absent."""
    if not isinstance(raw, dict):
        return None, None
    ident, name = raw.get("id"), raw.get("name")
    if not isinstance(ident, str) or not ident:
        return None, None
    return ident, name if isinstance(name, str) else None


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_backup(raw: Any) -> Backup:
    """Read one backup object; raise InvalidBackup naming the first field that cannot be used."""
    if not isinstance(raw, dict):
        raise InvalidBackup("backup: not an object")
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        raise InvalidBackup("id: missing")
    status = raw.get("status")
    if not isinstance(status, str) or not status or len(status) > MAX_STATUS_LENGTH:
        raise InvalidBackup("status: missing or not a short string")
    config = raw.get("config")
    if not isinstance(config, dict):
        raise InvalidBackup("config: missing")
    created = parse_timestamp(raw.get("createdAt"))
    if created is None:
        raise InvalidBackup("createdAt: missing or not a time")
    completed = parse_timestamp(raw.get("completedAt"))
    if status == "completed" and completed is None:
        raise InvalidBackup("completedAt: missing on a completed backup")
    project_id, project_name = _reference(raw.get("project"))
    addon_id, addon_name = _reference(raw.get("addon"))
    return Backup(
        id=ident,
        status=status,
        size=parse_size(config.get("size")),
        created=created,
        completed=completed,
        expires=parse_expiry(raw.get("expiredBy")),
        project_id=project_id,
        project_name=project_name,
        addon_id=addon_id,
        addon_name=addon_name,
        addon_type=_optional_text(config.get("addonType")),
        addon_version=_optional_text(config.get("addonVersion")),
        schedules=_parse_schedules(raw.get("schedules")),
    )
