"""Shared fixtures: a simulator on a loopback port with a frozen clock, and exposition parsing."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.client import NorthflankClient
from exporter.config import (
    Account,
    AddonRules,
    Config,
    CoverageSettings,
    NorthflankSettings,
    PollSettings,
    RateLimitSettings,
)
from exporter.context import AccountLoops
from exporter.exchange import RequestStats
from exporter.runtime import Exporter
from exporter.simulator import Faults, Simulator, build_world
from exporter.supervise import Health

NOW = datetime(2026, 11, 30, 12, 34, 55, tzinfo=UTC).timestamp()
TOKEN = "nf-test-token-5f2b9c7e1d"


class Clock:
    """A clock the test moves by hand; shared by the simulator and the exporter."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTime:
    """Sleeping moves the shared clock forward at once; `stop` is set once it reaches `until`."""

    def __init__(self, clock: Clock, until: float = float("inf")) -> None:
        self.clock = clock
        self.until = until
        self.stop = asyncio.Event()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.now += max(seconds, 0.0)
        if self.clock.now >= self.until:
            self.stop.set()
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def start_simulator(clock: Clock) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(
        destinations: int = 2,
        backups_per_destination: int = 260,
        seed: int = 7,
        scenarios: tuple[str, ...] = (),
        addons_per_destination: int | None = None,
        fleet: bool = False,
        **options: Any,
    ) -> Simulator:
        world = build_world(
            seed,
            clock(),
            destinations,
            backups_per_destination,
            scenarios=scenarios,
            addons_per_destination=addons_per_destination,
            fleet=fleet,
        )
        options.setdefault("token", TOKEN)
        options.setdefault("faults", Faults())
        simulator = Simulator(world, clock=clock, **options).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(start_simulator: Callable[..., Simulator]) -> Simulator:
    return start_simulator()


def config_for(simulator: Simulator, *, coverage: bool = False, **poll: Any) -> Config:
    """One account on the simulator with a budget that never binds. Coverage (the inventory,
    on by default in the product) is off unless asked for: these tests count and time the
    destination polls, and tests/test_coverage.py tests the inventory. Reads around the
    slots (on by default) are off unless asked for: these tests count repeated polls, often
    on a frozen clock, on which no slot ever comes; tests/test_around_slots.py tests them."""
    poll.setdefault("around_slots", False)
    poll.setdefault("retry_backoff", 0.01)
    poll.setdefault("max_retry_wait", 2.0)
    account = Account(
        northflank=NorthflankSettings(api_url=simulator.base_url, token=simulator.token),
        rate_limit=RateLimitSettings(requests_per_hour=1_000_000, reserve=0),
    )
    return Config(
        accounts=(account,),
        poll=replace(PollSettings(), **poll),
        coverage=CoverageSettings(enabled=coverage),
    ).with_listen_address("127.0.0.1:0")


def with_account(config: Config, **changes: Any) -> Config:
    """The config with these fields of its one account changed (destinations, rate_limit...)."""
    (account,) = config.accounts
    return replace(config, accounts=(replace(account, **changes),))


def loops_of_no_api(**changes: Any) -> AccountLoops:
    """An account's loop context whose client is never used (close it: `loops.client.aclose`),
    with these fields changed (budget, clock, health, poll...)."""
    stats = RequestStats()
    client = NorthflankClient(NorthflankSettings(token="t" * 20), PollSettings(), stats)
    loops = AccountLoops(
        account=Account(),
        client=client,
        stats=stats,
        poll=PollSettings(),
        addons=AddonRules(),
        expiry_warning_window=86400.0,
        health=Health(),
    )
    return replace(loops, **changes)


# One event loop for the whole session: an exporter's HTTP connections belong to the loop
# that opened them, as they do in the real process, which runs one loop from start to end.
_RUNNER = asyncio.Runner()


def run(coroutine: Any) -> Any:
    return _RUNNER.run(coroutine)


def poll_once(exporter: Exporter) -> bool:
    return run(exporter.poll_once())


def pytest_sessionfinish() -> None:
    _RUNNER.close()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def pick(samples: Samples, metric: str, **labels: str) -> float | None:
    """The sample with exactly these labels; account="default" is implied unless given
    (the single-account configuration labels every account-level series so)."""
    if "account" not in labels:
        found = samples.get((metric, frozenset({**labels, "account": "default"}.items())))
        if found is not None:
            return found
    return samples.get((metric, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of a metric by label set, without the implied account="default"."""
    default = ("account", "default")
    return {
        labels - {default}: value for (metric, labels), value in samples.items() if metric == name
    }


class Serving:
    """An exporter serving HTTP and polling on its own thread and event loop, as in production."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await self.exporter.serve(self._stop)

        self._loop.run_until_complete(main())

    def __enter__(self) -> Serving:
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.exporter.web is None or self._stop is None:
            assert time.monotonic() < deadline, "exporter did not start"
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        assert self.exporter.web is not None
        return f"http://127.0.0.1:{self.exporter.web.port}"

    def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.exporter.ready():
            assert time.monotonic() < deadline, "exporter never became ready"
            time.sleep(0.01)

    def __exit__(self, *exc_info: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(port: int, timeout: float = 15) -> None:
    """Wait for a started exporter process to answer /-/ready with 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"exporter on port {port} never became ready"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() and setup_logging() replace the root handlers; give each test a clean slate."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _token_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test of the suite runs with the recognisable TOKEN: no log record may carry it."""
    caplog.set_level(logging.DEBUG)
    yield
    leaks = [record.getMessage() for record in caplog.records if TOKEN in record.getMessage()]
    assert leaks == [], "the API token appeared in a log line"
