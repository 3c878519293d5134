"""An HTTP server that speaks the Northflank API as `shared/northflank-api` describes it.

Bearer auth, `/v1` and `/v1/teams/{team}` routes, cursor pagination (`per_page` at most 100,
default 50; `page` also works), `x-ratelimit-*` headers on a fixed hourly window with 429 once
it is spent, error bodies of the documented shape, and faults injected on request.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx

from exporter.simulator.data import Served, SimDestination
from exporter.simulator.pages import (
    Listing,
    Unavailable,
    answer_body,
    created_at,
    destination_of,
    error_body,
    listed_ident,
)
from exporter.simulator.runs import Listed

RATE_WINDOW = 3600.0
MAX_RECORDS = 200_000


@dataclass
class Faults:
    """What goes wrong, and how often; all off by default."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 60.0
    malformed_rate: float = 0.0
    destination_status: dict[str, int] = field(default_factory=dict)
    # Per destination, one of DESTINATION_FAULTS; bursts: that many 500/502/503s, then normal.
    destination_fault: dict[str, str] = field(default_factory=dict)
    bursts: dict[str, int] = field(default_factory=dict)
    latency_ms: float = 0.0  # every answer this much later


@dataclass(frozen=True)
class RateLimit:
    """The token's window as the API keeps it (x-ratelimit-*)."""

    per_hour: int = 1000
    used: int = 0  # requests other clients of the same token already spent in the first window
    retry_after: bool = False  # a 429 says Retry-After


DESTINATION_FAULTS = (
    "reset",  # the connection is reset half-way through the body
    "truncated",  # the body is cut short, Content-Length and all
    "stall",  # the answer comes after stall_seconds
    "no-cursor",  # hasNextPage is true and no cursor is sent
    "repeat-cursor",  # every page sends back the cursor it was asked with
    "cycle-cursor",  # every page after the first points back to the second
    "oversized",  # 50 more items than per_page asked for
    "drip",  # the answer comes one byte every 0.2 s, for as long as the client waits
)


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    served: bool  # the API answered (False: an error it raised; no transport fault follows)


