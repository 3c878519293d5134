"""Requests per hour at steady state: full polls against incremental sync, and the
managed-storage listings of coverage read on their slot cadence against every poll.

20 destinations of 5,000 hourly-scheduled backups, polled every minute, against the simulator
on loopback with a simulated clock moved on a minute between polls, so an hour takes minutes.
Then 50 addons backed up to managed storage only (hourly, daily and weekly schedules), watched
for a simulated day with poll.interval 5m: read every poll, or as `exporter/cadence.py` plans.
The simulator's own request log is what is counted.

    python bench/requests.py [--destinations 20] [--backups 5000] [--minutes 60]
                             [--managed 50] [--hours 24]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace

from exporter.config import (
    Account,
    Config,
    CoverageSettings,
    NorthflankSettings,
    PollSettings,
    RateLimitSettings,
)
from exporter.durations import format_duration
from exporter.resources.cadenced import heartbeat
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.scenarios import managed_fleet
from exporter.simulator.units import HOUR

TARGET_RATIO = 20.0


class SimulatedTime:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def config(
    simulator: Simulator,
    interval: float,
    incremental: bool,
    coverage: CoverageSettings | None = None,
) -> Config:
    account = Account(
        northflank=NorthflankSettings(api_url=simulator.base_url, token=simulator.token),
        # Unlimited here: the point is what each mode needs, not what a budget allows.
        rate_limit=RateLimitSettings(requests_per_hour=10**9, reserve=0),
    )
    return Config(
        accounts=(account,),
        poll=replace(PollSettings(), interval=interval, incremental=incremental, concurrency=4),
        coverage=coverage or CoverageSettings(enabled=False),
    )


async def every_minute(
    exporter: Exporter, clock: SimulatedTime, polls: int, interval: float
) -> None:
    """Poll as the poller does every `interval`, the clock moving on between polls."""
    for _ in range(polls):
        clock.now += interval
        await exporter.poll_once()


def backup_lines(exporter: Exporter) -> list[str]:
    return [
        line
        for line in exporter.exposition().decode().splitlines()
        if line.startswith("northflank_") and not line.startswith("northflank_exporter_")
    ]


async def measure(args: argparse.Namespace) -> int:
    clock = SimulatedTime(time.time())
    world = build_world(1, clock.now, args.destinations, args.backups, interval="hourly")
    interval = 60.0
    with Simulator(world, token="bench", clock=clock, rate_limit=10**9) as simulator:  # noqa: S106
        full = Exporter(config(simulator, interval, incremental=False), clock=clock)
        await every_minute(full, clock, args.full_cycles, interval)
        full_per_cycle = len(simulator.requests) / args.full_cycles
        await full.aclose()

        simulator.requests.clear()
        incremental = Exporter(config(simulator, interval, incremental=True), clock=clock)
        await every_minute(incremental, clock, 1, interval)  # the first, full, sync
        first = len(simulator.requests)
        simulator.requests.clear()
        started = time.monotonic()
        await every_minute(incremental, clock, args.minutes, interval)
        steady = len(simulator.requests) * 60 / args.minutes
        resync_share = (first - 1) * HOUR / incremental.config.poll.full_resync_interval
        fresh = Exporter(config(simulator, interval, incremental=False), clock=clock)
        await fresh.poll_once()
        same = backup_lines(fresh) == backup_lines(incremental)
        snapshot = incremental.parts[0].poller.snapshot
        oldest = max(
            clock.now - s.last_success for s in snapshot.destinations if s.last_success is not None
        )
        for exporter in (incremental, fresh):
            await exporter.aclose()

    full_hour = full_per_cycle * HOUR / interval
    incremental_hour = steady + resync_share
    ratio = full_hour / incremental_hour
    print(
        f"{args.destinations} destinations x {args.backups} hourly backups, "
        f"poll.interval 1m, {args.minutes} simulated minutes in {time.monotonic() - started:.0f}s"
    )
    print(f"{'mode':<14}{'requests/hour':>16}")
    print(f"{'full':<14}{full_hour:>16.0f}")
    print(
        f"{'incremental':<14}{incremental_hour:>16.0f}   ({steady:.0f} polling + "
        f"{resync_share:.0f} for a full resync every 6h)"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio: {ratio:.1f}x fewer requests (target >= {TARGET_RATIO:.0f}x: {verdict})")
    print(
        f"freshness: incremental exposition equals a full poll's: {'yes' if same else 'NO'}; "
        f"oldest successful poll {oldest:.0f}s ago (interval {interval:.0f}s)"
    )
    return 0 if ratio >= TARGET_RATIO and same and oldest <= interval else 1


COVERAGE_INTERVAL = 300.0
TARGET_PER_BACKUP = 2.0


def listing_reads(simulator: Simulator) -> int:
    return sum(1 for r in simulator.requests if "/addons/" in r.path and "/backups" in r.path)


async def watch(
    simulator: Simulator, clock: SimulatedTime, hours: float, settings: CoverageSettings
) -> int:
    """Managed-listing reads over `hours` of the coverage loop's own steps, the clock moved
    on to each step's next due moment (never more than a minute at a time)."""
    exporter = Exporter(config(simulator, COVERAGE_INTERVAL, True, settings), clock=clock)
    watcher = exporter.parts[0].coverage
    assert watcher is not None
    simulator.requests.clear()
    end = clock.now + hours * HOUR
    due = clock.now
    while clock.now < end:
        if clock.now >= due:
            due = clock.now + await watcher.step()
        clock.now = min(due, clock.now + 60.0)
    await exporter.aclose()
    return listing_reads(simulator)


