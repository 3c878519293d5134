"""Reading backups from a page of the Northflank API: one record per item, one judge.

A page is decoded by msgspec; each object in its `data` becomes a `WireBackup`, a typed record
of the fields the exporter reads, whatever their types. `read_backup` then judges every record
the same way, whether it has the API's usual shape or an odd one, and gives the stored `Backup`
or raises `InvalidBackup` naming the first field that cannot be used, so that the caller can
skip and count it.

The quirks the API notes list are handled here: sizes as strings, expiredBy as a number or a
string of epoch milliseconds, completedAt missing or empty while a backup runs, optional project
and addon objects.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from exporter.durations import HOUR
from exporter.model import (
    IMPORT_SOURCES,
    INTERVALS,
    MAX_SCHEDULES,
    Backup,
    Schedule,
    encodable,
    is_id,
)

MAX_SIZE_BYTES = 2**63 - 1
MAX_STATUS_LENGTH = 64
# Below this, an epoch value can only be seconds: 1e11 ms is 1973, 1e11 s is the year 5138.
SECONDS_MILLISECONDS_CUTOFF = 1e11
# An expiry outside these years is not a time the API means (a bool, a small number).
EARLIEST_EXPIRY = 978307200.0  # 2001-01-01T00:00:00Z
LATEST_EXPIRY = 7258118400.0  # 2200-01-01T00:00:00Z
# How far past the moment it was read a backup's createdAt or completedAt may be: the server's
# clock may run ahead of ours; a completion in 2099 is no backup's.
FUTURE_SKEW = 1.0 * HOUR
_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class InvalidBackup(ValueError):
    """A backup that cannot be trusted; the message names the field."""


class WireBackup(msgspec.Struct, gc=False):
    """One item of a page, as sent: the API's field names, any JSON value in each."""

    id: Any = None
    status: Any = None
    config: Any = None
    createdAt: Any = None
    completedAt: Any = None
    expiredBy: Any = None
    project: Any = None
    addon: Any = None
    schedules: Any = None


class NotAnObject(NamedTuple):
    """An item of `data` that is not a JSON object."""

    value: Any


Item = WireBackup | NotAnObject


def wire_item(raw: Any) -> Item:
    """The record of one decoded item of `data`."""
    if not isinstance(raw, dict):
        return NotAnObject(raw)
    return msgspec.convert(raw, WireBackup)


def decode_page(body: bytes) -> Any:
    """Any JSON body; ValueError when it is not JSON."""
    return msgspec.json.decode(body)


