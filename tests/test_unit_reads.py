"""Reading a unit's keys (exporter/unit_reads.py): the rounds' loop and a cadenced loop may walk
the same unit (the managed listings are read in both), and a key is never read twice at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Set

from exporter.api import ADDON_BACKUPS_ENDPOINT
from exporter.budget import Spend
from exporter.resources.unit import Listing, Pass, Reads, Unit
from exporter.unit_reads import RoundPart, UnitReads
from tests.conftest import loops_of_no_api, run


class Held(Unit[str, str, str]):
    """A unit of two keys whose reads wait until released, counting each fetch."""

    reads = Reads(Listing.MANAGED_BACKUPS, ADDON_BACKUPS_ENDPOINT, "x", "y")
    passes = frozenset({Pass.ROUND, Pass.CADENCE})
    concurrent = True

    def __init__(self, loops, release: asyncio.Event) -> None:
        super().__init__(loops)
        self.release = release
        self.fetched: list[str] = []
        self.folded: list[str] = []

    def wanted(self) -> Mapping[str, str]:
        return {"a": "a", "b": "b"}

    def spend(self, key: str) -> Spend:
        return Spend.POLL

    async def fetch(self, key: str, subject: str) -> str:
        self.fetched.append(key)
        await self.release.wait()
        return key

    def fold(self, key: str, subject: str, answer: str, now: float) -> bool:
        self.folded.append(key)
        return True

    def forget_all_but(self, keys: Set[str]) -> None:
        pass


class NeverGivesWay:
    def gives_way(self, spend: Spend) -> bool:
        return False

    def before_read(self, listing: Listing, key: object) -> None:
        pass

    def after_read(self, listing: Listing) -> None:
        pass


def test_a_key_read_by_one_loop_is_not_read_again_by_another_meanwhile():
    async def scenario():
        loops = loops_of_no_api()
        release = asyncio.Event()
        unit = Held(loops, release)
        reads = UnitReads(loops)
        in_round = asyncio.ensure_future(
            reads.walk(unit, RoundPart(Spend.POLL, NeverGivesWay()), asyncio.Semaphore(4))
        )
        await asyncio.sleep(0)  # the round's reads of a and b are under way
        on_cadence = asyncio.ensure_future(reads.walk(unit, None, asyncio.Semaphore(4)))
        await asyncio.sleep(0)
        release.set()
        assert await in_round and await on_cadence
        await loops.client.aclose()
        return unit

    unit = run(scenario())
    assert sorted(unit.fetched) == ["a", "b"]
    assert sorted(unit.folded) == ["a", "b"]
