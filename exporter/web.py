"""The exporter's HTTP endpoints: /metrics, a landing page, /-/healthy and /-/ready."""

from __future__ import annotations

import html
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from exporter import __version__
from exporter.exposition import Exposition
from exporter.supervise import STALL_INTERVALS
from exporter.webconfig import BasicAuth, WebConfig

# A TLS handshake, and each part of a request, must arrive within this long.
HANDSHAKE_TIMEOUT = 10.0
READ_TIMEOUT = 10.0
# Scrapes queued while every thread is busy (Python's default of 5 refuses bursts).
LISTEN_BACKLOG = 128
# Connections served at once, each on a thread (an idle one closes after READ_TIMEOUT); more
# are closed as they arrive, so no number of clients grows threads without bound.
MAX_CONNECTIONS = 2048

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

LANDING_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Northflank Backup Exporter</title></head>
<body>
<h1>Northflank Backup Exporter</h1>
<p>Version {version}. Backup metrics of Northflank backup destinations, for Prometheus.</p>
<ul>
<li><a href="/metrics">Metrics</a></li>
<li><a href="/-/healthy">Health</a> and <a href="/-/ready">readiness</a></li>
</ul>
</body></html>
"""


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def make_app(
    exposition: Exposition,
    ready: Callable[[], bool],
    stalled: Callable[[], list[str]] = list,
    waits: Callable[[], list[str]] = list,
) -> WsgiApp:
    """`stalled` names the long-running loops that stopped making progress (/-/healthy);
    `waits` says what the others wait for, a line each (shown under Healthy)."""
    landing = LANDING_PAGE.format(version=html.escape(__version__)).encode()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "use GET\n")
        if environ["REQUEST_METHOD"] == "HEAD":
            list(route(environ, start_response))  # the same headers, Content-Length included
            return []
        return route(environ, start_response)

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            response = exposition.respond(
                environ.get("HTTP_ACCEPT"),
                environ.get("HTTP_ACCEPT_ENCODING"),
                parse_qs(environ.get("QUERY_STRING", "")).get("name[]", ()),
            )
            start_response("200 OK", response.headers)
            return response.chunks
        if path == "/":
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(landing))),
                ],
            )
            return [landing]
        if path == "/-/healthy":
            stuck = stalled()
            if stuck:
                return _plain(
                    start_response,
                    "503 Service Unavailable",
                    f"Unhealthy: no progress for {STALL_INTERVALS} intervals: {', '.join(stuck)}\n",
                )
            told = "".join(f"{line}\n" for line in waits())
            return _plain(start_response, "200 OK", f"Healthy\n{told}")
        if path == "/-/ready":
            if ready():
                return _plain(start_response, "200 OK", "Ready\n")
            return _plain(
                start_response,
                "503 Service Unavailable",
                "Not ready: not every destination has been polled yet\n",
            )
        return _plain(start_response, "404 Not Found", "Not found\n")

    return app


def _with_basic_auth(app: WsgiApp, auth: BasicAuth) -> WsgiApp:
    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if auth.allows(environ.get("HTTP_AUTHORIZATION")):
            return app(environ, start_response)
        body = b"Unauthorized\n"
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("WWW-Authenticate", 'Basic realm="northflank-backup-exporter"'),
            ],
        )
        return [body]

    return guarded


def _with_headers(app: WsgiApp, headers: tuple[tuple[str, str], ...]) -> WsgiApp:
    """Every answer carries these headers (http_server_config.headers)."""

    def headed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, response_headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*response_headers, *headers], *exc)

        return app(environ, start)

    return headed


class _SilentHandler(WSGIRequestHandler):
    # A client has this long to send each part of its request: idle and slow sockets close.
    timeout = READ_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: scrapes would flood the log."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG
    tls: ssl.SSLContext | None = None
    _open = 0
    _count_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, up to MAX_CONNECTIONS; past that one is closed at once, so
        that no number of clients can grow threads and memory without bound."""
        with self._count_lock:
            if self._open >= MAX_CONNECTIONS:
                self.shutdown_request(request)
                return
            self._open += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self._open -= 1

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshakes happen here, on the request's own thread: a slow or silent client
        never holds up the accept loop."""
        if self.tls is not None:
            request.settimeout(HANDSHAKE_TIMEOUT)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


class _DualStackServer(_ThreadingServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _make_server(host: str, port: int) -> _ThreadingServer:
    if host == "":
        try:
            return _DualStackServer(("::", port), _SilentHandler)
        except OSError:
            return _ThreadingServer(("0.0.0.0", port), _SilentHandler)  # noqa: S104
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    server_class: type[_ThreadingServer] = type(
        "_Server", (_ThreadingServer,), {"address_family": family}
    )
    return server_class((host, port), _SilentHandler)


class WebServer:
    """Serves the WSGI app on a background thread; `port` is the bound one (for ':0')."""

    def __init__(
        self, app: WsgiApp, host: str, port: int, web_config: WebConfig | None = None
    ) -> None:
        self._server = _make_server(host, port)
        web_config = web_config or WebConfig()
        self._server.tls = web_config.tls
        if web_config.users:
            app = _with_basic_auth(app, BasicAuth(web_config.users))
        if web_config.headers:
            app = _with_headers(app, web_config.headers)
        self._server.set_app(app)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="web", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
