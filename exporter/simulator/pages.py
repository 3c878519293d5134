"""What each route of the simulated API answers, a page at a time: the destinations' backups by
cursor, the inventory by offset, as Northflank's official clients declare each answer; and the
cursor faults that bend a page."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from exporter.simulator.data import Served
from exporter.simulator.runs import Listed

if TYPE_CHECKING:
    from exporter.simulator.server import Simulator


MAX_PER_PAGE = 100


DEFAULT_PER_PAGE = 50


_ROUTE = re.compile(
    r"^/v1(?:/teams/(?P<team>[^/]+))?/backup-destinations"
    r"(?:/(?P<destination>[^/]+)(?P<backups>/backups)?)?/?$"
)


# The inventory: projects, their addons and volumes, an addon's schedules and backups.
_INVENTORY = re.compile(
    r"^/v1(?:/teams/(?P<team>[^/]+))?/projects"
    r"(?:/(?P<project>[^/]+)/(?P<kind>addons|volumes)"
    r"(?:/(?P<item>[^/]+)/(?P<what>backup-schedules|backups|restores))?)?/?$"
)


def created_at(backup: Any) -> float:
    """Where an injected backup sorts: its createdAt as epoch seconds, 0 when unreadable."""
    value = backup.get("createdAt") if isinstance(backup, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)
    if not isinstance(value, str):
        return 0.0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Unavailable(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def listed_ident(listed: Listed) -> str:
    backup = listed.backup
    return str(backup.get("id", "")) if isinstance(backup, dict) else ""


def encode_cursor(listed: Listed) -> str:
    text = f"{listed.created!r}|{listed_ident(listed)}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, ident = text.split("|", 1)
        return float(created), ident
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unavailable(400, "Invalid cursor") from None


class Listing:
    """One destination's backups at one moment, with the keys pages are cut by."""

    def __init__(self, backups: list[Listed]) -> None:
        self.backups = backups
        self.keys = [(-listed.created, listed_ident(listed)) for listed in backups]
        self.pages: dict[tuple[int, int], bytes] = {}


def error_body(status: int, message: str) -> bytes:
    return json.dumps(
        {"error": {"status": status, "message": message, "id": f"sim-{status}", "details": {}}}
    ).encode()


def answer_body(sim: Simulator, path: str, query: dict[str, list[str]]) -> bytes:
    inventory = _INVENTORY.match(path)
    if inventory is not None:
        return _inventory_answer(sim, inventory, query)
    match = _ROUTE.match(path)
    if match is None:
        raise Unavailable(404, "Route not found")
    if match["team"] is not None and match["team"] != sim.team:
        raise Unavailable(404, "Team not found")
    forced = sim.faults.destination_status.get(match["destination"] or "")
    if forced:
        raise Unavailable(forced, f"Injected HTTP {forced}")
    burst = sim.take_burst(match["destination"] or "")
    if burst:
        raise Unavailable(burst, f"Injected HTTP {burst}")
    if sim.draw(sim.faults.rate_limit_rate):
        raise Unavailable(429, "Rate limit exceeded")
    if sim.draw(sim.faults.error_rate):
        raise Unavailable(500, "Internal server error")
    per_page, page, cursor = _page_params(query)
    if match["destination"] is None:
        return _destination_list(sim.world, per_page, page, cursor)
    destination = sim.world.destination(match["destination"])
    if destination is None:
        raise Unavailable(404, "Backup destination not found")
    if match["backups"] is None:
        return json.dumps({"data": destination.api_object(detail=True)}).encode()
    fault = sim.faults.destination_fault.get(destination.id)
    if fault == "oversized":
        per_page += 50
    listing = sim.listing(destination)
    body = _backup_page(listing, per_page, page, cursor)
    if fault in ("no-cursor", "repeat-cursor", "cycle-cursor"):
        first = listing.backups[min(per_page, len(listing.backups)) - 1]
        body = _bend_cursor(body, fault, cursor, encode_cursor(first))
    return body


def destination_of(path: str) -> str | None:
    match = _ROUTE.match(path)
    return match["destination"] if match else None


def _bend_cursor(body: bytes, fault: str, asked: str | None, first: str) -> bytes:
    page = json.loads(body)
    pagination = page["pagination"]
    if fault == "cycle-cursor" and asked not in (None, first):
        pagination.update(hasNextPage=True, cursor=first)  # every later page points back
    elif not pagination.get("hasNextPage"):
        return body
    elif fault == "no-cursor":
        pagination.pop("cursor", None)
    elif fault == "repeat-cursor" and asked is not None:
        pagination["cursor"] = asked
    return json.dumps(page).encode()


def _page_params(query: dict[str, list[str]]) -> tuple[int, int, str | None]:
    try:
        per_page = int(query.get("per_page", [str(DEFAULT_PER_PAGE)])[0])
        page = int(query.get("page", ["1"])[0])
    except ValueError:
        raise Unavailable(400, "per_page and page must be integers") from None
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise Unavailable(400, f"per_page must be between 1 and {MAX_PER_PAGE}")
    if page < 1:
        raise Unavailable(400, "page must be at least 1")
    cursor = query.get("cursor", [None])[0]
    return per_page, page, cursor


