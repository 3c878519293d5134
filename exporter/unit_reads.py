"""Reading a resource unit's due keys, for the coverage rounds and the cadenced loops alike: at
most `poll.concurrency` at a time for each loop (a read waiting for the budget holds its place,
and must not hold up another loop's), never one key twice at once (a unit read in rounds and on
its cadence, the managed listings, could be), and each failure told once (`ListingProblems`)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, NamedTuple, Protocol

from exporter.api import BUDGET, TOKEN_PROBLEMS, TOO_LARGE, TOO_MANY_PAGES, ApiError
from exporter.budget import Spend
from exporter.context import AccountLoops
from exporter.resources.unit import Listing, Unit

log = logging.getLogger("exporter.coverage")

# The codes of a listing cut short: at its size cap or as an endless walk.
CUT = frozenset({TOO_LARGE, TOO_MANY_PAGES})

AnyUnit = Unit[Any, Any, Any]


class RoundHooks(Protocol):
    """What a round does around each of its reads (coverage.CoverageWatcher)."""

    def gives_way(self, spend: Spend) -> bool:
        """Whether the rest of the round stops here (the next round is due)."""

    def before_read(self, listing: Listing, key: Any) -> None: ...

    def after_read(self, listing: Listing) -> None: ...


class RoundPart(NamedTuple):
    """A walk that is part of a round: the keys of one spend, read as the round says."""

    spend: Spend
    hooks: RoundHooks

    def gives_way(self) -> bool:
        return self.hooks.gives_way(self.spend)


class UnitReads:
    def __init__(self, loops: AccountLoops) -> None:
        self._loops = loops
        self.problems = ListingProblems(loops)
        self._in_flight: set[tuple[Listing, Any]] = set()

    async def walk(
        self,
        unit: AnyUnit,
        part: RoundPart | None,
        limit: asyncio.Semaphore,
    ) -> bool:
        """Read the unit's keys that are due (in a round, those of its spend); forget the keys
        it no longer wants. True when every read was used."""
        unit.before_walk()
        wanted = unit.wanted()
        unit.forget_all_but(set(wanted))
        now = self._loops.clock()
        listing = unit.reads.listing
        spend = None if part is None else part.spend
        due = [
            (key, subject)
            for key, subject in wanted.items()
            if (spend is None or unit.spend(key) == spend)
            and (listing, key) not in self._in_flight
            and unit.due(key, subject, now)
        ]
        # first reads before re-reads: on a large account the rest of a round spans many
        # rounds, and a key never read is worth more than one read hours ago
        due.sort(key=lambda item: not unit.never_read(item[0]))
        if unit.concurrent:
            reads = (self._bounded(limit, unit, key, subject, part) for key, subject in due)
            return all(await asyncio.gather(*reads))
        ok = True
        for key, subject in due:
            if part is not None and part.gives_way():
                break
            ok = await self._read(unit, key, subject, part) and ok
        return ok

    async def _bounded(
        self,
        limit: asyncio.Semaphore,
        unit: AnyUnit,
        key: Any,
        subject: Any,
        part: RoundPart | None,
    ) -> bool:
        async with limit:
            if part is not None and part.gives_way():
                return True
            return await self._read(unit, key, subject, part)

    async def _read(self, unit: AnyUnit, key: Any, subject: Any, part: RoundPart | None) -> bool:
        """One request of a unit, told to the round it is part of."""
        listing = unit.reads.listing
        if (listing, key) in self._in_flight:  # another loop's read of it is under way
            return True
        hooks = None if part is None else part.hooks
        if hooks is not None:
            hooks.before_read(listing, key)
        self._in_flight.add((listing, key))
        try:
            answer = await unit.fetch(key, subject)
        except ApiError as error:
            self.problems.failed(unit, key, error)
            unit.failed(key, subject, self._loops.clock())
            return False
        finally:
            self._in_flight.discard((listing, key))
            if hooks is not None:
                hooks.after_read(listing)
        return unit.fold(key, subject, answer, self._loops.clock())


class ListingProblems:
    """What went wrong with an account's listings: logged once each, counted, left out."""

    def __init__(self, loops: AccountLoops) -> None:
        self._loops = loops
        self.told: set[tuple[Listing, str]] = set()  # (listing, code) problems already logged
        self.cut: Counter[str] = Counter()  # listings cut at a cap or as endless
        # requests the budget left out of the last round, by listing (never waiting)
        self.left_out: dict[str, int] = {}

    def failed(self, unit: AnyUnit, key: Any, error: ApiError) -> None:
        """One line per listing and code until a round reads everything: a token without a
        permission fails the same way on every round, and one line says so. A listing the
        budget did not allow (`--once`) is counted in `left_out`, which says it all at once."""
        listing = unit.reads.listing
        if error.code == BUDGET:
            self.left_out[listing.words] = self.left_out.get(listing.words, 0) + 1
            return
        if error.code in CUT:
            self.cut[listing.value] += 1
        if (listing, error.code) in self.told:
            return
        self.told.add((listing, error.code))
        if error.code in TOKEN_PROBLEMS:
            log.warning(
                self._loops.coverage_line(
                    "the API token may not list %s (HTTP %s): it needs the permission %s. "
                    "Destinations are still polled; northflank_coverage_up is 0 (%s)"
                ),
                listing.words,
                error.code,
                unit.reads.permission,
                error,
            )
        else:
            log.warning(
                self._loops.coverage_line("listing %s%s failed code=%s: %s"),
                listing.words,
                _of(key),
                error.code,
                error,
            )


def _of(key: Any) -> str:
    """Whose listing failed, for the log: " of project/addon", or nothing for the account's."""
    if isinstance(key, tuple):
        return " of " + "/".join(str(part) for part in key) if key else ""
    return f" of {key}" if key else ""
