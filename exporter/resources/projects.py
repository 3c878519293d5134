"""Projects: what the rest of the inventory is listed under. Publishes nothing of its own.

`PerProject` is what a listing that each project has (its addons, its volumes) shares."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from urllib.parse import quote

from exporter.api import PROJECTS_ENDPOINT
from exporter.budget import Spend
from exporter.inventory import GONE_PROJECT_STATUSES, Project, read_project
from exporter.resources.unit import Listing, Reads, Unit, read_all

if TYPE_CHECKING:
    from exporter.context import AccountLoops

Whole = tuple[()]  # the one key of a listing read whole
Item = TypeVar("Item")


class Projects(Unit[Whole, None, list[Any]]):
    reads = Reads(
        Listing.PROJECTS, PROJECTS_ENDPOINT, "ListProjectsEndpoint", "ListProjectsResponse"
    )
    blocks_round = True  # without projects, nothing else can be listed

    def __init__(self, loops: AccountLoops) -> None:
        super().__init__(loops)
        # the projects listed, less those going or gone (their addons are not listed)
        self.projects: dict[str, Project] = {}

    def wanted(self) -> Mapping[Whole, None]:
        return {(): None}

    def spend(self, key: Whole) -> Spend:
        return Spend.DISCOVERY

    async def fetch(self, key: Whole, subject: None) -> list[Any]:
        return await self.loops.client.listed(
            PROJECTS_ENDPOINT, "/projects", "projects", spend=self.spend(key)
        )

    def fold(self, key: Whole, subject: None, answer: list[Any], now: float) -> bool:
        projects = {}
        for project in read_all(self.loops, answer, self.reads.listing, read_project):
            if project.status not in GONE_PROJECT_STATUSES:
                projects[project.id] = project
        self.projects = projects
        return True

    def forget_all_but(self, keys: Set[Whole]) -> None:
        return None


class PerProject(Unit[str, Project, list[Any]], Generic[Item]):
    """A listing each project has, keyed by project: a read that fails keeps what that
    project's last read said. Its items are kept by (project, id), in project order."""

    path: ClassVar[str]  # the listing under /projects/{projectId}/
    item_key: ClassVar[str | None]  # `data.{item_key}[]`, or `data[]` itself
    # Paced by change: a project whose listing came back unchanged is read every other round,
    # then every fourth..., up to coverage.schedules_max_age; a change, a failure or a new
    # project brings it back to every round. False: every round.
    paced: ClassVar[bool] = False

    def __init__(self, loops: AccountLoops, projects: Projects) -> None:
        super().__init__(loops)
        self._projects = projects
        self._by_project: dict[str, tuple[Item, ...]] = {}
        self.items: dict[tuple[str, str], Item] = {}
        self._every: dict[str, int] = {}  # rounds between two reads of each project's listing
        self._rounds_left: dict[str, int] = {}  # rounds until it is read again

    @abstractmethod
    def read_item(self, raw: Any, project: Project) -> Item:
        """One item of the listing (raises `InvalidItem`)."""

    @abstractmethod
    def ident(self, item: Item) -> str: ...

    def wanted(self) -> Mapping[str, Project]:
        return self._projects.projects

    async def fetch(self, key: str, subject: Project) -> list[Any]:
        path = f"/projects/{quote(key, safe='')}/{self.path}"
        return await self.loops.client.listed(
            self.reads.endpoint, path, self.item_key, spend=self.spend(key)
        )

    def begin_round(self) -> None:
        for key in self._rounds_left:
            self._rounds_left[key] -= 1

    def due(self, key: str, subject: Project, now: float) -> bool:
        return self._rounds_left.get(key, 0) <= 0

    def fold(self, key: str, subject: Project, answer: list[Any], now: float) -> bool:
        listing = self.reads.listing
        listed = read_all(self.loops, answer, listing, lambda raw: self.read_item(raw, subject))
        wants = self.loops.coverage.wants
        found = tuple(item for item in listed if wants(key, self.ident(item)))
        self._pace(key, unchanged=self._by_project.get(key) == found)
        self._by_project[key] = found
        self._gather(now)
        return True

    def failed(self, key: str, subject: Project, now: float) -> None:
        self._pace(key, unchanged=False)

    def _pace(self, key: str, unchanged: bool) -> None:
        coverage = self.loops.coverage
        longest = max(1, int(coverage.schedules_max_age // coverage.interval))
        every = min(2 * self._every.get(key, 1), longest) if self.paced and unchanged else 1
        self._every[key] = self._rounds_left[key] = every

    def forget_all_but(self, keys: Set[str]) -> None:
        for gone in set(self._by_project) - keys:
            del self._by_project[gone]
        for paced in (self._every, self._rounds_left):
            for gone in set(paced) - keys:
                del paced[gone]
        self._gather(self.loops.clock())

    def _gather(self, now: float) -> None:
        every = {}
        for project, found in sorted(self._by_project.items()):
            for item in found:
                every[(project, self.ident(item))] = item
        self.items = every

    def rows(self) -> tuple[Item, ...]:
        return tuple(self.items.values())
