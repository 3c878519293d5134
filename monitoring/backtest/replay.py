"""The replay: the real exporter polls the simulated fleet on a fake clock, and each rendering
of the series the rules read is kept as history, ready for promtool to import."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from exporter.collector import SnapshotCollector
from exporter.config import (
    Account,
    Config,
    CoverageSettings,
    NorthflankSettings,
    PollSettings,
    RateLimitSettings,
    RestoreSettings,
)
from exporter.runtime import Exporter
from exporter.simulator import Simulator
from exporter.simulator.server import InProcess
from exporter.simulator.units import MINUTE
from monitoring.fleet import Fleet, build_fleet
from monitoring.fleet_restores import POLICIES
from monitoring.fleet_served import FleetAt

POLL = 300.0
JOB = "northflank-backup-exporter"
# A run's destinations are replayed by this many processes side by side (a 2-core machine):
# each is one exporter of its own (instance backtest-N), as sharded exporters would be. The
# suite of many seeds replays each run in one process instead, two runs side by side.
WORKERS = 2
OUTAGE = 20 * MINUTE
KEEPALIVE = 30 * MINUTE
TOKEN = "backtest-token-0123456789"  # noqa: S105 - the simulator's, nothing real

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class History:
    """Every series rendered, as the samples that say what a query would see.

    A poll's sample is kept when the series appears or changes value, and at least every
    KEEPALIVE otherwise; the replay's Prometheus looks back further than that, so a query sees
    the value of the last poll, as live. A series that a poll no longer renders gets a NaN
    sample then: every comparison with NaN is false, as with a series that went stale (live,
    Prometheus writes a staleness marker, which OpenMetrics cannot carry). Written in full, a
    month of 200 addons is gigabytes of OpenMetrics (bench/README.md, "Speed choices").
    """

    series: dict[SeriesKey, tuple[array[float], array[float]]] = field(default_factory=dict)
    # per series: [when its last sample was kept, that sample's value, the last poll it was in]
    _last: dict[SeriesKey, list[float]] = field(default_factory=dict)

    def add(
        self, name: str, labels: tuple[tuple[str, str], ...], moment: float, value: float
    ) -> None:
        """`labels` in the same order on every poll (the collector's, then the target's): not
        sorted here, which took the rendering of a day of 80 addons from 2.4 s to 2.1 s."""
        key = (name, labels)
        last = self._last.get(key)
        if last is not None:
            last[2] = moment
            if last[1] == value and moment - last[0] < KEEPALIVE:
                return
            last[0], last[1] = moment, value
        else:
            self._last[key] = [moment, value, moment]
        times, values = self.series.setdefault(key, (array("d"), array("d")))
        times.append(moment)
        values.append(value)

    def poll_done(self, moment: float) -> None:
        """End, with a NaN sample, every series this poll did not render."""
        for key, last in self._last.items():
            if last[2] < moment and not math.isnan(last[1]):
                last[0], last[1] = moment, math.nan
                times, values = self.series[key]
                times.append(moment)
                values.append(math.nan)

    def write_openmetrics(self, path: Path) -> int:
        """One family after another, each series' samples together and in time order."""
        by_family: dict[str, list[Any]] = {}
        for (name, labels), points in self.series.items():
            by_family.setdefault(_family(name), []).append((name, labels, points))
        written = 0
        with path.open("w") as out:
            for family, members in sorted(by_family.items()):
                kind = (
                    "info"
                    if members[0][0].endswith("_info") and family != members[0][0]
                    else "gauge"
                )
                out.write(f"# TYPE {family} {kind}\n")
                for name, labels, (times, values) in sorted(members, key=lambda m: m[:2]):
                    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    for moment, value in zip(times, values, strict=True):
                        shown = "NaN" if math.isnan(value) else repr(value)
                        out.write(f"{name}{{{text}}} {shown} {moment:.3f}\n")
                        written += 1
            out.write("# EOF\n")
        return written


def _family(name: str) -> str:
    return name[: -len("_info")] if name.endswith("_info") else name


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True, kw_only=True)
class Plan:
    """One replay process's share: its destinations, the window, and the noise."""

    seed: int
    addons: int
    days: float  # how the fleet is laid out (its incidents spread over these days)
    start: float
    end: float  # the replay's last poll: at least start + days, more to judge every incident
    worker: int
    workers: int  # how many share the run's destinations
    names: frozenset[str]  # the series the rules read
    restart_at: float
    outage_at: float
    outage_until: float

    @property
    def instance(self) -> str:
        return f"backtest-{self.worker}:10117"


class WarningsSeen(logging.Handler):
    """The exporter's warnings and errors, each with the replay's moment. A healthy fleet draws
    none outside the API outage: the exporter is never silent, so a warning here means the
    fleet, or the exporter, is not what the run takes it for."""

    def __init__(self, clock: Any) -> None:
        super().__init__(logging.WARNING)
        self.clock = clock
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((self.clock(), record.getMessage()))


