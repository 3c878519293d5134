"""How far a poll cycle has got and how much is left: for the log lines that say how long a
read will take, and for the gauge of the seconds left.

Pure bookkeeping: the poller tells it of every page read and every destination done; the
budget turns the requests left into seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from exporter.budget import Pause, RequestBudget, Spend
from exporter.durations import format_duration

# A long read says how far it has got at most this often.
PROGRESS_EVERY = 60.0
# A destination whose read has not begun is expected to cost what the others are estimated to
# cost, on average; before any estimate, this many pages.
UNSTARTED_GUESS = 1


class Say(Enum):
    FIRST = "first"  # the one line that says the read will take a while, and why
    AGAIN = "again"  # how far it has got


@dataclass
class Telling:
    """When a long read says so, for every loop alike: once, before its first wait, then how
    far it has got at most every PROGRESS_EVERY."""

    announced: bool = False
    last_line: float = 0.0

    def what_to_say(self, now: float, seconds_left: float) -> Say | None:
        if not self.announced:
            if seconds_left <= 0:
                return None
            self.announced, self.last_line = True, now
            return Say.FIRST
        if now - self.last_line >= PROGRESS_EVERY:
            self.last_line = now
            return Say.AGAIN
        return None


@dataclass
class CycleProgress:
    destinations: tuple[str, ...]
    started: float
    pages_read: dict[str, int] = field(default_factory=dict)
    estimated: dict[str, int] = field(default_factory=dict)  # pages of each read, all in all
    done: set[str] = field(default_factory=set)
    spends: dict[str, Spend] = field(default_factory=dict)  # what each read is for
    telling: Telling = field(default_factory=Telling)

    def page_read(self, destination: str, spend: Spend, read: int, estimate: int | None) -> None:
        self.pages_read[destination] = read
        self.spends[destination] = spend
        if estimate is not None:
            self.estimated[destination] = max(estimate, read)
        elif destination in self.estimated:
            self.estimated[destination] = max(self.estimated[destination], read)

    def finished(self, destination: str) -> None:
        self.done.add(destination)

    def _expected(self, destination: str) -> int:
        """The pages the destination's read is expected to take in all."""
        if destination in self.done:
            return self.pages_read.get(destination, 0)
        if destination in self.estimated:
            return self.estimated[destination]
        known = list(self.estimated.values())
        typical = round(sum(known) / len(known)) if known else UNSTARTED_GUESS
        return max(typical, self.pages_read.get(destination, 0) + 1)

    def pages_expected(self) -> int:
        return sum(self._expected(destination) for destination in self.destinations)

    def pages_done(self) -> int:
        return sum(self.pages_read.values())

    def progress_line(self, seconds_left: float) -> str:
        return (
            f"read progress: {self.pages_done()} of about {self.pages_expected()} pages, "
            f"{len(self.done)} of {len(self.destinations)} destinations done, about "
            f"{format_duration(seconds_left)} left"
        )

    @property
    def slowest_spend(self) -> Spend:
        """The least valuable read still under way: its share of the budget paces the rest."""
        going = [spend for name, spend in self.spends.items() if name not in self.done]
        return max(going, default=Spend.POLL)

    def requests_left(self) -> int:
        """Requests the cycle still needs (at least one for each unfinished destination)."""
        left = 0
        for destination in self.destinations:
            if destination not in self.done:
                read = self.pages_read.get(destination, 0)
                left += max(self._expected(destination) - read, 1)
        return left


@dataclass
class InventoryProgress:
    """One inventory round's requests still to send, by listing ("projects", "addons", ...),
    as far as the round knows so far: each listing's count is set once the listing before it
    says how many there are (a project's addons once the projects are listed)."""

    left: dict[str, int]
    sent: int = 0
    telling: Telling = field(default_factory=Telling)
    seconds_left: float = 0.0  # as the budget estimated them at the last request

    def expect(self, listing: str, requests: int) -> None:
        self.left[listing] = requests

    def sent_one(self, listing: str) -> None:
        self.left[listing] = max(0, self.left.get(listing, 0) - 1)
        self.sent += 1

    def requests_left(self) -> int:
        return sum(self.left.values())

    def described(self) -> str:
        """What is left, e.g. "12 schedules, 3 volumes"."""
        parts = [f"{number} {listing}" for listing, number in self.left.items() if number]
        return ", ".join(parts) or "nothing"


# What each kind of read is called where a log line says what share of the budget it may fill.
READ_CALLED = {
    Spend.DISCOVERY: "a first read, or one that may reveal an unprotected addon,",
    Spend.BACKGROUND: "a resync, or the rest of a coverage round,",
    Spend.REFRESH: "a read of the schedules of addons that destinations list,",
}


def share_said(budget: RequestBudget, spend: Spend) -> str:
    """How much of the budget a read of this kind may still take now, and why no more."""
    allows = f"the budget allows {budget.allows_now(spend)} more now"
    if spend is Spend.POLL:
        return f"{allows} of rate_limit.requests_per_hour={budget.requests_per_hour}"
    return (
        f"{allows} ({READ_CALLED[spend]} may fill {budget.limit(spend)} of "
        f"rate_limit.requests_per_hour={budget.requests_per_hour}, the rest is kept for the "
        "polls)"
    )


def cycle_why_slow(
    progress: CycleProgress, budget: RequestBudget, seconds: float, now: float
) -> str:
    """The one line that says why a poll cycle will take a while, and what would shorten it."""
    paused = budget.window.paused_until - now
    if paused > 0:
        cause = (
            f"API requests are paused for {format_duration(paused)} ({budget.window.pause_reason})"
        )
        shorter = (
            "a lower rate_limit.reserve"
            if budget.window.pause_cause is Pause.RESERVE
            else "nothing but the API's window resetting"
        )
    else:
        cause = share_said(budget, progress.slowest_spend)
        shorter = (
            "a higher rate_limit.requests_per_hour, or fewer destinations per exporter "
            "(destinations:, --shard)"
        )
    return (
        f"this poll cycle needs about {progress.requests_left()} more requests for "
        f"{len(progress.destinations)} destinations (estimated from the pages read so far) "
        f"and {cause}: it will take about {format_duration(seconds)}; {shorter} would shorten it"
    )


def round_why_slow(
    progress: InventoryProgress, budget: RequestBudget, now: float, gives_way_at: float | None
) -> str:
    """The one line that says why an inventory round will take a while; `gives_way_at`: when
    its rest gives way to the next round (coverage.py)."""
    paused = budget.window.paused_until - now
    if paused > 0:
        cause = f"API requests are paused for {format_duration(paused)}"
    else:
        cause = share_said(budget, Spend.BACKGROUND)
    took = f"it will take about {format_duration(progress.seconds_left)}"
    if gives_way_at is not None and now + progress.seconds_left > gives_way_at:
        took = (
            f"alone it would take about {format_duration(progress.seconds_left)}, and it takes "
            "longer: each round that falls due meanwhile reads its listings and what may "
            "reveal an unprotected addon first"
        )
    return (
        f"the inventory needs about {progress.requests_left()} more requests "
        f"({progress.described()}) and {cause}: {took}; addons that no destination lists are "
        "read first. A higher rate_limit.requests_per_hour, a longer "
        "coverage.schedules_max_age or coverage.include would shorten it"
    )
