"""Pure aggregation of one destination's backups, read from its store column by column.

Nothing here does I/O or reads a clock: the poll's `now` is passed in, so the same backups
always give the same summary. Every pass over the rows is a C-level loop (Counter, map,
compress, min/max over arrays); Python code runs once per status, addon or unusual row.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exporter.addons import AddonRules, AddonSummary, summarize_addon
from exporter.backups import by_status, read_page
from exporter.store import BackupStore


@dataclass(frozen=True)
class DestinationSummary:
    """What one complete poll of a destination found; immutable, rendered by the collector."""

    backups_by_status: tuple[tuple[str, int], ...]
    bytes_by_status: tuple[tuple[str, int], ...]
    last_completed: float | None
    expiring: int
    next_expiry: float | None
    total: int
    invalid: int
    addons: tuple[AddonSummary, ...] = ()


def summarize_store(
    store: BackupStore,
    now: float,
    warning_window: float,
    rules: AddonRules | None = None,
    invalid: int = 0,
) -> DestinationSummary:
    """The summary of every backup the store holds that has not expired by `now`."""
    store = store.unexpired(now)
    rules = rules or AddonRules(enabled=False)
    names = store.status_names
    counts = Counter(store.statuses)
    warn_until = now + warning_window
    return DestinationSummary(
        backups_by_status=by_status(Counter({names[i]: n for i, n in counts.items()})),
        bytes_by_status=by_status(_bytes_by_status(store, counts)),
        last_completed=_last_completed(store, counts),
        expiring=len(list(filter(warn_until.__ge__, store.expires))),  # NaN compares false
        next_expiry=min(filter(math.isfinite, store.expires), default=None),
        total=len(store),
        invalid=invalid,
        addons=tuple(
            summarize_addon(*key, rows, store, now=now, warn_until=warn_until, rules=rules)
            for key, rows in sorted(_rows_by_addon(store).items() if rules.enabled else ())
            if rules.wants(*key)
        ),
    )


def _bytes_by_status(store: BackupStore, counts: Counter[int]) -> Counter[str]:
    """Bytes per status: the total, less what the rows of the other statuses hold."""
    statuses, sizes, names = store.statuses, store.sizes, store.status_names
    if not counts:
        return Counter()
    ((usual, _),) = counts.most_common(1)
    others = itertools.compress(
        range(len(store)), map(operator.ne, statuses, itertools.repeat(usual))
    )
    held: Counter[str] = Counter({names[i]: 0 for i in counts})
    for row in others:
        held[names[statuses[row]]] += sizes[row]
    held[names[usual]] = sum(sizes) - sum(held.values())
    return held


def _last_completed(store: BackupStore, counts: Counter[int]) -> float | None:
    done = [i for i in counts if store.status_names[i] == "completed"]
    if not done:
        return None
    mask = map(operator.eq, store.statuses, itertools.repeat(done[0]))
    return max(itertools.compress(store.completed, mask))


def _rows_by_addon(store: BackupStore) -> dict[tuple[str, str], list[int]]:
    """The rows of each (project, addon), in listing order; backups of no addon left out."""
    refs = store.addon_refs
    by_ref: list[list[int]] = [[] for _ in refs]
    # list.append(by_ref[index], row) for every row, in C
    deque(map(list.append, map(by_ref.__getitem__, store.addons), range(len(store))), maxlen=0)
    groups: dict[tuple[str, str], list[int]] = {}
    for ref, rows in zip(refs, by_ref, strict=True):
        if rows and ref.addon_id is not None:
            key = (ref.project_id or "", ref.addon_id)
            # one addon seen with several names or versions: its rows, merged back in order
            groups[key] = sorted(groups[key] + rows) if key in groups else rows
    return groups


def summarize(
    raw_backups: Iterable[Any],
    now: float,
    warning_window: float,
    rules: AddonRules | None = None,
) -> DestinationSummary:
    """Read and fold a whole list at once (for tests and tools; the poller reads pages)."""
    read = read_page(list(raw_backups))
    store = BackupStore()
    store.extend(read.backups)
    return summarize_store(store, now, warning_window, rules, invalid=len(read.invalid))