def parse_timestamp(value: Any) -> float | None:
    """ISO 8601 text (naive means UTC) or epoch seconds/milliseconds -> epoch seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch_from_number(value)
    if not isinstance(value, str):
        return None
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


def _epoch_from_number(value: Any) -> float | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (told apart by size: 2001 to
    5138 in seconds is under 1e11, and each finer unit is a thousand times more)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    for unit in (1.0, 1e3, 1e6, 1e9):
        if number < SECONDS_MILLISECONDS_CUTOFF * unit:
            return number / unit
    return None


def parse_expiry(value: Any) -> float | None:
    """expiredBy: epoch milliseconds (or seconds) as a number or numeric text, between 2001 and
    2200; 0, empty or missing means unknown. Anything else makes the backup invalid."""
    if value is None or (not isinstance(value, bool) and value in (0, "", "0")):
        return None
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric and not (isinstance(value, str) and _ASCII_DECIMAL.fullmatch(value)):
        raise InvalidBackup(f"expiredBy: not an epoch time: {value!r:.40}")
    expires = _epoch_from_number(value)
    if expires is None or not EARLIEST_EXPIRY <= expires < LATEST_EXPIRY:
        raise InvalidBackup(f"expiredBy: not a time between 2001 and 2200: {value!r:.40}")
    return expires


def parse_size(value: Any) -> int:
    """config.size: bytes as ASCII digits (the API's "1234") or a whole JSON number."""
    if isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        size = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        raise InvalidBackup(f"config.size: not a whole number of bytes: {value!r:.40}")
    if not 0 <= size <= MAX_SIZE_BYTES:
        raise InvalidBackup(f"config.size: out of range: {value!r:.40}")
    return size


def _int_list(value: Any, low: int, high: int, field: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidBackup(f"schedules.{field}: expected whole numbers {low}-{high}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
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


def parse_schedules(raw: Any) -> tuple[Schedule, ...]:
    """A backup's `schedules` list (missing or null: taken by hand, none)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidBackup("schedules: not a list")
    if len(raw) > MAX_SCHEDULES:
        raise InvalidBackup(f"schedules: more than {MAX_SCHEDULES} ({len(raw)})")
    schedules = []
    for item in raw:
        schedule = parse_schedule(item)
        if schedule is not None:
            schedules.append(schedule)
    return tuple(schedules)


def _reference(raw: Any) -> tuple[str | None, str | None]:
    """The (id, name) of an optional `project` or `addon` object; null or odd shapes are absent."""
    if not isinstance(raw, dict):
        return None, None
    ident, name = raw.get("id"), raw.get("name")
    if not isinstance(ident, str) or not ident:
        return None, None
    if not is_id(ident):
        raise InvalidBackup("project.id or addon.id: not an id (a `/`, `.`, `..` or too long)")
    return encodable(ident), encodable(name) if isinstance(name, str) else None


def _optional_text(value: Any) -> str | None:
    return encodable(value) if isinstance(value, str) and value else None


def _backup_time(value: Any, field: str, now: float | None) -> float | None:
    """A backup's createdAt or completedAt: None when absent or not a time; a time outside
    what a backup can mean (before 2001, or later than the moment it was read plus
    FUTURE_SKEW) makes the backup invalid (docs/design.md, "Times")."""
    moment = parse_timestamp(value)
    if moment is None:
        return None
    if moment < EARLIEST_EXPIRY:
        raise InvalidBackup(f"{field}: before 2001: {value!r:.40}")
    latest = LATEST_EXPIRY if now is None else now + FUTURE_SKEW
    if moment > latest:
        raise InvalidBackup(f"{field}: later than it was read: {value!r:.40}")
    return moment


def read_backup(item: Item, now: float | None = None) -> Backup:
    """Judge one record; raise InvalidBackup naming the first field that cannot be used.
    `now`: when it was read (a time later than that, past FUTURE_SKEW, cannot be a backup's)."""
    if isinstance(item, NotAnObject):
        raise InvalidBackup("backup: not an object")
    if not isinstance(item.id, str) or not item.id:
        raise InvalidBackup("id: missing")
    status = item.status
    if not isinstance(status, str) or not status or len(status) > MAX_STATUS_LENGTH:
        raise InvalidBackup("status: missing or not a short string")
    config = item.config
    if not isinstance(config, dict):
        raise InvalidBackup("config: missing")
    created = _backup_time(item.createdAt, "createdAt", now)
    if created is None:
        raise InvalidBackup("createdAt: missing or not a time")
    completed = _backup_time(item.completedAt, "completedAt", now)
    if status == "completed" and completed is None:
        raise InvalidBackup("completedAt: missing on a completed backup")
    project_id, project_name = _reference(item.project)
    addon_id, addon_name = _reference(item.addon)
    return Backup(
        id=item.id,
        status=encodable(status),
        size=parse_size(config.get("size")),
        created=created,
        completed=completed,
        expires=parse_expiry(item.expiredBy),
        project_id=project_id,
        project_name=project_name,
        addon_id=addon_id,
        addon_name=addon_name,
        addon_type=_optional_text(config.get("addonType")),
        addon_version=_optional_text(config.get("addonVersion")),
        schedules=parse_schedules(item.schedules),
        imported=_imported(config),
    )


def _imported(config: dict[str, Any]) -> bool:
    source = config.get("source")
    return isinstance(source, dict) and source.get("type") in IMPORT_SOURCES


def parse_backup(raw: Any) -> Backup:
    """One decoded JSON item, read exactly as a page's items are."""
    return read_backup(wire_item(raw))


class PageRead(NamedTuple):
    backups: list[Backup]  # in listing order
    invalid: list[str]  # why each unusable item was skipped


def read_page(items: list[Item], now: float | None = None) -> PageRead:
    """Every record of a page: the usable backups, and why each other one was skipped."""
    backups: list[Backup] = []
    invalid: list[str] = []
    for item in items:
        try:
            backups.append(read_backup(item, now))
        except InvalidBackup as problem:
            invalid.append(str(problem))
    return PageRead(backups, invalid)
