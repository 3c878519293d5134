"""Full-poll cost of the exporter next to the floor, on the same pre-rendered pages.

The floor fetches every page with the same HTTP client and decodes it, doing nothing else.
Each side runs in a process of its own (so CPU time and peak RSS are its own) against one
simulator process serving pages it rendered once; figures are medians of several runs, and only
the ratios measured in one run mean anything on a noisy machine.

    python bench/poll.py [--runs 3] [--scenarios 1k,100k,100kx10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace

SCENARIOS = {  # name: (destinations, backups per destination)
    "1k": (1, 1_000),
    "100k": (1, 100_000),
    "100kx10": (10, 10_000),
}
FROZEN = "2026-11-30T12:00:00+00:00"
TARGET_CPU = 1.3
TARGET_FROM = 100_000
TOKEN = "bench"  # noqa: S105 - the simulator's, not a secret


def figures(started_cpu: float, started_wall: float, **extra: float) -> dict[str, float]:
    return {
        "cpu": time.process_time() - started_cpu,
        "wall": time.perf_counter() - started_wall,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


async def floor(url: str, destinations: list[str]) -> dict[str, float]:
    import httpx  # the floor loads nothing of the exporter

    requests = backups = 0
    limit = asyncio.Semaphore(4)

    async def walk(client: httpx.AsyncClient, destination: str) -> None:
        nonlocal requests, backups
        cursor = None
        async with limit:
            while True:
                params = {"per_page": 100, **({"cursor": cursor} if cursor else {})}
                response = await client.get(
                    f"/v1/backup-destinations/{destination}/backups", params=params
                )
                body = json.loads(response.content)
                requests += 1
                backups += len(body["data"])
                if not body["pagination"]["hasNextPage"]:
                    return
                cursor = body["pagination"]["cursor"]

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        # timed from here, as the exporter is timed from its first poll: set-up excluded
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(walk(client, d) for d in destinations))
        return figures(cpu, wall, requests=requests, backups=backups)


async def exporter(url: str, destinations: list[str]) -> dict[str, float]:
    from exporter.config import Config, NorthflankSettings, PollSettings, RateLimitSettings
    from exporter.runtime import Exporter

    config = Config(
        northflank=NorthflankSettings(api_url=url, token=TOKEN),
        destinations=tuple(destinations),
        poll=replace(PollSettings(), incremental=False, concurrency=4),
        rate_limit=RateLimitSettings(requests_per_hour=10**9, reserve=0),
    )
    running = Exporter(config)
    cpu, wall = time.process_time(), time.perf_counter()
    clean = await running.poll_once()
    result = figures(cpu, wall, requests=sum(running.stats.requests.values()))
    await running.client.aclose()
    assert clean, "the exporter's poll was not clean"
    return result


def run_role(role: str, url: str, destinations: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--role",
            role,
            "--url",
            url,
            "--destinations",
            ",".join(destinations),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def start_simulator(count: int, backups: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--destinations",
            str(count),
            "--backups-per-destination",
            str(backups),
            "--now",
            FROZEN,
            "--rate-limit",
            str(10**9),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def destination_ids(count: int) -> list[str]:
    return ["primary-backups"] + [f"backups-{n:02d}" for n in range(2, count + 1)]


def measure(name: str, runs: int) -> None:
    count, backups = SCENARIOS[name]
    simulator, url = start_simulator(count, backups)
    try:
        ids = destination_ids(count)
        run_role("floor", url, ids)  # the simulator renders every page once, here
        results: dict[str, list[dict[str, float]]] = {"floor": [], "exporter": []}
        for _ in range(runs):
            for role, rows in results.items():  # side by side, interleaved
                rows.append(run_role(role, url, ids))
    finally:
        simulator.terminate()
        simulator.wait()
    median = {
        role: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for role, rows in results.items()
    }
    total = median["floor"]["backups"]
    print(f"\n{name}: {count} destination(s) x {backups} backups, median of {runs} runs")
    print(
        f"{'':<10}{'cpu s':>9}{'wall s':>9}{'peak RSS MB':>13}{'requests':>10}{'backups/cpu-s':>15}"
    )
    for role, m in median.items():
        print(
            f"{role:<10}{m['cpu']:>9.2f}{m['wall']:>9.2f}{m['rss_mb']:>13.0f}"
            f"{m['requests']:>10.0f}{total / m['cpu']:>15.0f}"
        )
    ratio = median["exporter"]["cpu"] / median["floor"]["cpu"]
    if count * backups < TARGET_FROM:
        verdict = f"the target applies from {TARGET_FROM:,} backups"
    else:
        verdict = "met" if ratio <= TARGET_CPU else "MISSED"
    print(
        f"exporter/floor: cpu {ratio:.2f}x (target <= 1.3x: {verdict}), "
        f"wall {median['exporter']['wall'] / median['floor']['wall']:.2f}x, "
        f"peak RSS {median['exporter']['rss_mb'] / median['floor']['rss_mb']:.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--role", choices=["floor", "exporter"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--destinations", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role = floor if args.role == "floor" else exporter
        print(json.dumps(asyncio.run(role(args.url, args.destinations.split(",")))))
        return 0
    for name in args.scenarios.split(","):
        measure(name, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
