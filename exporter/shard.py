"""Which destinations this exporter polls when several share them (`--shard N --total-shards M`).

Like kube-state-metrics, each of M exporters takes the destinations whose stable hash lands on
its ordinal: the same ones on every start, on every machine, in every Python (unlike `hash()`,
which is salted per process). Prometheus then scrapes all M and sees one complete picture.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    ordinal: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if self.total < 1 or not 0 <= self.ordinal < self.total:
            raise ValueError(
                f"shard {self.ordinal} of {self.total}: expected 0 <= shard < total-shards"
            )

    def owns(self, account: str, destination: str) -> bool:
        """Whether this shard polls `destination` of `account`."""
        return self.total == 1 or shard_of(account, destination, self.total) == self.ordinal


def shard_of(account: str, destination: str, total: int) -> int:
    digest = hashlib.sha256(f"{account}\0{destination}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total
