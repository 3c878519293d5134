"""/metrics cost per scrape at 100 and 2,000 addons, and whether it depends on the backups.

/metrics is rendered once per poll; a scrape copies those bytes and renders only the process
metrics. Timed per scrape, over many scrapes: the body as the WSGI app produces it (plain text,
and gzip in the OpenMetrics format Prometheus negotiates), and a whole HTTP GET over loopback
with gzip (the compressed bytes read, not inflated: that is the scraper's work). The
once-per-poll rendering itself is timed too, for what a poll costs.

Side by side, the SDK peer of bench/poll.py (its Gauges filled from the same backups), scraped
the way prometheus_client serves a registry: rendered on every scrape, gzip-compressed when
asked. Its registry holds far fewer series (four families), so the ratio flatters it.

    python bench/render.py [--scrapes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from exporter.config import (
    Account,
    Config,
    CoverageSettings,
    NorthflankSettings,
    PollSettings,
    RateLimitSettings,
)
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.web import WebServer, make_app

try:  # the bench extra: pip install -e '.[bench]'
    from northflank import ApiClient
    from poll import sdk_peer
    from prometheus_client import generate_latest

    HAS_SDK = True
except ImportError:
    HAS_SDK = False

TARGET_MEDIAN_MS = 2.0
CASES = ((100, 10), (100, 200), (2000, 10), (2000, 50))  # (addons, backups per addon)
PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


async def polled(addons: int, per_addon: int) -> tuple[Exporter, Any]:
    """The exporter after one poll, and the SDK peer's registry (None without the SDK)."""
    now = time.time()
    world = build_world(1, now, 1, addons * per_addon, addons_per_destination=addons)
    with Simulator(world, token="bench", clock=lambda: now, rate_limit=10**9) as simulator:  # noqa: S106
        peer = None
        if HAS_SDK:
            client = ApiClient(api_token=simulator.token, base_url=simulator.base_url)
            peer, _, _ = sdk_peer(client, [d.id for d in world.destinations])
        account = Account(
            northflank=NorthflankSettings(api_url=simulator.base_url, token=simulator.token),
            rate_limit=RateLimitSettings(requests_per_hour=10**9, reserve=0),
        )
        config = Config(
            accounts=(account,),
            poll=replace(PollSettings(), incremental=False),
            coverage=CoverageSettings(enabled=False),  # destination series only
        ).with_listen_address("127.0.0.1:0")
        exporter = Exporter(config)
        await exporter.poll_once()
        await exporter.aclose()
    return exporter, peer


def milliseconds(action: Callable[[], object], times: int) -> list[float]:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def fetch_raw(client: httpx.Client) -> bytes:
    """The response as sent: decompressing 6 MB is the scraper's cost, not the exporter's."""
    with client.stream("GET", "/metrics") as response:
        return b"".join(response.iter_raw())


def summary(times: list[float]) -> str:
    median, p99 = statistics.median(times), statistics.quantiles(times, n=100)[98]
    return f"{median:>8.2f}{p99:>8.2f}"


def measure(addons: int, per_addon: int, scrapes: int) -> tuple[str, float]:
    exporter, peer = asyncio.run(polled(addons, per_addon))
    metrics = exporter.metrics
    # The first scrape in a format renders it (the "render ms" column); from then on it is
    # rendered at each poll, and scrapes, timed here, only copy it.
    metrics.respond("", None)
    metrics.respond(PROMETHEUS_ACCEPT, "gzip")
    plain = milliseconds(lambda: b"".join(metrics.respond("", None).chunks), scrapes)
    zipped = milliseconds(lambda: metrics.respond(PROMETHEUS_ACCEPT, "gzip").chunks, scrapes)
    plain_size = sum(map(len, metrics.respond("", None).chunks))
    zipped_size = sum(map(len, metrics.respond(PROMETHEUS_ACCEPT, "gzip").chunks))
    rendering = milliseconds(exporter.render, 5)
    web = WebServer(make_app(metrics, exporter.ready), "127.0.0.1", 0)
    web.start()
    try:
        headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        with httpx.Client(base_url=f"http://127.0.0.1:{web.port}", headers=headers) as client:
            http = milliseconds(lambda: fetch_raw(client), scrapes)
    finally:
        web.stop()
    versus = "       -       -       -"
    if peer is not None:
        peer_zipped = milliseconds(lambda: gzip.compress(generate_latest(peer)), scrapes)
        ratio = statistics.median(zipped) / statistics.median(peer_zipped)
        versus = f"{summary(peer_zipped)}{ratio:>7.3f}x"
    row = (
        f"{addons:>7}{addons * per_addon:>9}{summary(plain)}{summary(zipped)}{summary(http)}"
        f"{plain_size / 1024:>9.0f}{zipped_size / 1024:>8.0f}"
        f"{statistics.median(rendering):>10.0f}{versus}"
    )
    return row, statistics.median(zipped)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=300)
    args = parser.parse_args()
    print(f"/metrics per scrape, ms (median, p99) over {args.scrapes} scrapes")
    print(
        f"{'addons':>7}{'backups':>9}{'plain body':>16}{'gzip body':>16}{'HTTP gzip':>16}"
        f"{'plain KB':>9}{'gzip KB':>8}{'render ms':>10}{'SDK peer gzip':>16}{'vs peer':>8}"
    )
    verdicts = []
    for addons, per_addon in CASES:
        row, median = measure(addons, per_addon, args.scrapes)
        print(row, flush=True)
        if addons == 2000:
            verdicts.append(median)
    worst = max(verdicts)
    verdict = "met" if worst < TARGET_MEDIAN_MS else "MISSED"
    print(
        f"target: median gzip body at 2,000 addons under {TARGET_MEDIAN_MS} ms, "
        f"whatever the backups: {worst:.2f} ms, {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
