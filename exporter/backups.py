"""Tolerant parsing of one backup object from the Northflank API into a compact record.

The API notes list the quirks handled here: sizes as strings, expiredBy as a number or a
string of epoch milliseconds, completedAt missing or empty while a backup runs, optional
project and addon objects. A field the exporter relies on that cannot be read makes the
whole backup invalid (`InvalidBackup`), so the caller can skip it and count it.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
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


class BackupColumns(NamedTuple):
    """Backups field by field: one list per field of Backup, in the same order."""

    ids: list[str]
    statuses: list[str]
    sizes: list[int]
    created: list[float]
    completed: list[float | None]
    expires: list[float | None]
    project_ids: list[str | None]
    project_names: list[str | None]
    addon_ids: list[str | None]
    addon_names: list[str | None]
    addon_types: list[str | None]
    addon_versions: list[str | None]
    schedules: list[tuple[Schedule, ...]]

    @classmethod
    def of(cls, backups: Sequence[Backup]) -> BackupColumns:
        if not backups:
            return cls(*([] for _ in cls._fields))
        return cls(*map(list, zip(*backups, strict=True)))

    def rows(self) -> list[Backup]:
        return list(map(_make_backup, zip(*self, strict=True)))

    def unexpired(self, now: float) -> BackupColumns:
        """Without the backups whose expiredBy has passed: they are gone, listed or not."""
        expires = self.expires
        if not any(map(now.__ge__, filter(None, expires))):
            return self
        keep = [expiry is None or expiry > now for expiry in expires]
        return BackupColumns(*(list(itertools.compress(column, keep)) for column in self))


def parse_timestamp(value: Any) -> float | None:
    """ISO 8601 text (naive means UTC) or epoch seconds/milliseconds -> epoch seconds."""
    if type(value) is str and value:
        try:  # the common case, first: the API's own "2026-11-30T11:59:30.000Z"
            moment = _fromisoformat(value)
        except ValueError:
            return _parse_text_timestamp(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, str):
        return _parse_text_timestamp(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_from_number(value)
    return None


def _parse_text_timestamp(value: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    if text != value:
        return parse_timestamp(text)
    return _epoch_from_number(text)


_fromisoformat = datetime.fromisoformat
_EXACT_INTEGERS = 2**53


def _epoch_from_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number if number < _SECONDS_MILLISECONDS_CUTOFF else number / 1000.0


def parse_expiry(value: Any) -> float | None:
    """expiredBy: epoch milliseconds as a number or string; 0 or missing means unknown."""
    if type(value) is int and _SECONDS_MILLISECONDS_CUTOFF <= value < _EXACT_INTEGERS:
        return value / 1000.0  # the API's own: whole milliseconds
    if value is None or value in (0, "", "0"):
        return None
    expires = _epoch_from_number(value)
    if expires is None:
        raise InvalidBackup(f"expiredBy: not an epoch time: {value!r:.40}")
    return expires


def parse_size(value: Any) -> int:
    if type(value) is str and value.isdecimal() and len(value) < _DIGITS_ALWAYS_IN_RANGE:
        return int(value)  # the API's "1234": no float round trip needed
    if isinstance(value, bool):
        raise InvalidBackup("config.size: not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidBackup(f"config.size: not a number: {value!r:.40}") from None
    if not math.isfinite(number) or number < 0 or number > MAX_SIZE_BYTES:
        raise InvalidBackup(f"config.size: out of range: {value!r:.40}")
    return int(number)


_DIGITS_ALWAYS_IN_RANGE = len(str(MAX_SIZE_BYTES))


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


class WireReference(msgspec.Struct, gc=False):
    id: str
    name: Any = None

    def pair(self) -> tuple[str, str | None]:
        return self.id, self.name if type(self.name) is str else None


class WireConfig(msgspec.Struct, gc=False):
    size: Any = None
    addonType: Any = None  # the API's field names
    addonVersion: Any = None


class WireSchedule(msgspec.Struct, frozen=True, gc=False):
    interval: str | None = None
    minute: tuple[int, ...] | None = None
    hour: tuple[int, ...] | None = None
    day: tuple[int, ...] | None = None


class WireBackup(msgspec.Struct, gc=False):
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
    config, project, addon = raw.config, raw.project, raw.addon
    return _backup(
        raw.id,
        raw.status,
        config,
        None if config is None else config.size,
        raw.createdAt,
        raw.completedAt,
        raw.expiredBy,
        (None, None) if project is None or not project.id else project.pair(),
        (None, None) if addon is None or not addon.id else addon.pair(),
        None if config is None else config.addonType,
        None if config is None else config.addonVersion,
        _wire_schedules,
        raw.schedules,
    )


# --- a whole page at once: the common case in C-level loops, anything else item by item ---


class PageRead(NamedTuple):
    backups: BackupColumns  # in listing order
    invalid: list[str]  # why each unusable item was skipped


def read_page(items: list[Any]) -> PageRead:
    """Every item of a page; the same result as read_backup() on each, item by item."""
    typical = _read_typical_page(items) if items else None
    if typical is not None:
        return PageRead(typical, [])
    read: list[Backup] = []
    invalid: list[str] = []
    for item in items:
        try:
            read.append(read_backup(item))
        except InvalidBackup as problem:
            invalid.append(str(problem))
    return PageRead(BackupColumns.of(read), invalid)


def _kind(values: Iterable[Any]) -> set[type]:
    return set(map(type, values))


def _utc_moments(texts: list[str]) -> list[datetime] | None:
    """The API's ISO 8601 times, or None if one is not plain ISO text with an offset."""
    try:
        moments = list(map(_fromisoformat, texts))
    except (TypeError, ValueError):
        return None
    return None if None in set(map(_tzinfo_of, moments)) else moments