class InProcess(httpx.AsyncBaseTransport):
    """The simulator's answers handed to an httpx client without a socket: the same routes,
    data, headers and API errors, none of the transport's faults. The alert backtest replays
    a month of polls this way: over loopback HTTP, a request cost its replay about 3 ms of
    CPU in the client and the server together, most of the replay's time."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        answer = self._simulator.answer(target, request.headers.get("Authorization", ""))
        self._simulator.record(target, answer.status)
        headers = {"Content-Type": "application/json", **answer.headers}
        return httpx.Response(answer.status, headers=headers, content=answer.body)


@dataclass(frozen=True)
class RequestRecord:
    at: float
    path: str
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: Simulator  # set right after it is made

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout, on purpose) is not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Simulator:
    def __init__(
        self,
        world: Served,
        *,
        token: str | tuple[str, ...],
        team: str | None = None,
        rate_limit: int | RateLimit = 1000,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = 5.0,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        """`token`: the one accepted, or several (many accounts of one API URL, all seeing the
        same data; the first is `self.token`); `rate_limit`: the window, or just its requests
        an hour; `address`: (host, port), port 0 for any free one."""
        limit = rate_limit if isinstance(rate_limit, RateLimit) else RateLimit(rate_limit)
        self.world = world
        tokens = (token,) if isinstance(token, str) else token
        self.token = tokens[0]
        self._tokens = frozenset(tokens)
        self.team = team
        self.rate_limit = limit.per_hour
        self.send_retry_after = limit.retry_after
        self.faults = faults or Faults()
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.requests: list[RequestRecord] = []
        self.stalled: list[str] = []  # paths whose answer is being held back, as they arrive
        # Cleared, every answer waits until it is set again: a test sees what happens while
        # nothing has been answered, without betting on how long an answer takes.
        self.gate = threading.Event()
        self.gate.set()
        self.raw_bodies: dict[str, bytes] = {}  # path: a body answered as it is (hostile ones)
        self.raw_pages: dict[str, list[bytes]] = {}  # path: pages answered by cursor number
        self.raw_headers: dict[str, dict[str, str]] = {}  # extra headers of a raw body
        self.raw_status: dict[str, int] = {}  # the status a raw body is answered with
        self._lock = threading.Lock()
        self._random = random.Random(world.seed)
        self._window_start: float | None = None
        # Requests other clients of the same token already spent in the first window.
        self._used = limit.used
        self._listings: dict[str, tuple[float, Listing]] = {}
        self._injected: dict[str, list[Any]] = {}
        self._placed: dict[str, list[Listed]] = {}
        self._server = _Server(address, _Handler)
        self._server.simulator = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.set()  # an answer still held back goes, and its thread ends
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- data

    def data_time(self) -> float:
        """The moment the data shows: the clock, rounded down to the refresh step."""
        now = self.clock()
        return now - now % self.refresh_seconds if self.refresh_seconds else now

    def listing(self, destination: SimDestination) -> Listing:
        moment = self.data_time()
        with self._lock:
            cached = self._listings.get(destination.id)
            if cached is not None and cached[0] == moment:
                return cached[1]
        backups = self.world.backups(destination, moment)
        extra = self._injected.get(destination.id, ())
        # Injected objects (possibly malformed on purpose) are listed as the newest ones.
        backups[:0] = [Listed(moment + 1 + i / 1000, raw) for i, raw in enumerate(extra)]
        placed = [
            listed for listed in self._placed.get(destination.id, ()) if listed.created <= moment
        ]
        if placed:
            backups = sorted(
                [*backups, *placed], key=lambda listed: (-listed.created, listed_ident(listed))
            )
        listing = Listing(backups)
        with self._lock:
            self._listings[destination.id] = (moment, listing)
        return listing

    def inject(self, destination_id: str, raw_objects: list[Any]) -> None:
        """List these objects, as given, ahead of the destination's generated backups."""
        with self._lock:
            self._injected[destination_id] = list(raw_objects)
            self._listings.clear()

    def add_backups(self, destination_id: str, backups: list[dict[str, Any]]) -> None:
        """List well-formed backups in their place by createdAt (manual ones, say)."""
        with self._lock:
            self._placed.setdefault(destination_id, []).extend(
                Listed(created_at(backup), backup) for backup in backups
            )
            self._listings.clear()

    def serve_raw(
        self, path: str, body: bytes, headers: dict[str, str] | None = None, status: int = 200
    ) -> None:
        """Answer GET `path` (any query) with exactly this body, status and headers (such as a
        Content-Encoding) from now on."""
        self.raw_bodies[path] = body
        self.raw_headers[path] = dict(headers or {})
        self.raw_status[path] = status

    def serve_pages(self, path: str, items: list[list[Any]]) -> None:
        """Answer GET `path` with these pages as they are (duplicates and all), chained by the
        cursors "1", "2", ...: a hostile listing the generated world could never produce."""
        pages = []
        for number, page in enumerate(items, start=1):
            pagination: dict[str, Any] = {"hasNextPage": number < len(items), "count": len(page)}
            if number < len(items):
                pagination["cursor"] = str(number)
            pages.append(json.dumps({"data": page, "pagination": pagination}).encode())
        self.raw_pages[path] = pages

    def scripted(self, path: str, query: dict[str, list[str]]) -> bytes | None:
        """The body set by serve_raw or serve_pages for this request, if any."""
        if path in self.raw_pages:
            cursor = query.get("cursor", ["0"])[0]
            pages = self.raw_pages[path]
            return pages[int(cursor)] if cursor.isdigit() and int(cursor) < len(pages) else None
        return self.raw_bodies.get(path)

    def set_world(self, world: Served) -> None:
        """Replace the data (destinations or addons appear and vanish)."""
        with self._lock:
            self.world = world
            self._listings.clear()

    def backups(self, destination_id: str) -> list[dict[str, Any]]:
        """What the API lists for a destination right now (for tests to compute expectations)."""
        destination = self.world.destination(destination_id)
        if destination is None:
            raise KeyError(destination_id)
        return [listed.backup for listed in self.listing(destination).backups]

    # --- rate limit and faults

    def rate_limit_headers(self) -> tuple[dict[str, str], bool]:
        """Spend one request of the window; the headers, and whether the window was spent."""
        now = self.clock()
        with self._lock:
            if self._window_start is None:
                self._window_start = now
            elif now >= self._window_start + RATE_WINDOW:
                self._window_start, self._used = now, 0
            spent = self._used >= self.rate_limit
            if not spent:
                self._used += 1
            reset = max(0, round(self._window_start + RATE_WINDOW - now))
            remaining = self.rate_limit - self._used
        headers = {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
        }
        if spent and self.send_retry_after:
            headers["Retry-After"] = str(reset)
        return headers, spent

    def take_burst(self, destination_id: str) -> int:
        """The status of the next error of a burst for this destination, or 0."""
        with self._lock:
            left = self.faults.bursts.get(destination_id, 0)
            if left <= 0:
                return 0
            self.faults.bursts[destination_id] = left - 1
            return (500, 502, 503)[left % 3]

    def draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def answer(self, target: str, authorization: str) -> Answer:
        """The answer to GET `target` (path and query), before any fault of the transport
        (`destination_fault`, stalls, truncation), which only the HTTP server plays."""
        url = urlsplit(target)
        headers: dict[str, str] = {}
        try:
            scheme, _, token = authorization.partition(" ")
            if scheme != "Bearer" or token not in self._tokens:
                raise Unavailable(401, "Unauthenticated: invalid or missing API token")
            headers, spent = self.rate_limit_headers()
            if spent:
                raise Unavailable(429, "Rate limit exceeded")
            query = parse_qs(url.query)
            body = self.scripted(url.path, query) or answer_body(self, url.path, query)
        except Unavailable as error:
            return Answer(error.status, headers, error_body(error.status, str(error)), False)
        status = self.raw_status.get(url.path, 200)
        return Answer(status, {**headers, **self.raw_headers.get(url.path, {})}, body, True)

    def record(self, path: str, status: int) -> None:
        with self._lock:
            self.requests.append(RequestRecord(self.clock(), path, status))
            if len(self.requests) > MAX_RECORDS:  # a long demo must not grow without end
                del self.requests[: MAX_RECORDS // 2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "northflank-simulator"
    # Headers and body go out as two writes; with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers on every keep-alive request.
    disable_nagle_algorithm = True

    @property
    def sim(self) -> Simulator:
        assert isinstance(self.server, _Server)
        return self.server.simulator

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept in memory instead."""

    def do_GET(self) -> None:
        sim = self.sim
        sim.gate.wait()
        if sim.faults.latency_ms:
            time.sleep(sim.faults.latency_ms / 1000.0)
        url = urlsplit(self.path)
        status, headers, body, served = sim.answer(self.path, self.headers.get("Authorization", ""))
        if not served:
            self._send(status, body, headers)
            return
        fault = sim.faults.destination_fault.get(destination_of(url.path) or "")
        if fault == "stall" or sim.draw(sim.faults.stall_rate):
            sim.stalled.append(url.path)
            time.sleep(sim.faults.stall_seconds)
        if fault == "truncated" or sim.draw(sim.faults.malformed_rate):
            body = body[: len(body) // 2]
        if fault == "reset":
            self._reset_midway(body, headers)
            return
        if fault == "drip":
            self._drip(body, headers)
            return
        self._send(status, body, headers)

    def _reset_midway(self, body: bytes, headers: dict[str, str]) -> None:
        self.sim.record(self.path, 200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        # SO_LINGER 0: close with a reset, not a polite end of stream.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _drip(self, body: bytes, headers: dict[str, str]) -> None:
        self.sim.record(self.path, 200)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return  # the client gave up: as it should

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.sim.record(self.path, status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
