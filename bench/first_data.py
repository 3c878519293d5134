"""How soon the first numbers appear, as a new user meets it: default configuration (no
rate_limit keys), the simulator as the API, the token and base URL in the environment.

1. Wall time from start to `/-/ready` answering 200, and to `--once` exiting, for accounts of
   3 x 450, 5 x 1,000, 10 x 2,000 and 1 x 14,900 backups (16, 51, 201 and 150 requests), at 0
   and 20 ms a page. Each is a process of its own, as a user runs it.
2. Above the budget: the time the exporter says at the start that a read will take, against
   the time it took, on a fake clock (in process; 60 requests an hour, reads of 1.5 to 4 times
   that), so that hours of waiting take seconds.

    python bench/first_data.py [--runs 3] [--latencies 0,20] [--accounts 3x450,...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

ACCOUNTS = {  # name: (destinations, backups per destination)
    "3x450": (3, 450),
    "5x1000": (5, 1_000),
    "10x2000": (10, 2_000),
    "1x14900": (1, 14_900),
}
TARGETS = {"3x450": 3.0, "5x1000": 5.0, "1x14900": 10.0}  # seconds, at 0 ms a page
TOKEN = "bench-first-data"  # noqa: S105 - the simulator's, not a secret
EXPORTER = [sys.executable, "-m", "exporter"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator(destinations: int, backups: int, latency_ms: int) -> tuple[Any, str]:
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "--token",
            TOKEN,
            "--destinations",
            str(destinations),
            "--backups-per-destination",
            str(backups),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert simulator.stdout is not None
    url = simulator.stdout.readline().strip()
    return simulator, url


def user_environment(url: str) -> dict[str, str]:
    return {**os.environ, "NORTHFLANK_API_TOKEN": TOKEN, "NORTHFLANK_API_BASE_URL": url}


def time_once(url: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [*EXPORTER, "--once"],
        env=user_environment(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=3600,
    )
    return time.perf_counter() - started


def time_ready(url: str) -> float:
    port = free_port()
    started = time.perf_counter()
    exporter = subprocess.Popen(
        [*EXPORTER, "--web.listen-address", f"127.0.0.1:{port}"],
        env=user_environment(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if time.perf_counter() - started > 3600:
                raise TimeoutError("never ready")
            time.sleep(0.02)
    finally:
        exporter.terminate()
        exporter.wait()


def on_a_fresh_token(
    measure: Callable[[str], float], destinations: int, backups: int, latency: int
) -> float:
    """A simulator of its own for each start: a new user's token has its whole hour left."""
    simulator, url = start_simulator(destinations, backups, latency)
    try:
        return measure(url)
    finally:
        simulator.terminate()
        simulator.wait()


def first_numbers(runs: int, latencies: list[int], accounts: list[str]) -> list[str]:
    print("Time to first numbers, default configuration (medians of runs, seconds):")
    print(f"{'account':<10}{'requests':>9}{'ms/page':>9}{'--once':>9}{'/-/ready':>10}")
    verdicts = []
    for latency in latencies:
        for name in accounts:
            destinations, backups = ACCOUNTS[name]
            once = statistics.median(
                on_a_fresh_token(time_once, destinations, backups, latency) for _ in range(runs)
            )
            ready = statistics.median(
                on_a_fresh_token(time_ready, destinations, backups, latency) for _ in range(runs)
            )
            requests = 1 + destinations * -(-backups // 100)
            print(f"{name:<10}{requests:>9}{latency:>9}{once:>9.2f}{ready:>10.2f}")
            target = TARGETS.get(name)
            if target is not None and latency == 0:
                slowest = max(once, ready)
                met = "met" if slowest <= target else "MISSED"
                verdicts.append(
                    f"{name} ({requests} requests): {slowest:.2f} s "
                    f"(target < {target:.0f} s): {met}"
                )
    return verdicts


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def estimate_against_time(budget: int, pages: int) -> tuple[float, float, int]:
    """(estimated seconds, seconds taken, requests made) for a first read of `pages` pages."""
    from dataclasses import replace

    from exporter.config import (
        Account,
        Config,
        CoverageSettings,
        NorthflankSettings,
        PollSettings,
        RateLimitSettings,
    )
    from exporter.durations import parse_duration
    from exporter.runtime import Exporter
    from exporter.simulator import Simulator, build_world

    now = 1_800_000_000.0
    clock = [now]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += max(seconds, 0.0)
        await asyncio.sleep(0)

    world = build_world(1, now, 3, pages * 100 // 3, interval="hourly")
    lines = _Lines()
    logging.getLogger("exporter").addHandler(lines)
    logging.getLogger("exporter").setLevel(logging.INFO)
    try:
        with Simulator(world, token=TOKEN, clock=lambda: clock[0], rate_limit=10**9) as simulator:
            account = Account(
                northflank=NorthflankSettings(api_url=simulator.base_url, token=TOKEN),
                rate_limit=RateLimitSettings(requests_per_hour=budget, reserve=0),
            )
            config = Config(
                accounts=(account,),
                poll=replace(PollSettings(), timeout=300),
                coverage=CoverageSettings(enabled=False),  # the destinations' first read alone
            )

            async def read() -> None:
                exporter = Exporter(config, clock=lambda: clock[0], sleep=fake_sleep)
                await exporter.poll_once()
                await exporter.aclose()

            asyncio.run(read())
            made = len(simulator.requests)
    finally:
        logging.getLogger("exporter").removeHandler(lines)
    said = next(m for m in lines.messages if m.startswith("this poll cycle needs about"))
    found = re.search(r"take about (\S+);", said)
    if found is None:
        raise SystemExit(f"the line that says how long the read takes has no estimate: {said}")
    estimate = parse_duration(found.group(1))
    return estimate, clock[0] - now, made


def estimates(sizes: list[int]) -> list[str]:
    budget = 60
    print(f"\nAbove the budget ({budget} requests an hour, fake clock): estimate at the start")
    print(f"{'requests':>9}{'x budget':>9}{'estimated':>11}{'took':>9}{'error':>8}")
    worst = 0.0
    for pages in sizes:
        estimate, took, made = estimate_against_time(budget, pages)
        error = (estimate - took) / took
        worst = max(worst, abs(error))
        print(
            f"{made:>9}{made / budget:>9.1f}{estimate / 3600:>10.2f}h{took / 3600:>8.2f}h"
            f"{error:>+8.0%}"
        )
    met = "met" if worst <= 0.2 else "MISSED"
    return [f"estimates within {worst:.0%} of the time taken (target <= 20%): {met}"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latencies", default="0,20")
    parser.add_argument("--accounts", default=",".join(ACCOUNTS))
    parser.add_argument("--estimate-pages", default="90,150,240", help="reads above the budget")
    args = parser.parse_args()
    latencies = [int(ms) for ms in args.latencies.split(",")]
    verdicts = first_numbers(args.runs, latencies, args.accounts.split(","))
    verdicts += estimates([int(pages) for pages in args.estimate_pages.split(",")])
    print("\nTargets:")
    for line in verdicts:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
