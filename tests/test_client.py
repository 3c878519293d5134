"""The API client against the simulator (retries, limits) and against scripted answers (guards)."""

import asyncio
import json

import httpx
import pytest

from exporter.api import ApiError
from exporter.backups import NotAnObject, parse_backup, read_backup
from exporter.client import NorthflankClient
from exporter.config import NorthflankSettings
from exporter.exchange import RequestStats
from exporter.simulator import Faults
from exporter.simulator.server import RateLimit
from exporter.simulator.virtual_time import run_virtually
from tests.conftest import config_for, with_account

BACKUPS = "/v1/backup-destinations/{backupDestinationId}/backups"


class Sleeps:
    def __init__(self):
        self.waits = []

    async def __call__(self, seconds):
        self.waits.append(seconds)


def make_client(config, stats, **options):
    return NorthflankClient(config.accounts[0].northflank, config.poll, stats, **options)


async def collect_pages(client, destination):
    return [page.items async for page in client.backup_pages(destination)]


def run_pages(config, destination="primary-backups", windows=None, **options):
    """The pages of a destination, and the requests made; `windows` gets the client's
    rate-limit window."""
    stats = RequestStats()

    async def go():
        async with make_client(config, stats, **options) as client:
            if windows is not None:
                windows.append(client.window)
            return await collect_pages(client, destination)

    return asyncio.run(go()), stats


def test_walks_every_page_with_per_page_100(simulator):
    windows = []
    pages, stats = run_pages(config_for(simulator), windows=windows)
    (window,) = windows
    assert [len(page) for page in pages] == [100, 100, 60]
    items = [item for page in pages for item in page]
    assert [read_backup(item) for item in items] == [
        parse_backup(raw) for raw in simulator.backups("primary-backups")
    ]
    assert stats.requests == {(BACKUPS, "200"): 3}
    assert [r.path.split("?")[1].split("&")[0] for r in simulator.requests] == ["per_page=100"] * 3
    assert window.remaining == 997


def test_team_routes(start_simulator):
    simulator = start_simulator(team="platform")
    config = config_for(simulator)
    config = with_account(
        config,
        northflank=NorthflankSettings(
            api_url=simulator.base_url, token=simulator.token, team="platform"
        ),
    )
    pages, _ = run_pages(config)
    assert sum(len(page) for page in pages) == 260
    assert all(r.path.startswith("/v1/teams/platform/") for r in simulator.requests)


def test_lists_destinations(simulator):
    stats = RequestStats()

    async def go():
        async with make_client(config_for(simulator), stats) as client:
            return await client.list_destinations()

    destinations = asyncio.run(go())
    assert [(d.id, d.name, d.usage) for d in destinations] == [
        ("primary-backups", "Primary backups", "globalBackups"),
        ("backups-02", "Backups 02", "globalBackups"),
    ]


def test_server_errors_are_retried_with_growing_backoff_then_reported(simulator):
    simulator.faults.error_rate = 1.0
    sleeps = Sleeps()
    with pytest.raises(ApiError) as error:
        run_pages(
            config_for(simulator, max_retries=3, retry_backoff=1.0, max_retry_wait=60.0),
            sleep=sleeps,
        )
    assert error.value.code == "500"
    assert "HTTP 500: Internal server error" in str(error.value)
    assert len(simulator.requests) == 4
    assert len(sleeps.waits) == 3
    for attempt, wait in enumerate(sleeps.waits):
        assert 0.5 * 2**attempt <= wait <= 1.5 * 2**attempt


def test_a_transient_error_heals_on_retry(start_simulator):
    simulator = start_simulator(faults=Faults(error_rate=0.3), seed=3)
    pages, stats = run_pages(config_for(simulator, max_retries=10))
    assert sum(len(page) for page in pages) == 260
    assert stats.requests[(BACKUPS, "500")] > 0
    assert stats.requests[(BACKUPS, "200")] == 3


@pytest.mark.parametrize("status", [401, 403, 404])
def test_token_and_missing_destination_errors_are_not_retried(start_simulator, status):
    simulator = start_simulator(faults=Faults(destination_status={"primary-backups": status}))
    with pytest.raises(ApiError) as error:
        run_pages(config_for(simulator, max_retries=3))
    assert error.value.code == str(status)
    assert len(simulator.requests) == 1


def test_rate_limited_waits_for_the_reset_it_is_told(start_simulator, clock):
    simulator = start_simulator(rate_limit=RateLimit(1, retry_after=True))
    sleeps = Sleeps()

    async def sleep_and_advance(seconds):
        await sleeps(seconds)
        clock.now += seconds

    pages, stats = run_pages(config_for(simulator, max_retry_wait=3600.0), sleep=sleep_and_advance)
    assert len(pages) == 3
    assert sleeps.waits == [3600.0, 3600.0]  # one window per page: the limit is 1
    assert stats.requests[(BACKUPS, "429")] == 2


def test_rate_limit_reset_too_far_away_fails_fast_instead_of_hanging(start_simulator):
    simulator = start_simulator(rate_limit=1)
    with pytest.raises(ApiError, match="asks to wait longer than 60s") as error:
        run_pages(config_for(simulator, max_retry_wait=60.0), sleep=Sleeps())
    assert error.value.code == "429"
    assert len(simulator.requests) == 2


