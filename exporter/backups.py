"""Tolerant parsing of one backup object from the Northflank API into a compact record.

The API notes list the quirks handled here: sizes as strings, expiredBy as a number or a
string of epoch milliseconds, completedAt missing or empty while a backup runs, optional
project and addon objects. A field the exporter relies on that cannot be read makes the
whole backup invalid (`InvalidBackup`), so the caller can skip it and count it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

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


# NamedTuple's own constructor runs Python code; _make is tuple.__new__ in C.
_make_backup = Backup._make


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
    _remember_schedules(key, schedules)
    return schedules


def _remember_schedules(key: Hashable, schedules: tuple[Schedule, ...]) -> None:
    if len(_SCHEDULES_SEEN) >= _SCHEDULES_SEEN_MAX:
        _SCHEDULES_SEEN.clear()
    _SCHEDULES_SEEN[key] = schedules


_SCHEDULES_SEEN: dict[Hashable, tuple[Schedule, ...]] = {}
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
    config = raw.get("config")
    if not isinstance(config, dict):
        config = None
    return _backup(
        raw.get("id"),
        raw.get("status"),
        config,
        None if config is None else config.get("size"),
        raw.get("createdAt"),
        raw.get("completedAt"),
        raw.get("expiredBy"),
        _reference(raw.get("project")),
        _reference(raw.get("addon")),
        None if config is None else config.get("addonType"),
        None if config is None else config.get("addonVersion"),
        _parse_schedules,
        raw.get("schedules"),
    )


def _backup(  # noqa: PLR0917 - one argument per field the two readers hand over
    ident: Any,
    status: Any,
    config: object | None,
    size: Any,
    created: Any,
    completed: Any,
    expires: Any,
    project: tuple[str | None, str | None],
    addon: tuple[str | None, str | None],
    addon_type: Any,
    addon_version: Any,
    read_schedules: Callable[[Any], tuple[Schedule, ...]],
    schedules: Any,
) -> Backup:
    """The checks both readers share, in the order their messages name fields."""
    if not isinstance(ident, str) or not ident:
        raise InvalidBackup("id: missing")
    if not isinstance(status, str) or not status or len(status) > MAX_STATUS_LENGTH:
        raise InvalidBackup("status: missing or not a short string")
    if config is None:
        raise InvalidBackup("config: missing")
    created_at = parse_timestamp(created)
    if created_at is None:
        raise InvalidBackup("createdAt: missing or not a time")
    completed_at = parse_timestamp(completed)
    if status == "completed" and completed_at is None:
        raise InvalidBackup("completedAt: missing on a completed backup")
    return _make_backup(
        (
            ident,
            status,
            parse_size(size),
            created_at,
            completed_at,
            parse_expiry(expires),
            project[0],
            project[1],
            addon[0],
            addon[1],
            _optional_text(addon_type),
            _optional_text(addon_version),
            read_schedules(schedules),
        )
    )


# --- the fast reader: pages decoded by msgspec straight into typed records ---
#
# Decoding a page into these structs (in C) is what makes a full poll cheap. They accept
# exactly the shapes the tolerant reader above accepts without a second look; a page with any
# other shape (a bool for a number, a project without an id, ...) fails to decode as a whole
# and is read again by `parse_backup`, item by item, so what the exporter makes of a page never
# depends on which reader read it.


class WireReference(msgspec.Struct):
    id: str
    name: Any = None


class WireConfig(msgspec.Struct):
    size: Any = None
    addonType: Any = None  # the API's field names
    addonVersion: Any = None


class WireSchedule(msgspec.Struct, frozen=True):
    interval: str | None = None
    minute: tuple[int, ...] | None = None
    hour: tuple[int, ...] | None = None
    day: tuple[int, ...] | None = None


class WireBackup(msgspec.Struct):
    id: Any = None
    status: Any = None
    config: WireConfig | None = None
    createdAt: Any = None
    completedAt: Any = None
    expiredBy: Any = None
    project: WireReference | None = None
    addon: WireReference | None = None
    schedules: tuple[WireSchedule, ...] | None = None


class WirePage(msgspec.Struct):
    data: list[WireBackup] | None = None
    pagination: Any = None


_decode_page = msgspec.json.Decoder(WirePage).decode


def decode_backup_page(body: bytes) -> dict[str, Any]:
    """A page of backups as {"data": [...], "pagination": ...}: WireBackup items when the whole
    page has the expected shape, else whatever json.loads makes of it (ValueError if not JSON)."""
    try:
        page = _decode_page(body)
    except msgspec.DecodeError:  # also ValidationError; NaN, too, is left to json's rules
        decoded: dict[str, Any] = json.loads(body)
        return decoded
    return {"data": page.data, "pagination": page.pagination}


def _wire_reference(ref: WireReference | None) -> tuple[str | None, str | None]:
    if ref is None or not ref.id:
        return None, None
    return ref.id, ref.name if isinstance(ref.name, str) else None


def _wire_schedules(raw: tuple[WireSchedule, ...] | None) -> tuple[Schedule, ...]:
    if not raw:
        return ()
    cached = _SCHEDULES_SEEN.get(raw)
    if cached is None:
        cached = _parse_schedules(
            [
                {
                    name: list(value) if isinstance(value, tuple) else value
                    for name, value in msgspec.structs.asdict(item).items()
                    if value is not None
                }
                for item in raw
            ]
        )
        _remember_schedules(raw, cached)
    return cached


def read_backup(raw: Any) -> Backup:
    """A backup from either reader's item."""
    if type(raw) is not WireBackup:
        return parse_backup(raw)
    config = raw.config
    return _backup(
        raw.id,
        raw.status,
        config,
        None if config is None else config.size,
        raw.createdAt,
        raw.completedAt,
        raw.expiredBy,
        _wire_reference(raw.project),
        _wire_reference(raw.addon),
        None if config is None else config.addonType,
        None if config is None else config.addonVersion,
        _wire_schedules,
        raw.schedules,
    )
