"""/metrics render time and size at 100 and 2,000 addons, and whether it depends on backups.

python bench/render.py [--scrapes 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import time
from dataclasses import replace

from exporter.config import Config, NorthflankSettings, PollSettings, RateLimitSettings
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world

TARGET_MEDIAN_MS = 2.0
CASES = ((100, 10), (2000, 10), (2000, 50))  # (addons, backups per addon)


async def render_times(addons: int, per_addon: int, scrapes: int) -> tuple[list[float], int, int]:
    now = time.time()
    world = build_world(1, now, 1, addons * per_addon, addons_per_destination=addons)
    with Simulator(world, token="bench", clock=lambda: now, rate_limit=10**9) as simulator:  # noqa: S106
        config = Config(
            northflank=NorthflankSettings(api_url=simulator.base_url, token=simulator.token),
            poll=replace(PollSettings(), incremental=False),
            rate_limit=RateLimitSettings(requests_per_hour=10**9, reserve=0),
        )
        exporter = Exporter(config)
        await exporter.poll_once()
        await exporter.client.aclose()
    times = []
    for _ in range(scrapes):
        started = time.perf_counter()
        body = exporter.exposition()
        times.append((time.perf_counter() - started) * 1000)
    return times, len(body), len(gzip.compress(body))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    print(
        f"{'addons':>7}{'backups':>9}{'median ms':>11}{'p99 ms':>9}{'plain KB':>10}"
        f"{'gzip KB':>9}  target median < {TARGET_MEDIAN_MS} ms"
    )
    for addons, per_addon in CASES:
        times, plain, zipped = asyncio.run(render_times(addons, per_addon, args.scrapes))
        median = statistics.median(times)
        p99 = statistics.quantiles(times, n=100)[98]
        verdict = "met" if median < TARGET_MEDIAN_MS else "MISSED"
        print(
            f"{addons:>7}{addons * per_addon:>9}{median:>11.2f}{p99:>9.2f}"
            f"{plain / 1024:>10.0f}{zipped / 1024:>9.0f}  {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
