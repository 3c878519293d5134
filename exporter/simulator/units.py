"""The simulator's units of time, its timestamps and its deterministic draws: the one home of
these for the simulator, the alert backtest's fleet and the benchmarks. The simulator works out
its schedules' slots in its own simple way, day by day, and shares no code with the exporter's
schedule arithmetic, which it exists to check."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY


def iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def draws(*key: object) -> tuple[float, ...]:
    """Eight deterministic numbers in [0, 1) for a key (cheaper than seeding a Random)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=32).digest()
    return tuple(value / 2**32 for value in struct.unpack("<8I", digest))
