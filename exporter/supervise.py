"""The loops that run for the life of the process, kept alive and watched.

`supervised` runs a loop's step after step: an exception is logged once with its traceback,
counted, and the loop goes on at its next interval. `Health` records when each loop last made
progress and how long it may take to make more: a loop with nothing to show for
STALL_INTERVALS of its intervals (past any wait it announced, such as a budget pause) is
stalled, and /-/healthy names it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

STALL_INTERVALS = 3


def utc(moment: float) -> str:
    """A moment as the log lines and /-/healthy say it: 2026-03-02T10:19:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class Health:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._due: dict[str, float] = {}  # loop: when it must have made progress again
        self._intervals: dict[str, float] = {}
        # loop: until when the request budget it spends holds its requests back
        self._held: dict[str, Callable[[], float]] = {}
        self._held_what: dict[str, Callable[[], str]] = {}
        # loop: what it waits for when it is not held (None: nothing worth saying)
        self._told: dict[str, Callable[[], str | None]] = {}
        self.failures: Counter[str] = Counter()

    def progress(self, loop: str, interval: float, waiting: float = 0.0) -> None:
        """The loop moved on; it may now take `waiting` seconds and STALL_INTERVALS intervals
        before it moves on again."""
        self._due[loop] = self._clock() + waiting + STALL_INTERVALS * interval
        self._intervals[loop] = interval

    def held_by(
        self,
        loop: str,
        held_until: Callable[[], float],
        what_waits: Callable[[], str] | None = None,
    ) -> None:
        """The loop spends a request budget: while `held_until()` is ahead (a pause, or a wait
        of one of its own requests for the rolling hour), the loop is waiting, not stalled, and
        for STALL_INTERVALS intervals after. The budget says so itself, so no wait it imposes
        goes unannounced; `what_waits` says what it holds back."""
        self._held[loop] = held_until
        if what_waits is not None:
            self._held_what[loop] = what_waits

    def tells_waits(self, loop: str, waiting: Callable[[], str | None]) -> None:
        """The loop says, when asked, what it is waiting for besides the budget (/-/healthy):
        a wait by design, such as a read put off until a schedule's slot."""
        self._told[loop] = waiting

    def waits(self) -> list[str]:
        """What each loop waits for now, one line each: the budget's hold, or what it says."""
        now = self._clock()
        lines = []
        for loop in sorted(set(self._due) | set(self._told)):
            held = self._held.get(loop)
            until = 0.0 if held is None else held()
            if until > now:
                what = self._held_what.get(loop)
                held_back = "" if what is None else what()
                line = f"{loop}: waiting for the request budget until {utc(until)}"
                lines.append(f"{line}: {held_back}" if held_back else line)
            told = self._told.get(loop)
            said = None if told is None else told()
            if said:
                lines.append(f"{loop}: {said}")
        return lines

    def failed(self, loop: str) -> None:
        self.failures[loop] += 1

    def forget(self, loop: str) -> None:
        self._due.pop(loop, None)
        self._held.pop(loop, None)
        self._held_what.pop(loop, None)
        self._told.pop(loop, None)

    def stalled(self) -> list[str]:
        """The loops that have made no progress for longer than they may."""
        now = self._clock()
        return sorted(loop for loop, due in self._due.items() if now > self._due_at(loop, due))

    def _due_at(self, loop: str, due: float) -> float:
        held = self._held.get(loop)
        if held is None:
            return due
        return max(due, held() + STALL_INTERVALS * self._intervals[loop])


Step = Callable[[], Awaitable[float]]  # one round of a loop; returns seconds until the next
Wait = Callable[[asyncio.Event, float], Awaitable[None]]


def waiting_with(sleep: Callable[[float], Awaitable[None]]) -> Wait:
    """A wait between steps that `sleep` times (a fake clock's, in tests) and `stop` cuts."""

    async def wait(stop: asyncio.Event, seconds: float) -> None:
        await first_of(sleep(seconds), stop.wait())

    return wait


async def first_of(*waits: Awaitable[object]) -> None:
    """Wait until the first of `waits` is done; cancel the others."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def supervised(
    loop: str, step: Step, *, interval: float, health: Health, stop: asyncio.Event, wait: Wait
) -> None:
    """Run `step` until `stop` is set. A step that raises is logged with its traceback and
    counted, and the next one runs after `interval`; only a step that returns is progress."""
    health.progress(loop, interval)
    while not stop.is_set():
        try:
            pause = await step()
        except Exception:
            log.exception("%s loop failed; it goes on in %.0fs", loop, interval)
            health.failed(loop)
            pause = interval
        else:
            health.progress(loop, interval, waiting=pause)
        await wait(stop, pause)