_tzinfo_of = operator.attrgetter("tzinfo")
_name_of = operator.attrgetter("name")


def _read_typical_page(items: list[Any]) -> BackupColumns | None:
    """A page whose every field has the API's usual form (WireBackups, ISO times with an
    offset, decimal sizes, whole-millisecond expiry), read without a Python call per item;
    None when anything is out of the ordinary, so that read_backup() decides item by item."""
    if _kind(items) != {WireBackup}:
        return None
    ids = [item.id for item in items]
    statuses = [item.status for item in items]
    configs = [item.config for item in items]
    if _kind(ids) != {str} or "" in ids or None in configs or _kind(statuses) != {str}:
        return None
    if not all(0 < len(status) <= MAX_STATUS_LENGTH for status in set(statuses)):
        return None
    sizes = [config.size for config in configs]
    if _kind(sizes) != {str} or not all(map(str.isdecimal, sizes)):
        return None
    if max(map(len, sizes)) >= _DIGITS_ALWAYS_IN_RANGE:
        return None
    expires = _expiries([item.expiredBy for item in items])
    created = _utc_moments([item.createdAt for item in items])
    completed_texts = [item.completedAt for item in items]
    if expires is None or created is None or not _kind(completed_texts) <= _OPTIONAL_TEXT:
        return None
    try:
        finished = [_fromisoformat(text) if text else None for text in completed_texts]
    except ValueError:
        return None
    if None in set(map(_tzinfo_of, filter(None, finished))):
        return None
    completed = [moment.timestamp() if moment else None for moment in finished]
    unfinished = [
        status for status, text in zip(statuses, completed_texts, strict=True) if not text
    ]
    if "completed" in unfinished:
        return None
    projects = _references([item.project for item in items])
    addons = _references([item.addon for item in items])
    if projects is None or addons is None:
        return None
    schedules = [item.schedules for item in items]
    return BackupColumns(
        ids,
        statuses,
        list(map(int, sizes)),
        list(map(datetime.timestamp, created)),
        completed,
        expires,
        *projects,
        *addons,
        [c.addonType if type(c.addonType) is str and c.addonType else None for c in configs],
        [
            c.addonVersion if type(c.addonVersion) is str and c.addonVersion else None
            for c in configs
        ],
        [_SCHEDULES_SEEN.get(s) or _wire_schedules(s) if s else () for s in schedules],
    )


def _references(
    refs: list[WireReference | None],
) -> tuple[list[str | None], list[str | None]] | None:
    """The ids and names of `project` or `addon` references; None for an empty id or a name
    that is not text, which read_backup() must judge."""
    present = [ref for ref in refs if ref is not None]
    if "" in [ref.id for ref in present] or not _kind(map(_name_of, present)) <= _NAME_TYPES:
        return None
    return (
        [None if ref is None else ref.id for ref in refs],
        [None if ref is None else ref.name for ref in refs],
    )


_NAME_TYPES = _OPTIONAL_TEXT = {str, type(None)}


def _expiries(values: list[Any]) -> list[float] | None:
    """expiredBy in epoch milliseconds (numbers or numeric text) as seconds; None when one is
    missing, zero, in seconds or not a number."""
    kinds = _kind(values)
    if (
        kinds == {int}
        and min(values) >= _SECONDS_MILLISECONDS_CUTOFF
        and max(values) < _EXACT_INTEGERS
    ):
        return list(map(operator.truediv, values, itertools.repeat(1000.0)))  # as parse_expiry
    if not kinds <= _EXPIRY_TYPES:
        return None
    try:
        numbers = list(map(float, values))
    except (ValueError, OverflowError):
        return None
    if not all(map(math.isfinite, numbers)) or min(numbers) < _SECONDS_MILLISECONDS_CUTOFF:
        return None
    return [number / 1000.0 for number in numbers]


_EXPIRY_TYPES = {int, float, str}