def test_truncated_json_is_retried(start_simulator):
    simulator = start_simulator(faults=Faults(malformed_rate=1.0))
    with pytest.raises(ApiError, match="not JSON"):
        run_pages(config_for(simulator, max_retries=2), sleep=Sleeps())
    assert len(simulator.requests) == 3


async def never_answers(request):
    await asyncio.Event().wait()


def test_a_request_that_stalls_past_the_timeout():
    """On virtual time: the deadline passes at once, whatever the machine is doing."""
    client = client_of(never_answers, timeout=0.2)
    with pytest.raises(ApiError, match=r"timed out after 0\.2s") as error:
        run_virtually(list_with(client))
    assert error.value.code == "timeout"


def test_connection_refused_is_an_error_not_a_crash(simulator):
    config = config_for(simulator, max_retries=1)
    simulator.stop()
    with pytest.raises(ApiError) as error:
        run_pages(config, sleep=Sleeps())
    assert error.value.code == "error"


# --- guards, with scripted answers: shapes the simulator never sends on its own


def scripted(pages, asked=None):
    """A transport answering each backups request with the next of `pages`; each request's
    query goes into `asked` when given."""
    answers = iter(pages)

    def handler(request):
        if asked is not None:
            asked.append(dict(request.url.params))
        return httpx.Response(200, content=json.dumps(next(answers)).encode())

    return httpx.MockTransport(handler)


def page(items, **pagination):
    return {"data": items, "pagination": {"count": len(items), **pagination}}


def run_scripted(simulator, pages, asked=None, **poll):
    return run_pages(config_for(simulator, **poll), transport=scripted(pages, asked))


def test_a_repeated_cursor_stops_the_walk(simulator):
    pages = [
        page([{}], hasNextPage=True, cursor="a"),
        page([{}], hasNextPage=True, cursor="b"),
        page([{}], hasNextPage=True, cursor="a"),
    ]
    with pytest.raises(ApiError, match="repeated a cursor") as error:
        run_scripted(simulator, pages)
    assert error.value.code == "bad_cursor"


def test_has_next_page_without_a_cursor_goes_on_by_page_number_as_the_client_does(simulator):
    asked = []
    pages, _ = run_scripted(
        simulator,
        [page([1], hasNextPage=True), page([2], hasNextPage=True), page([3], hasNextPage=False)],
        asked,
    )
    assert pages == [[NotAnObject(1)], [NotAnObject(2)], [NotAnObject(3)]]
    assert asked == [
        {"per_page": "100"},
        {"per_page": "100", "page": "2"},
        {"per_page": "100", "page": "3"},
    ]


def test_an_answer_without_pagination_is_the_last_page_as_the_client_reads_it(simulator):
    asked = []
    pages, _ = run_scripted(simulator, [{"data": [1, 2]}, page([3])], asked)
    assert pages == [[NotAnObject(1), NotAnObject(2)]]
    assert asked == [{"per_page": "100"}]


def test_pages_by_number_without_end_are_cut_at_max_pages(simulator):
    with pytest.raises(ApiError, match="more than 3 pages") as error:
        run_scripted(simulator, [page([], hasNextPage=True)] * 10, max_pages=3)
    assert error.value.code == "too_many_pages"


def test_a_cursor_without_has_next_page_is_followed_like_the_sdk_does(simulator):
    pages, _ = run_scripted(
        simulator, [page([1], hasNextPage=False, cursor="x"), page([2], hasNextPage=False)]
    )
    assert pages == [[NotAnObject(1)], [NotAnObject(2)]]


def test_endless_pagination_is_cut_at_max_pages(simulator):
    pages = [page([], hasNextPage=True, cursor=str(n)) for n in range(10)]
    with pytest.raises(ApiError, match="more than 3 pages") as error:
        run_scripted(simulator, pages, max_pages=3)
    assert error.value.code == "too_many_pages"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"data": {"oops": 1}, "pagination": {"hasNextPage": False}}, "data is not a list"),
        ({"pagination": {"hasNextPage": False}}, "data is not a list"),
        ([1, 2], "not an object"),
    ],
)
def test_bodies_of_the_wrong_shape(simulator, body, problem):
    with pytest.raises(ApiError, match=problem):
        run_scripted(simulator, [body] * 5, max_retries=0)


class Drip(httpx.AsyncByteStream):
    """A 200 answer that sends one byte every 50 ms, for ever."""

    async def __aiter__(self):
        while True:
            await asyncio.sleep(0.05)
            yield b" "


def client_of(handler, **poll):
    from dataclasses import replace

    from exporter.config import PollSettings

    return NorthflankClient(
        NorthflankSettings(api_url="http://api.test", token="t" * 20),
        replace(PollSettings(), max_retries=0, **poll),
        RequestStats(),
        transport=httpx.MockTransport(handler),
    )


async def list_with(client):
    try:
        return await client.list_destinations()
    finally:
        await client.aclose()


