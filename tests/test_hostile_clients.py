"""Hostile scrapers: whatever a client sends or holds open, the exporter keeps serving, grows
no memory or threads for it, and answers as HTTP says."""

from __future__ import annotations

import base64
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import httpx
import pytest

from exporter.runtime import Exporter
from exporter.web import WebServer, make_app
from exporter.webconfig import BasicAuth, WebConfig
from tests.conftest import Serving, config_for


@pytest.fixture
def serving(simulator, clock):
    with Serving(Exporter(config_for(simulator), clock=clock)) as running:
        running.wait_ready()
        yield running


def test_head_has_the_headers_of_get_and_no_body(serving):
    for path in ("/", "/-/ready"):  # bodies that do not change between two requests
        got, head = httpx.get(f"{serving.url}{path}"), httpx.head(f"{serving.url}{path}")
        assert (head.status_code, head.content) == (got.status_code, b"")
        assert head.headers["content-length"] == str(len(got.content))
    head = httpx.head(f"{serving.url}/metrics", headers={"Accept-Encoding": "identity"})
    assert head.content == b""
    assert int(head.headers["content-length"]) > 10_000  # the length of the body not sent


@pytest.mark.parametrize(
    ("accept_encoding", "zipped"),
    [("gzip", True), ("gzip;q=0", False), ("gzip;q=0, *;q=1", False), ("*", True), ("br", False)],
)
def test_accept_encoding_qualities_are_honoured(serving, accept_encoding, zipped):
    with httpx.stream(
        "GET", f"{serving.url}/metrics", headers={"Accept-Encoding": accept_encoding}
    ) as response:
        assert (response.headers.get("content-encoding") == "gzip") is zipped


def test_a_thousand_openmetrics_versions_render_one_format(serving):
    exposition = serving.exporter.metrics
    with httpx.Client() as client:
        for minor in range(1, 1001):
            accept = f"application/openmetrics-text; version=1.{minor}.0"
            response = client.get(f"{serving.url}/metrics", headers={"Accept": accept})
            assert response.headers["content-type"].startswith(
                "application/openmetrics-text; version=1.0.0"
            )
    assert len(exposition.formats_in_use()) == 1


def test_two_hundred_concurrent_scrapes_all_succeed(serving):
    def scrape(_):
        return httpx.get(f"{serving.url}/metrics", timeout=60).status_code

    with ThreadPoolExecutor(max_workers=200) as pool:
        codes = list(pool.map(scrape, range(200)))
    assert codes == [200] * 200


def test_a_thousand_idle_sockets_block_no_scrape_and_leave_no_thread(serving):
    before = threading.active_count()
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", serving.exporter.web.port)))
        assert httpx.get(f"{serving.url}/metrics", timeout=30).status_code == 200
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 30
    while threading.active_count() > before + 2:
        assert time.monotonic() < deadline, f"{threading.active_count()} threads left behind"
        time.sleep(0.1)
    assert httpx.get(f"{serving.url}/metrics").status_code == 200


def basic(user, password, scheme="Basic"):
    return f"{scheme} {base64.b64encode(f'{user}:{password}'.encode()).decode()}"


def test_basic_auth_scheme_is_case_insensitive_and_long_passwords_are_refused():
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"prometheus": hashed})
    assert auth.allows(basic("prometheus", "right", "basic"))
    assert auth.allows(basic("prometheus", "right", "BASIC"))
    assert not auth.allows(basic("prometheus", "x" * 100))  # no 500 from bcrypt
    assert not auth.allows(basic("nobody", "x" * 100))
    assert not auth.allows(basic("prometheus", "wrong"))


def test_an_unknown_user_costs_a_bcrypt_check_like_a_wrong_password(monkeypatch):
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"prometheus": hashed})
    checked = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: checked.append(h) or real(pw, h))
    assert not auth.allows(basic("nobody", "right"))
    assert not auth.allows(basic("prometheus", "wrong"))
    assert len(checked) == 2  # the same work for both, so user names cannot be told apart
    assert checked[0].split(b"$")[2] == hashed.split(b"$")[2]  # at the same cost


def test_http_server_config_headers_are_sent_on_every_answer(serving):
    server = WebServer(
        make_app(serving.exporter.metrics, lambda: True),
        "127.0.0.1",
        0,
        WebConfig(headers=(("X-Frame-Options", "DENY"),)),
    )
    server.start()
    try:
        for path in ("/", "/metrics", "/-/healthy", "/nope"):
            response = httpx.get(f"http://127.0.0.1:{server.port}{path}")
            assert response.headers["x-frame-options"] == "DENY"
    finally:
        server.stop()
