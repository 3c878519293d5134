"""What every long-running loop of one account runs with: built once per account (runtime.py),
used in place by its poller, its coverage watcher and every resource unit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from exporter.budget import SPENDING_LOOP, RequestBudget
from exporter.client import NorthflankClient
from exporter.config import Account, AddonRules, CoverageSettings, PollSettings, RestoreSettings
from exporter.exchange import RequestStats
from exporter.supervise import Health, Step, supervised, waiting_with


@dataclass(frozen=True, kw_only=True)
class AccountLoops:
    account: Account
    client: NorthflankClient
    stats: RequestStats
    poll: PollSettings
    addons: AddonRules
    expiry_warning_window: float
    health: Health
    coverage: CoverageSettings = field(default_factory=CoverageSettings)
    restores: RestoreSettings = field(default_factory=RestoreSettings)
    budget: RequestBudget | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # shows what a loop published on /metrics
    render: Callable[[], None] | None = None

    def coverage_line(self, text: str) -> str:
        """A coverage log line, naming the account first."""
        return f"account={self.account.name} coverage: {text}"

    async def run(self, loop: str, step: Step, stop: asyncio.Event) -> None:
        """Run `step` as the supervised loop `loop`, every poll interval at most, until `stop`.
        While the account's request budget holds this loop's requests back, the loop is
        waiting, not stalled (/-/healthy); every request the loop sends, from the tasks it
        starts too, is this loop's (`budget.SPENDING_LOOP`)."""
        budget = self.budget
        if budget is not None:
            self.health.held_by(
                loop, lambda: budget.held_until(loop), lambda: budget.what_waits(loop)
            )
        token = SPENDING_LOOP.set(loop)
        try:
            await supervised(
                loop,
                step,
                interval=self.poll.interval,
                health=self.health,
                stop=stop,
                wait=waiting_with(self.sleep),
            )
        finally:
            SPENDING_LOOP.reset(token)
