"""Load and soak: many scrapers during polls always see one whole snapshot, and thousands of
poll cycles over changing data leave no series behind and no memory growing."""

from __future__ import annotations

import gc
import itertools
import logging
import re
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx

from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.scenarios import SCENARIOS
from tests.conftest import NOW, TOKEN, Clock, Serving, config_for, poll_once

SAMPLE = re.compile(r"^(northflank_addon_backups|northflank_backups)\{(.*)\} (\S+)$")


def sums_by_destination(text: str) -> tuple[dict[str, float], dict[str, float]]:
    destinations: dict[str, float] = defaultdict(float)
    addons: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            target = destinations if match.group(1) == "northflank_backups" else addons
            target[labels["destination"]] += float(match.group(3))
    return destinations, addons


LAST_FAMILY = "northflank_exporter_config_last_reload_success_timestamp_seconds"  # rendered last
POLLS = 10


class TickingClock:
    """A fake clock that moves on by `step` each time it is read, whatever the wall clock does:
    each poll reads it many times, so each sees new data, at any speed of the machine."""

    def __init__(self, start: float, step: float) -> None:
        self._ticks = itertools.count()
        self.start = start
        self.step = step

    def __call__(self) -> float:
        return self.start + next(self._ticks) * self.step


def test_fifty_scrapers_during_polls_always_see_one_whole_snapshot():
    fast_clock = TickingClock(NOW, 10.0)

    world = build_world(3, NOW, 3, 400, scenarios=tuple(SCENARIOS))
    with Simulator(world, token=TOKEN, clock=fast_clock, rate_limit=10**9) as simulator:
        config = config_for(simulator, interval=0.05, concurrency=3)
        exporter = Exporter(config, clock=fast_clock)
        with Serving(exporter) as serving:
            serving.wait_ready()
            deadline = time.monotonic() + 600  # a guard against a hang, not a speed target
            seen_totals: dict[str, set[float]] = defaultdict(set)
            lock = threading.Lock()

            def polls() -> int:
                snapshot = exporter.parts[0].poller.snapshot
                return sum(n for (_, mode), n in snapshot.pages_fetched)

            def scrape_until_polled() -> int:
                """Scrape until the exporter has polled POLLS pages more (at least once)."""
                count = 0
                until = polls() + POLLS
                with httpx.Client() as client:
                    while count == 0 or polls() < until:
                        assert time.monotonic() < deadline, "the exporter stopped polling"
                        text = client.get(f"{serving.url}/metrics").text
                        # whole: every family of the snapshot, and the live ones after it
                        assert f"\n# TYPE {LAST_FAMILY} gauge\n" in text
                        assert text.endswith("\n") and "process_" in text.split(LAST_FAMILY)[-1]
                        destinations, addons = sums_by_destination(text)
                        assert set(destinations) == {"primary-backups", "backups-02", "backups-03"}
                        for destination, total in destinations.items():
                            # every backup has an addon: the two folds of one poll agree
                            assert addons[destination] == total, destination
                            with lock:
                                seen_totals[destination].add(total)
                        count += 1
                return count

            with ThreadPoolExecutor(max_workers=50) as pool:
                list(pool.map(lambda _: scrape_until_polled(), range(50)))
    # the data really changed under the scrapers
    assert any(len(totals) > 1 for totals in seen_totals.values())


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def exported(exporter):
    """(destinations, (destination, addon) pairs, backup series) from one exposition."""
    lines = [
        line
        for line in exporter.exposition().decode().splitlines()
        if line.startswith("northflank_") and "_exporter_" not in line
    ]
    destinations = set(
        re.findall(
            r'^northflank_up\{account="default",destination="([^"]+)"', "\n".join(lines), re.M
        )
    )
    addons = {
        (
            dict(re.findall(r'(\w+)="([^"]*)"', line))["destination"],
            dict(re.findall(r'(\w+)="([^"]*)"', line))["addon"],
        )
        for line in lines
        if line.startswith("northflank_addon_info{")
    }
    return destinations, addons, len(lines)


def test_soak_thousands_of_cycles_as_destinations_and_addons_come_and_go(capsys, caplog):
    # Kept log records would grow with the cycles and hide what the exporter itself holds.
    caplog.set_level(logging.WARNING)
    clock = Clock(NOW)
    full = build_world(4, NOW, 4, 120)
    states = []
    for keep_destinations in (4, 2, 3, 1):
        destinations = tuple(
            replace(d, addons=d.addons[: 1 + (i + keep_destinations) % len(d.addons)])
            for i, d in enumerate(full.destinations[:keep_destinations])
        )
        states.append(replace(full, destinations=destinations))
    with Simulator(full, token=TOKEN, clock=clock, rate_limit=10**9) as simulator:
        exporter = Exporter(config_for(simulator), clock=clock)
        lines_of_state: dict[int, int] = {}
        baseline = None
        cycles = 2000
        for cycle in range(cycles):
            state = cycle % len(states)
            simulator.set_world(states[state])
            simulator.requests.clear()  # the simulator's own log is not the exporter's memory
            assert poll_once(exporter)
            destinations, addons, lines = exported(exporter)
            world = states[state]
            assert destinations == {d.id for d in world.destinations}
            assert addons == {(d.id, a.addon_id) for d in world.destinations for a in d.addons}
            if cycle < len(states):
                lines_of_state[state] = lines
            assert lines == lines_of_state[state], (cycle, state)
            if cycle == 200:
                gc.collect()
                baseline, baseline_objects = rss_bytes(), len(gc.get_objects())
        gc.collect()
        growth, objects = rss_bytes() - baseline, len(gc.get_objects()) - baseline_objects
        with capsys.disabled():
            print(
                f"\nsoak: {cycles} poll cycles, after warm-up RSS grew {growth / 1e6:.1f} MB "
                f"and live objects by {objects}"
            )
        # Objects, not bytes: the allocator's RSS moves with the machine, while one object kept
        # a cycle is 1,800 more here (what bench/ measures in bytes is memory's target).
        assert objects < 500
