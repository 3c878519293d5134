"""Durations written the Prometheus way: 90s, 5m, 1h30m, 7d, 500ms."""

import re

_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+")


class DurationError(ValueError):
    """Raised for text that is not a duration."""


def parse_duration(text: str) -> float:
    """Return the number of seconds `text` stands for; units may be combined largest first."""
    cleaned = text.strip()
    if not _WHOLE.fullmatch(cleaned):
        raise DurationError(f"invalid duration {cleaned!r} (use e.g. 90s, 5m, 1h30m, 7d)")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(cleaned))


def format_duration(seconds: float) -> str:
    """Render seconds compactly (`1h30m`, `45s`, `250ms`) for log lines."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    remaining = round(seconds)
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNIT_SECONDS[unit])
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
