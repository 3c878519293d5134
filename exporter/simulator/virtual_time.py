"""An event loop on virtual time, for tests and benchmarks that would otherwise wait on the
wall clock: its clock jumps to the next timer whenever nothing is ready to run, so an hour of
polls, or a request's deadline, passes at once and the same every time. Whatever the code
waits for must be in the loop (the simulator answering in process, `server.InProcess`, or a
mock transport): a real socket's answer would arrive after the clock had jumped."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

Result = TypeVar("Result")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = start
        # a timer fires once the clock is within this of it: at epoch seconds, the default (the
        # monotonic clock's nanosecond) is below a float's resolution, and none would fire
        self._clock_resolution = 1e-3

    def time(self) -> float:
        return self._now

    # asyncio's own loop internals (BaseEventLoop._ready, _scheduled, _run_once) have no
    # declared types: these three ignores are the only ones the type check allows.
    def _run_once(self) -> None:
        if not self._ready:  # type: ignore[attr-defined]
            timers = [t.when() for t in self._scheduled if not t.cancelled()]  # type: ignore[attr-defined]
            if timers:
                self._now = max(self._now, min(timers))
        super()._run_once()  # type: ignore[misc]


def run_virtually(main: Coroutine[Any, Any, Result], start: float = 0.0) -> Result:
    """Run `main` to its end on a fresh virtual-time loop."""
    loop = VirtualTimeLoop(start)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