@dataclass
class Share:
    """What one replay process did."""

    polls: int
    samples: int
    warnings: list[tuple[float, str]]
    requests: dict[str, int] = field(default_factory=dict)  # API requests made, by endpoint


def worker_fleet(plan: Plan) -> Fleet:
    """The fleet, cut to this worker's destinations."""
    fleet, _ = build_fleet(plan.seed, plan.addons, plan.days, plan.start)
    mine = tuple(d for n, d in enumerate(fleet.destinations) if n % plan.workers == plan.worker)
    ids = {d.id for d in mine}
    return replace(
        fleet,
        destinations=mine,
        addons=tuple(a for a in fleet.addons if a.destination in ids),
        volumes=fleet.volumes if plan.worker == 0 else (),  # one exporter judges each volume
    )


def replay_share(plan: Plan, workdir: str) -> Share:
    """Replay this worker's destinations; write their history to workdir."""
    requests: Counter[str] = Counter()
    history, polls, warnings = asyncio.run(replay(worker_fleet(plan), plan, requests))
    samples = history.write_openmetrics(Path(workdir) / f"history-{plan.worker}.om")
    return Share(polls, samples, warnings, dict(requests))


def _count_requests(exporter: Exporter, requests: Counter[str]) -> None:
    """Add the requests the exporter made, by endpoint, before it goes (a restart, the end)."""
    for part in exporter.parts:
        for (endpoint, _), number in part.context.stats.requests.items():
            requests[endpoint] += number


def _config(simulator: Simulator) -> Config:
    account = Account(
        northflank=NorthflankSettings(api_url=simulator.base_url, token=TOKEN),
        rate_limit=RateLimitSettings(requests_per_hour=10**9, reserve=0),
    )
    return Config(
        accounts=(account,),
        poll=replace(
            PollSettings(), interval=POLL, concurrency=4, retry_backoff=0.01, max_retries=1
        ),
        coverage=CoverageSettings(),
        restores=RestoreSettings(
            drills=tuple((re.compile(pattern), every) for pattern, every in POLICIES)
        ),
    ).with_listen_address("127.0.0.1:0")


def _render(exporter: Exporter, plan: Plan, moment: float, history: History) -> None:
    """The series the rules read, as one scrape at `moment` would see them."""
    rendered = exporter.gather()  # the families, without the text a scrape would be sent
    collector = SnapshotCollector(lambda: rendered, clock=lambda: moment)
    target = _target(plan)
    for family in collector.collect():
        for sample in family.samples:
            if sample.name in plan.names:
                history.add(sample.name, (*sample.labels.items(), *target), moment, sample.value)
    history.add("up", target, moment, 1.0)


def _target(plan: Plan) -> tuple[tuple[str, str], ...]:
    """The labels Prometheus gives every series it scrapes from this worker's exporter."""
    return (("instance", plan.instance), ("job", JOB))


async def replay(
    fleet: Fleet, plan: Plan, requests: Counter[str] | None = None
) -> tuple[History, int, list[tuple[float, str]]]:
    """Poll the fleet every POLL from plan.start to plan.end, with the API outage and the
    exporter restart of the plan; the history, the polls made, and the exporter's warnings.
    `requests` gets the requests made, by endpoint."""
    requests = Counter() if requests is None else requests
    clock = [plan.start]
    history = History()
    at = FleetAt(fleet, lambda: clock[0])
    warnings = WarningsSeen(lambda: clock[0])
    logger = logging.getLogger("exporter")
    logger.addHandler(warnings)
    logger.propagate = False  # kept, not printed: the outage's lines are meant
    try:
        # The simulator's answers reach the exporter's real client in process (InProcess),
        # not over loopback HTTP (bench/README.md, "Speed choices").
        with Simulator(
            at, token=TOKEN, clock=lambda: clock[0], rate_limit=10**9, refresh_seconds=0
        ) as simulator:
            transport = InProcess(simulator)
            exporter = Exporter(_config(simulator), clock=lambda: clock[0], transport=transport)
            polls = 0
            while clock[0] <= plan.end:
                moment = clock[0]
                in_outage = plan.outage_at <= moment < plan.outage_until
                simulator.faults.error_rate = 1.0 if in_outage else 0.0
                if plan.restart_at <= moment < plan.restart_at + POLL:
                    # the process is gone for this scrape; the new one starts with nothing held
                    _count_requests(exporter, requests)
                    await exporter.aclose()
                    exporter = Exporter(
                        _config(simulator), clock=lambda: clock[0], transport=transport
                    )
                    history.add("up", _target(plan), moment, 0.0)
                else:
                    await exporter.poll_once(due_only=True)  # as the serving loop reads
                    _render(exporter, plan, moment, history)
                history.poll_done(moment)
                polls += 1
                clock[0] += POLL
            _count_requests(exporter, requests)
            await exporter.aclose()
    finally:
        logger.removeHandler(warnings)
        logger.propagate = True
    return history, polls, warnings.seen
