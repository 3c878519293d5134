"""The value converters of the configuration: each takes a raw YAML value and returns the typed
one, or raises ValueError with what it expected (config.py names the file and the key)."""

from __future__ import annotations

import re
from typing import Any

from exporter.durations import DAY, DurationError, parse_duration
from exporter.patterns import compile_pattern

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MIN_REQUESTS_PER_HOUR = 10
MAX_DURATION = 365.0 * DAY  # no setting of this exporter means more than a year


def _duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("expected a duration string like 90s, 5m or 1h30m")
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        raise ValueError(str(error)) from None
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    if seconds > MAX_DURATION:
        raise ValueError("must be at most a year (365d)")
    return seconds


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"https?://[^/\s]+", value):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError("expected an id made of letters, digits, '-', '_' or '.'")
    return value


def _identifiers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list of destination ids")
    ids = tuple(_identifier(item) for item in value)
    if len(set(ids)) != len(ids):
        raise ValueError("lists the same destination twice")
    return ids


def _requests_per_hour(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_REQUESTS_PER_HOUR:
        raise ValueError(f"expected a whole number of at least {MIN_REQUESTS_PER_HOUR}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError('expected a list of regular expressions over "project/addon"')
    return tuple(compile_pattern(item) for item in value)


def _secret(value: Any) -> str:
    # The message never includes the value: it may be a real token typed in the wrong place.
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError("expected a token string without whitespace")
    return value.strip()


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a file path")
    return value


def _listen_address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('expected "host:port" or ":port"')
    parse_listen_address(value)
    return value


def parse_listen_address(address: str) -> tuple[str, int]:
    """Split `host:port`, `:port` or `[v6]:port`; an empty host means every interface."""
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})", address)
    if not match or not 0 <= int(match.group(2)) <= 65535:
        raise ValueError(f'invalid listen address {address!r}: expected "host:port" or ":port"')
    return match.group(1).strip("[]"), int(match.group(2))


def _drills(value: Any) -> tuple[tuple[re.Pattern[str], float], ...]:
    """`restores.drills`: each a `match` (a safe pattern over "project/addon", matched whole)
    and how often (`every`) the addons it matches must be restored."""
    if not isinstance(value, list):
        raise ValueError("expected a list of {match, every}")
    drills = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"match", "every"}:
            raise ValueError(f"[{index}]: expected exactly the keys match and every")
        drills.append((_drill_field(index, "match", item), _drill_field(index, "every", item)))
    return tuple(drills)


def _drill_field(index: int, key: str, item: dict[str, Any]) -> Any:
    """One field of a drill, its problem named by its place: `[0].every: ...`."""
    try:
        if key == "every":
            return _duration(item[key])
        if not isinstance(item[key], str):
            raise ValueError('expected a regular expression over "project/addon"')
        return compile_pattern(item[key])
    except ValueError as error:
        raise ValueError(f"[{index}].{key}: {error}") from None