async def measure_coverage(args: argparse.Namespace) -> bool:
    start = time.time()
    clock = SimulatedTime(start)
    world = replace(build_world(1, start, 1, 100), elsewhere=managed_fleet(1, args.managed))
    with Simulator(world, token="bench", clock=clock, rate_limit=10**9) as simulator:  # noqa: S106
        began = time.monotonic()
        # a heartbeat of one poll interval: every listing read every poll
        every = CoverageSettings(interval=COVERAGE_INTERVAL, schedules_max_age=COVERAGE_INTERVAL)
        every_poll = await watch(simulator, clock, args.hours, every)
        clock.now = start
        cadence = await watch(simulator, clock, args.hours, CoverageSettings())
        took = time.monotonic() - began
    scheduled = 0
    for addon in world.elsewhere:
        for slot in addon.slots_backwards(start + args.hours * HOUR):
            if slot <= start:
                break
            scheduled += 1
    beat = heartbeat(CoverageSettings())
    heartbeats = args.managed * args.hours * HOUR / beat
    per_backup = (cadence - heartbeats) / scheduled
    print()
    print(
        f"{args.managed} managed-storage addons, {scheduled} scheduled backups in "
        f"{args.hours:g} simulated hours ({took:.0f}s), poll.interval 5m, heartbeat "
        f"{format_duration(beat)}"
    )
    print(f"{'listing reads':<14}{'requests/hour':>16}")
    print(f"{'every poll':<14}{every_poll / args.hours:>16.0f}")
    print(
        f"{'cadence':<14}{cadence / args.hours:>16.0f}   ({per_backup:.2f} per scheduled "
        f"backup beyond the {heartbeats / args.hours:.0f} heartbeat reads an hour)"
    )
    met = per_backup <= TARGET_PER_BACKUP
    verdict = "met" if met else "MISSED"
    print(
        f"ratio: {every_poll / cadence:.1f}x fewer requests (target <= "
        f"{TARGET_PER_BACKUP:.0f} per scheduled backup plus the heartbeat: {verdict})"
    )
    return bool(met)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--destinations", type=int, default=20)
    parser.add_argument("--backups", type=int, default=5000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--full-cycles", type=int, default=2)
    parser.add_argument("--managed", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    destinations = asyncio.run(measure(args))
    coverage = asyncio.run(measure_coverage(args))
    return 1 if destinations or not coverage else 0


if __name__ == "__main__":
    sys.exit(main())
