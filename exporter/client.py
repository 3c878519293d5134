"""Async client for the parts of the Northflank API the exporter reads: each endpoint, and
walking its pages as the official client does.

Pages are yielded one at a time (never a whole destination in memory). Each request goes
through `exchange.Exchange`: counted by endpoint and outcome; 429, 5xx, network errors and
unreadable bodies retried with jittered back-off; 401, 403, 404 and 400 not retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx

from exporter.api import (
    ADDON_BACKUPS_ENDPOINT,
    ADDON_SCHEDULES_ENDPOINT,
    BACKUPS_ENDPOINT,
    BUDGET,
    DESTINATION_ENDPOINT,
    DESTINATIONS_ENDPOINT,
    INVENTORY_MAX_ITEMS,
    PAGE_CAP_SLACK,
    PER_PAGE,
    TOO_LARGE,
    VOLUME_BACKUPS_ENDPOINT,
    VOLUME_SCHEDULES_ENDPOINT,
    ApiError,
    Page,
)
from exporter.backups import wire_item
from exporter.budget import RateLimitWindow, RequestBudget, Spend
from exporter.config import NorthflankSettings, PollSettings
from exporter.exchange import Connections, Exchange, RequestStats, http_pool
from exporter.model import MAX_SCHEDULES, Destination, encodable, is_id

log = logging.getLogger(__name__)

_NOT_RETRIED = frozenset({"400", "401", "403", "404", BUDGET})
_MAX_MESSAGE = 200


def _backups_of(items: Any, path: str, where: str) -> list[Any]:
    """A page's list of backups, checked: a list, and no longer than asked for."""
    if not isinstance(items, list):
        raise ApiError(f"GET {path}: {where} is not a list", "invalid_body")
    if len(items) > PER_PAGE:
        raise ApiError(
            f"GET {path}: a page holds {len(items)} backups, more than the {PER_PAGE} asked for",
            "oversized_page",
        )
    return items


def _page_count(page: dict[str, Any]) -> Any:
    """pagination.count as sent (the number of items on this page, in theory)."""
    pagination = page.get("pagination")
    return pagination.get("count") if isinstance(pagination, dict) else None


def _in_custom_destination(item: Any) -> bool:
    custom = item.get("customDestinationId") if isinstance(item, dict) else None
    return isinstance(custom, str) and bool(custom)