def test_an_answer_that_drips_times_out_at_the_deadline_of_the_whole_request():
    """On virtual time: six drops of the drip, then the deadline of the whole exchange."""
    client = client_of(lambda request: httpx.Response(200, stream=Drip()), timeout=0.3)
    with pytest.raises(ApiError, match=r"timed out after 0\.3s") as error:
        run_virtually(list_with(client))
    assert error.value.code == "timeout"


def test_a_gzip_bomb_is_given_up_on_at_max_body_bytes():
    import gzip

    bomb = gzip.compress(b"{" + b" " * 50_000_000 + b"}")  # 50 MB of JSON in about 50 KB
    assert len(bomb) < 100_000

    def handler(request):
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    client = client_of(handler, max_body_bytes=2**20)
    with pytest.raises(ApiError, match=r"larger than poll\.max_body_bytes") as error:
        asyncio.run(list_with(client))
    assert error.value.code == "too_large"


@pytest.mark.parametrize("ident", [".", ".."])
def test_a_destination_id_that_is_a_dot_segment_is_not_a_destination(ident):
    from exporter.client import parse_destination

    assert parse_destination({"id": ident, "name": "sneaky", "usage": "globalBackups"}) is None
    assert parse_destination({"id": "ok.id", "name": "fine"}).id == "ok.id"


DATE = "Sun, 06 Dec 2026 01:00:00 GMT"  # the server's clock in these answers
DATE_EPOCH = 1796518800.0


@pytest.mark.parametrize(
    ("headers", "retry_after", "reset"),
    [
        ({"retry-after": "30", "x-ratelimit-reset": "1200"}, 30.0, 1200.0),
        # ten years, inf, 1e999, nan: at most the hour the API's window lasts, or nothing
        ({"retry-after": str(10 * 365 * 86400)}, 3600.0, None),
        ({"retry-after": "inf", "x-ratelimit-reset": "1e999"}, None, None),
        ({"retry-after": "nan", "x-ratelimit-reset": "1e300"}, None, 3600.0),
        ({"retry-after": "-5", "x-ratelimit-reset": "-5"}, 0.0, 0.0),
        # a date is read against the answer's own Date: 90 s, whatever our clock says
        ({"retry-after": "Sun, 06 Dec 2026 01:01:30 GMT", "date": DATE}, 90.0, None),
        # an epoch reset, in seconds or milliseconds, against the answer's Date
        ({"x-ratelimit-reset": str(DATE_EPOCH + 600), "date": DATE}, None, 600.0),
        ({"x-ratelimit-reset": str((DATE_EPOCH + 600) * 1000), "date": DATE}, None, 600.0),
        ({"retry-after": "soon"}, None, None),
    ],
)
def test_time_from_the_api_is_trusted_only_within_the_hour(headers, retry_after, reset):
    from exporter.exchange import _reset_seconds, _retry_after_seconds

    answer = httpx.Headers(headers)
    our_clock = DATE_EPOCH + 3600  # an hour ahead of the server
    assert _retry_after_seconds(answer, our_clock) == retry_after
    assert _reset_seconds(answer, our_clock) == reset


def test_the_wait_for_a_shared_connection_is_not_the_request_s_timeout():
    """On virtual time. Accounts of one API URL share its connections; a request used to wait
    for one inside its own deadline, so 1,000 accounts logged timeouts the API never caused.
    Here the one connection is held by another account's request for a minute: the waiting
    request, with a 10 s timeout, waits its turn, is answered, and the wait is counted."""
    from dataclasses import replace

    from exporter.config import PollSettings
    from exporter.exchange import Connections

    released = asyncio.Event()
    order = []

    async def handler(request):
        token = request.headers["authorization"]
        order.append(token)
        if token.endswith("slow"):
            await released.wait()
        return httpx.Response(200, json={"data": {"backupDestinations": []}})

    async def go():
        shared = Connections(
            httpx.AsyncClient(base_url="http://api.test", transport=httpx.MockTransport(handler)),
            size=1,
        )
        poll = replace(PollSettings(), max_retries=0, timeout=10.0)
        stats = {name: RequestStats() for name in ("slow", "waiting")}
        clients = {
            name: NorthflankClient(
                NorthflankSettings(api_url="http://api.test", token=f"token-{name}"),
                replace(poll, timeout=3600.0) if name == "slow" else poll,
                stats[name],
                http=shared,
            )
            for name in ("slow", "waiting")
        }
        slow = asyncio.ensure_future(clients["slow"].list_destinations())
        await asyncio.sleep(0)
        waiting = asyncio.ensure_future(clients["waiting"].list_destinations())
        await asyncio.sleep(60)
        assert not waiting.done() and order == ["Bearer token-slow"]
        released.set()
        assert await waiting == [] and await slow == []
        await shared.aclose()
        return stats

    stats = run_virtually(go())
    assert stats["waiting"].connection_wait_seconds == pytest.approx(60, abs=1)
    assert (
        stats["waiting"].requests == {("/v1/backup-destinations", "200"): 1}
        or sum(stats["waiting"].requests.values()) == 1
    )
    assert "timeout" not in {code for _, code in stats["waiting"].requests}
