"""Units of time, and durations written the Prometheus way: 90s, 5m, 1h30m, 7d, 500ms.

The exporter's one home for units of time: whole seconds, so that schedule arithmetic over a
week's offsets stays in integers."""

import re

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

_UNIT_SECONDS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE, "s": 1.0, "ms": 0.001}
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