def _slug(name: str) -> str:
    """Northflank derives ids from names this way; used only when a list item lacks its id."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def parse_destination(raw: Any) -> Destination | None:
    """A destination list item or detail object; credential fields are never read."""
    if not isinstance(raw, dict):
        return None
    name = encodable(raw["name"]) if isinstance(raw.get("name"), str) else ""
    ident = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else _slug(name)
    if not is_id(ident):
        return None
    usage = encodable(raw["usage"]) if isinstance(raw.get("usage"), str) else ""
    return Destination(id=encodable(ident), name=name, usage=usage)


class NorthflankClient:
    def __init__(
        self,
        settings: NorthflankSettings,
        poll: PollSettings,
        stats: RequestStats,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: RequestBudget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        http: Connections | None = None,
    ) -> None:
        """`http`: a connection pool shared with the other accounts of the same API URL (whoever
        made it closes it); without one, the client makes and closes its own."""
        self._poll = poll
        self._prefix = f"/v1/teams/{quote(settings.team, safe='')}" if settings.team else "/v1"
        self._shapes_told: set[str] = set()  # endpoints whose undeclared list shape was logged
        self._owns_http = http is None
        self._http = http or http_pool(settings.api_url, poll, transport)
        # What the API says of the token's window: the budget's, when there is a budget.
        self.window = budget.window if budget is not None else RateLimitWindow(clock)
        self._exchange = Exchange(
            settings.token,
            poll,
            stats,
            self._http,
            budget=budget,
            window=self.window,
            sleep=sleep,
            clock=clock,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> NorthflankClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _path(self, suffix: str) -> str:
        return f"{self._prefix}{suffix}"

    async def list_destinations(self) -> list[Destination]:
        """Every backup destination. The clients declare `data.backupDestinations`; one
        version of the reference page shows `data` as the list itself: both are read."""
        items = await self.listed(
            DESTINATIONS_ENDPOINT, "/backup-destinations", "backupDestinations", spend=Spend.POLL
        )
        return [d for d in map(parse_destination, items) if d is not None]

    async def get_destination(self, destination_id: str) -> Destination:
        path = self._path(f"/backup-destinations/{quote(destination_id, safe='')}")
        body = await self._exchange.get_json(DESTINATION_ENDPOINT, path, {})
        destination = parse_destination(body.get("data"))
        if destination is None:
            raise ApiError(f"GET {path}: data is not a destination", "invalid_body")
        return destination

    async def backup_pages(
        self, destination_id: str, spend: Spend = Spend.POLL
    ) -> AsyncIterator[Page]:
        """Yield the backup records of a destination, one page at a time, each request spending
        the budget as `spend`."""
        path = self._path(f"/backup-destinations/{quote(destination_id, safe='')}/backups")
        async for page in self._pages(BACKUPS_ENDPOINT, path, spend):
            data = _backups_of(page.get("data"), path, "data")
            yield Page([wire_item(item) for item in data], _page_count(page))

    async def listed(
        self,
        endpoint: str,
        suffix: str,
        key: str | None,
        *,
        optional: bool = False,
        spend: Spend = Spend.BACKGROUND,
        max_items: int = INVENTORY_MAX_ITEMS,
    ) -> list[Any]:
        """Every item of a listing read whole, all pages: `data.{key}[]`, or with `key` None
        `data[]` itself, as the clients declare each endpoint (the other shape is read too,
        and logged once). `optional`: a `data` without the key holds none. Inventory reads
        spend the budget as background unless they may reveal a database nothing protects.
        Cut at INVENTORY_MAX_ITEMS items, and as endless past PAGE_CAP_SLACK empty pages."""
        path = self._path(suffix)
        items: list[Any] = []
        empty_in_a_row = pages = 0
        most_pages = -(-max_items // PER_PAGE) + PAGE_CAP_SLACK
        async for page in self._pages(endpoint, path, spend):
            pages += 1
            found = self._items(page, endpoint, path, key, optional=optional)
            empty_in_a_row = 0 if found else empty_in_a_row + 1
            if pages > most_pages:
                raise ApiError(
                    f"GET {path}: more than {most_pages} pages, past what the cap of "
                    f"{max_items} items takes: cut as endless",
                    "too_many_pages",
                )
            if empty_in_a_row > PAGE_CAP_SLACK:
                raise ApiError(
                    f"GET {path}: {empty_in_a_row} empty pages in a row, each pointing to "
                    "another: cut as endless",
                    "too_many_pages",
                )
            items.extend(found)
            if len(items) > max_items:
                raise ApiError(
                    f"GET {path}: more than {max_items} items, the cap for this listing: cut "
                    "(docs/coverage.md, Limits)",
                    TOO_LARGE,
                )
        return items

    def _items(
        self,
        page: dict[str, Any],
        endpoint: str,
        path: str,
        key: str | None,
        *,
        optional: bool = False,
    ) -> list[Any]:
        """A page's list, where the clients declare it (`data.{key}`, or `data` itself when
        `key` is None) or in the other of the two shapes, which is logged once per endpoint."""
        data = page.get("data")
        if key is None:
            if isinstance(data, list):
                return data
            wrapped = None
            if isinstance(data, dict):
                wrapped = next((v for v in data.values() if isinstance(v, list)), None)
            if isinstance(wrapped, list):
                self._shape_met(endpoint, "inside an object in data")
                return wrapped
            raise ApiError(f"GET {path}: data is not a list", "invalid_body")
        if isinstance(data, dict):
            items = data.get(key)
            if isinstance(items, list):
                return items
            if items is None and optional:
                return []  # left out, or null: there are none
        elif isinstance(data, list):
            self._shape_met(endpoint, "data itself")
            return data
        raise ApiError(f"GET {path}: data.{key} is not a list", "invalid_body")

    def _shape_met(self, endpoint: str, shape: str) -> None:
        if endpoint in self._shapes_told:
            return
        self._shapes_told.add(endpoint)
        log.info(
            "GET %s: the list is %s, not where the clients declare it; both are read",
            endpoint,
            shape,
        )

    async def addon_schedules(
        self, project: str, addon: str, spend: Spend = Spend.BACKGROUND
    ) -> list[Any]:
        """The raw entries of an addon's backup-schedules (`data.schedules[]`, which the
        clients declare optional: left out, the addon has none), all pages."""
        return await self._schedules(ADDON_SCHEDULES_ENDPOINT, project, "addons", addon, spend)

    async def volume_schedules(
        self, project: str, volume: str, spend: Spend = Spend.BACKGROUND
    ) -> list[Any]:
        """A volume's backup-schedules, read when its item leaves `backupSchedules` out."""
        return await self._schedules(VOLUME_SCHEDULES_ENDPOINT, project, "volumes", volume, spend)

    async def _schedules(
        self, endpoint: str, project: str, kind: str, item: str, spend: Spend
    ) -> list[Any]:
        """`data.schedules[]` of an addon's or a volume's backup-schedules, cut at MAX_SCHEDULES."""
        suffix = (
            f"/projects/{quote(project, safe='')}/{kind}/{quote(item, safe='')}/backup-schedules"
        )
        return await self.listed(
            endpoint, suffix, "schedules", optional=True, spend=spend, max_items=MAX_SCHEDULES
        )

    async def volume_backups(
        self, project: str, volume: str, spend: Spend = Spend.BACKGROUND
    ) -> list[Any]:
        """Every backup of a volume (`data[]` itself), all pages."""
        suffix = f"/projects/{quote(project, safe='')}/volumes/{quote(volume, safe='')}/backups"
        return await self.listed(VOLUME_BACKUPS_ENDPOINT, suffix, None, spend=spend)

    async def addon_backup_pages(
        self, addon: str, spend: Spend = Spend.POLL
    ) -> AsyncIterator[Page]:
        """Yield the backups of `addon` ("projectId/addonId") kept in Northflank-managed storage,
        one page at a time. The listing also shows the addon's backups in custom destinations
        (with a customDestinationId): those are counted by their destination, so they are left
        out here, and the page's count with them."""
        project, _, ident = addon.partition("/")
        path = self._path(
            f"/projects/{quote(project, safe='')}/addons/{quote(ident, safe='')}/backups"
        )
        async for page in self._pages(ADDON_BACKUPS_ENDPOINT, path, spend):
            data = page.get("data")
            items = _backups_of(
                data.get("backups") if isinstance(data, dict) else None, path, "data.backups"
            )
            kept = [wire_item(item) for item in items if not _in_custom_destination(item)]
            count = _page_count(page)
            if isinstance(count, int) and not isinstance(count, bool):
                count -= len(items) - len(kept)
            yield Page(kept, count)

    async def _pages(
        self, endpoint: str, path: str, spend: Spend = Spend.POLL
    ) -> AsyncIterator[dict[str, Any]]:
        """Walk a list endpoint as the official Python client does: by cursor, or by page
        number when a page says there is another and sends no cursor; an answer without a
        pagination object is the last page. Guarded against repeated cursors and endless
        lists."""
        params: dict[str, str | int] = {"per_page": PER_PAGE}
        seen: set[str] = set()
        for number in range(1, self._poll.max_pages + 1):
            body = await self._exchange.get_json(endpoint, path, params, spend)
            yield body
            following = self._next_params(body, path, seen, number)
            if following is None:
                return
            params = following
        raise ApiError(f"GET {path}: more than {self._poll.max_pages} pages", "too_many_pages")

    @staticmethod
    def _next_params(
        body: dict[str, Any], path: str, seen: set[str], number: int
    ) -> dict[str, str | int] | None:
        """The query of the page after page `number`, or None after the last. A cursor it
        sends is remembered in `seen`: one sent twice is an endless walk."""
        pagination = body.get("pagination")
        if not isinstance(pagination, dict) or not pagination:
            return None  # as the official client reads it: one page, the last
        cursor = pagination.get("cursor")
        cursor = cursor if isinstance(cursor, str) and cursor else None
        # Like the official client: a cursor alone also means that another page exists.
        if pagination.get("hasNextPage") is not True and cursor is None:
            return None
        if cursor is None:
            return {"per_page": PER_PAGE, "page": number + 1}
        if cursor in seen:
            raise ApiError(f"GET {path}: the API repeated a cursor", "bad_cursor")
        seen.add(cursor)
        return {"per_page": PER_PAGE, "cursor": cursor}
