"""Coverage on a large account, as a user gets it: the default configuration (coverage on, 300
requests an hour), every loop running as when serving.

A fleet of 1,000 addons in 50 projects over four destinations (`monitoring/fleet.py`), some of
them unprotected: no schedule, so no destination lists them. The exporter's real loops (polls,
coverage, rendering) run side by side on an event loop whose clock jumps to the next timer
whenever nothing is ready, so hours of budget waits pass in seconds and every wait is as long
as it would be live. Measured from the start:

- when every unprotected addon is on /metrics (`northflank_coverage_addon_unprotected` 1);
- when the inventory is complete: every addon's schedules on /metrics, and
  `northflank_coverage_up` 1;
- the steady cost in requests an hour, by kind, over the hours after that.

    python bench/coverage.py [--addons 1000] [--projects 50] [--unprotected 10] [--hours 6]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.api import cost_kind
from exporter.collector import Rendered
from exporter.config import Account, Config, NorthflankSettings
from exporter.durations import format_duration
from exporter.resources.addon_schedules import ADDON_COVERAGE
from exporter.runtime import Exporter
from exporter.simulator import Simulator
from exporter.simulator.server import InProcess
from exporter.simulator.units import DAY, HOUR
from exporter.simulator.virtual_time import VirtualTimeLoop
from monitoring.fleet import Fleet, build_fleet
from monitoring.fleet_served import FleetAt

TOKEN = "bench-coverage"  # noqa: S105 - the simulator's, not a secret
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()  # fixed: never the clock
LOOK_EVERY = 15.0  # how often the benchmark looks at what /metrics would show
# Targets (issue 32), at 1,000 addons and the defaults: every unprotected addon on /metrics
# within 5 minutes, every destination's newest backup within 1, and a steady cost of at most
# 150 requests an hour, restores included.
UNPROTECTED_TARGET = 300.0
NEWEST_TARGET = 60.0
STEADY_TARGET = 150.0
BUDGET = 300


class Counted(InProcess):
    """The simulator's answers, each request counted by kind and by the hour it was sent in."""

    def __init__(self, simulator: Simulator, clock: asyncio.AbstractEventLoop) -> None:
        super().__init__(simulator)
        self._loop = clock
        self.sent: list[tuple[float, str]] = []
        self.by_path: dict[str, list[float]] = {}  # when each path was asked for

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now, path = self._loop.time(), request.url.path
        self.sent.append((now, cost_kind(path)))
        self.by_path.setdefault(path, []).append(now)
        return await super().handle_async_request(request)


def hourly_volume_slots_read(fleet: Fleet, by_path: dict[str, list[float]], end: float) -> str:
    """How many slots of the hourly volumes had a read of the volume's backups before they
    turned overdue (slot plus the grace, 1 h): else its overdue gauge shows a backup that
    landed as overdue until a read comes. From the third hour: the first is every first read's.
    The slots are the fleet's own."""
    read, slots = 0, 0
    for volume in fleet.volumes:
        if volume.schedule["interval"] != "hourly":
            continue
        minute = volume.schedule["minute"][0] * 60
        reads = by_path.get(f"/v1/projects/{volume.project}/volumes/{volume.ident}/backups", [])
        slot = START + 2 * HOUR - (START + 2 * HOUR - minute) % HOUR
        while slot + HOUR <= end:
            slots += 1
            read += any(slot <= at < slot + HOUR for at in reads)
            slot += HOUR
    return f"{read:,} of {slots:,}"


def hours_at_ceiling(sent: list[tuple[float, str]], start: float, end: float) -> str:
    """Of the whole hours from `start`, how many sent at least background's three quarters of
    the budget: hours the budget, not what is due, decided what was read."""
    ceiling = 0.75 * BUDGET
    full, hours = 0, 0
    at = start
    while at + HOUR <= end:
        hours += 1
        full += sum(1 for sent_at, _ in sent if at <= sent_at < at + HOUR) >= ceiling
        at += HOUR
    return f"{full} of {hours}"