def _pagination(has_next: bool, cursor: str | None, count: int) -> dict[str, Any]:
    pagination: dict[str, Any] = {"hasNextPage": has_next, "count": count}
    if has_next and cursor is not None:
        pagination["cursor"] = cursor
    return pagination


def _encoded(page: dict[str, Any]) -> bytes:
    """A page as JSON: by msgspec, the replay's largest cost (bench/README.md, "Speed
    choices"), but text msgspec cannot write as UTF-8 (a lone surrogate) is sent as the API
    sends it, an escape."""
    try:
        return msgspec.json.encode(page)
    except UnicodeEncodeError:
        return json.dumps(page, separators=(",", ":")).encode()


def _backup_page(listing: Listing, per_page: int, page: int, cursor: str | None) -> bytes:
    if cursor is not None:
        created, ident = _decode_cursor(cursor)
        start = bisect.bisect_right(listing.keys, (-created, ident))
    else:
        start = (page - 1) * per_page
    cached = listing.pages.get((start, per_page))
    if cached is not None:
        return cached
    chunk = listing.backups[start : start + per_page]
    has_next = start + per_page < len(listing.backups)
    body = _encoded(
        {
            "data": [listed.backup for listed in chunk],
            "pagination": _pagination(
                has_next, encode_cursor(chunk[-1]) if chunk else None, len(chunk)
            ),
        }
    )
    listing.pages[(start, per_page)] = body
    return body


def _offset_page(
    items: list[Any], per_page: int, page: int, cursor: str | None
) -> tuple[list[Any], dict[str, Any]]:
    """A page of a list cut by offset, with the cursor of the next one."""
    start = (page - 1) * per_page
    if cursor is not None:
        try:
            start = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, binascii.Error):
            raise Unavailable(400, "Invalid cursor") from None
    chunk = items[start : start + per_page]
    end = start + len(chunk)
    next_cursor = base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=")
    return chunk, _pagination(end < len(items), next_cursor, len(chunk))


def _inventory_answer(sim: Simulator, match: re.Match[str], query: dict[str, list[str]]) -> bytes:
    """GET /v1/projects, .../addons, .../volumes, and an addon's or a volume's backup-schedules
    and backups."""
    if match["team"] is not None and match["team"] != sim.team:
        raise Unavailable(404, "Team not found")
    per_page, page, cursor = _page_params(query)
    world, project = sim.world, match["project"]
    key: str | None
    if project is None:
        key, items = "projects", world.projects()
    elif project not in {listed["id"] for listed in world.projects()}:
        raise Unavailable(404, "Project not found")
    elif match["kind"] == "volumes":
        key, items = _volume_answer(sim, project, match["item"], match["what"])
    elif match["item"] is None:
        key, items = "addons", world.addons(project, sim.clock())
    elif match["item"] not in {addon["id"] for addon in world.addons(project, sim.clock())}:
        raise Unavailable(404, "Addon not found")
    elif match["what"] == "backup-schedules":
        key, items = "schedules", world.addon_schedules(project, match["item"])
    elif match["what"] == "restores":
        key, items = "restores", world.addon_restores(project, match["item"], sim.clock())
    else:
        listed = world.addon_backups(project, match["item"], sim.clock())
        key, items = "backups", [entry.backup for entry in listed]
    chunk, pagination = _offset_page(items, per_page, page, cursor)
    return json.dumps({"data": _shaped(key, chunk), "pagination": pagination}).encode()


def _volume_answer(
    sim: Simulator, project: str, volume: str | None, what: str | None
) -> tuple[str | None, list[Any]]:
    """A project's volumes, a volume's backups (both `data` as the list itself, as the
    clients declare), or its backup-schedules (`data.schedules`)."""
    world = sim.world
    if volume is None:
        return None, world.volumes_of(project)
    if world.volume(project, volume) is None or what == "restores":
        raise Unavailable(404, "Volume not found")
    if what == "backup-schedules":
        return "schedules", world.volume_schedules(project, volume)
    return None, [listed.backup for listed in world.volume_backups(project, volume, sim.clock())]


def _shaped(key: str | None, chunk: list[Any]) -> Any:
    """`data` as the clients declare it: the list itself (key None), or an object holding it.
    A schedules list is optional there, and left out when there is none."""
    if key is None:
        return chunk
    if key == "schedules" and not chunk:
        return {}
    return {key: chunk}


def _destination_list(world: Served, per_page: int, page: int, cursor: str | None) -> bytes:
    chunk, pagination = _offset_page(list(world.destinations), per_page, page, cursor)
    return json.dumps(
        {
            "data": {"backupDestinations": [destination.api_object() for destination in chunk]},
            "pagination": pagination,
        }
    ).encode()
