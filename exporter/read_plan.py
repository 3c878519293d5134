"""One account's plan of destination reads around the slots (`poll_schedule.py`): when each
destination was last read, when the destinations were last listed, and the reads put off
until a slot, told in /-/healthy and in the log."""

from __future__ import annotations

import logging
from dataclasses import replace

from exporter.durations import MINUTE
from exporter.poll_schedule import PollTiming, next_read
from exporter.snapshot import DestinationState, Snapshot
from exporter.supervise import utc


class ReadPlan:
    def __init__(self, timing: PollTiming, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self.timing = timing
        self._log = log
        self._last_read: dict[str, float] = {}  # when each destination's last read began
        self._listed_at: float | None = None  # when the destinations were last listed well
        self._told: list[tuple[float, str]] = []  # the reads put off, as last logged
        self._told_at: float = -MINUTE

    @property
    def around_slots(self) -> bool:
        return self.timing.around_slots

    def reading(self, destination: str, now: float) -> None:
        self._last_read[destination] = now

    def next_read(self, state: DestinationState, interval: float) -> float:
        """When the destination is read next, `interval` being the effective poll interval."""
        timing = replace(self.timing, interval=interval)
        return next_read(state, self._last_read.get(state.destination.id), timing)

    def listing_due(self, now: float) -> bool:
        """Whether the destinations are to be listed again: a good listing stands for the
        heartbeat (destinations come and go far less often than backups)."""
        return self._listed_at is None or now >= self._listed_at + self.timing.heartbeat

    def listed(self, now: float, ok: bool) -> None:
        self._listed_at = now if ok else None

    def put_off(self, snapshot: Snapshot, now: float) -> list[tuple[float, str]]:
        """(next read, destination) of those whose next read, as published, is further off
        than the effective interval: put off until their addons' slots."""
        interval = snapshot.effective_interval
        if interval is None:  # nothing published yet
            return []
        waiting = []
        for state in snapshot.destinations:
            due = state.next_read
            if due is not None and due > now + interval:
                waiting.append((due, state.destination.id))
        return sorted(waiting)

    def told_waits(self, waiting: list[tuple[float, str]], destinations: int) -> str | None:
        """What /-/healthy says the loop waits for, besides the budget."""
        if not waiting:
            return None
        due, first = waiting[0]
        return (
            f"{len(waiting)} of {destinations} destinations read after their addons' next "
            f"slots (poll.around_slots); the next, {first}, at {utc(due)}"
        )

    def tell(self, waiting: list[tuple[float, str]], now: float) -> None:
        """Log the reads put off until a slot when they change: once, then at most once a
        minute (the gauge northflank_exporter_next_poll_timestamp_seconds has each)."""
        if not waiting or waiting == self._told or now < self._told_at + MINUTE:
            return
        self._told, self._told_at = waiting, now
        self._log.info(
            "reading around the slots: %s (nothing they list can change before; poll.around_slots)",
            ", ".join(f"destination={ident} at {utc(due)}" for due, ident in waiting),
        )