def the_fleet(addons: int, projects: int, unprotected: int) -> tuple[Fleet, set[tuple[str, str]]]:
    """Healthy addons, every (addons // unprotected)th of them made unprotected: spread over the
    projects, as a forgotten database would be."""
    fleet, _ = build_fleet(1, addons, 1, START, projects=projects)
    healthy = [a for a in fleet.addons if a.incident is None and a.ident.startswith("db-")]
    step = max(1, len(healthy) // max(unprotected, 1))
    chosen = {a.ident for a in healthy[step // 2 :: step][:unprotected]}
    made = tuple(
        replace(a, incident="unprotected", incident_at=START - DAY) if a.ident in chosen else a
        for a in fleet.addons
        if a.incident is None  # the backtest's incidents are not this benchmark's
    )
    fleet = replace(fleet, addons=made, volumes=tuple(v for v in fleet.volumes if not v.incident))
    return fleet, {(a.project, a.ident) for a in made if a.ident in chosen}


def every_newest_backup(rendered: Rendered) -> bool:
    """Every destination shows its newest completed backup on /metrics."""
    states = [state for _, snapshot in rendered.accounts for state in snapshot.destinations]
    return bool(states) and all(
        state.summary is not None and state.summary.last_completed is not None for state in states
    )


async def watch(
    exporter: Exporter, unprotected: set[tuple[str, str]], hours: float, loop: VirtualTimeLoop
) -> dict[str, float | None]:
    """Serve until the inventory is complete and `hours` more have passed."""
    stop = asyncio.Event()
    loops = [part.poller.run(stop) for part in exporter.parts]
    loops += [part.coverage.run(stop) for part in exporter.parts if part.coverage is not None]
    running = asyncio.gather(*loops, exporter.keep_fresh(stop))
    seen: dict[str, float | None] = dict.fromkeys(
        ("first numbers", "newest backups", "unprotected", "complete")
    )
    try:
        while True:
            await asyncio.sleep(LOOK_EVERY)
            now = loop.time() - START
            rendered = exporter.rendered
            if seen["first numbers"] is None and rendered.ready():
                seen["first numbers"] = now
            if seen["newest backups"] is None and every_newest_backup(rendered):
                seen["newest backups"] = now
            rows = [c for _, covered in rendered.coverage for c in covered.rows(ADDON_COVERAGE)]
            shown = {(c.addon.project, c.addon.id) for c in rows if c.unprotected}
            if seen["unprotected"] is None and unprotected <= shown:
                seen["unprotected"] = now
            every_addon = bool(rows) and all(c.schedules is not None for c in rows)
            if seen["complete"] is None and every_addon and any(c.up for _, c in rendered.coverage):
                seen["complete"] = now
            if seen["complete"] is not None and now >= seen["complete"] + hours * HOUR:
                return seen
    finally:
        stop.set()
        await running


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--addons", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--unprotected", type=int, default=10)
    parser.add_argument("--hours", type=float, default=6, help="steady state measured this long")
    args = parser.parse_args()
    fleet, unprotected = the_fleet(args.addons, args.projects, args.unprotected)
    loop = VirtualTimeLoop(START)
    clock = loop.time
    with Simulator(
        FleetAt(fleet, clock),
        token=TOKEN,
        clock=clock,
        rate_limit=10**9,
        refresh_seconds=0,
    ) as simulator:
        transport = Counted(simulator, loop)
        account = Account(northflank=NorthflankSettings(api_url=simulator.base_url, token=TOKEN))
        config = Config(accounts=(account,))  # the defaults: coverage on, 300 an hour
        assert config.coverage.enabled and account.rate_limit.requests_per_hour == BUDGET
        asyncio.set_event_loop(loop)
        try:
            exporter = Exporter(config, clock=clock, transport=transport)
            seen = loop.run_until_complete(watch(exporter, unprotected, args.hours, loop))
            loop.run_until_complete(exporter.aclose())
        finally:
            loop.close()
    return 0 if report(args, fleet, seen, transport) else 1


def report(
    args: argparse.Namespace,
    fleet: Fleet,
    seen: dict[str, float | None],
    transport: Counted,
) -> bool:
    """Print what was measured, with each target's verdict; whether every target was met."""
    sent = transport.sent
    projects = len(fleet.projects())
    print(
        f"{len(fleet.addons)} addons ({args.unprotected} unprotected) and {len(fleet.volumes)} "
        f"volumes in {projects} projects, {len(fleet.destinations)} destinations; default "
        f"configuration ({BUDGET} requests an hour); times from the start, in virtual time"
    )
    for what, at in seen.items():
        shown = "never" if at is None else format_duration(at)
        print(f"  {what:<16} {shown}")
    complete = seen["complete"]
    assert complete is not None
    before = Counter(kind for at, kind in sent if at - START <= complete)
    print(f"  requests until the inventory was complete: {sum(before.values())} {dict(before)}")
    steady_from = START + complete + HOUR  # the hour after the first round is still busy
    steady = [kind for at, kind in sent if at >= steady_from]
    hours = max((sent[-1][0] - steady_from) / HOUR, 1e-9) if sent else 1.0
    per_hour = Counter(steady)
    print(
        f"  steady cost: {len(steady) / hours:.0f} requests an hour over {hours:.1f} h "
        f"({', '.join(f'{kind} {n / hours:.0f}' for kind, n in sorted(per_hour.items()))})"
    )
    end = sent[-1][0] if sent else START
    print(
        "  hourly volumes' slots read before they turned overdue: "
        f"{hourly_volume_slots_read(fleet, transport.by_path, end)}"
    )
    print(
        f"  hours of the steady window at background's ceiling ({0.75 * BUDGET:.0f}): "
        f"{hours_at_ceiling(sent, steady_from, end)}"
    )
    verdicts = [
        ("unprotected on /metrics", seen["unprotected"], UNPROTECTED_TARGET, "s"),
        ("newest backups on /metrics", seen["newest backups"], NEWEST_TARGET, "s"),
        ("steady cost", len(steady) / hours, STEADY_TARGET, " requests an hour"),
    ]
    met = True
    for what, value, target, unit in verdicts:
        ok = value is not None and value <= target
        met = met and ok
        print(f"  {what} within {target:.0f}{unit}: {'met' if ok else 'MISSED'}")
    return met


if __name__ == "__main__":
    sys.exit(main())
