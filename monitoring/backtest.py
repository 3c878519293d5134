"""Backtest the alert rules on simulated history: false alarms, and time to detect.

    python monitoring/backtest.py [--addons 200] [--days 30] [--seed 1] [--json]

A fleet (`monitoring/fleet.py`: healthy noise and one addon per incident, each with a known
start) is served by the simulator on loopback. The real exporter polls it every poll.interval
on a fake clock, through its real client, sync, folds and collector; each rendering of the
families the rules read is kept with its timestamp. The history is written as OpenMetrics,
turned into a TSDB by `promtool tsdb create-blocks-from openmetrics`, and served by a real
Prometheus; each alert's expression is evaluated over the whole range with `query_range` (step:
the evaluation interval) and its `for:` applied to the result. Firings are matched to the
incidents; the table says, per alert, what was detected, how late, and what fired for nothing.

Why this equals what a live Prometheus would fire, and where it does not: monitoring/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import multiprocessing
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.collector import SnapshotCollector
from exporter.config import (
    Account,
    Config,
    CoverageSettings,
    NorthflankSettings,
    PollSettings,
    RateLimitSettings,
)
from exporter.runtime import Exporter
from exporter.simulator import Simulator
from monitoring.fleet import (
    DAY,
    HOUR,
    MINUTE,
    FleetAddon,
    FleetAt,
    build_fleet,
    scheduled_slots,
    skipped,
)
from monitoring.fleet import (
    INCIDENTS as INCIDENT_KINDS,
)

RULES = Path(__file__).resolve().parent / "alerts.yaml"
POLL = 300.0
EVALUATION = 60.0
JOB = "northflank-backup-exporter"
# The fleet's destinations are replayed by this many processes side by side (a 2-core machine):
# each is one exporter of its own (instance backtest-N), as sharded exporters would be.
WORKERS = 2
OUTAGE = 20 * MINUTE
KEEPALIVE = 30 * MINUTE
MAX_POINTS = 10_000  # Prometheus answers at most 11,000 points a series per query_range
TOKEN = "backtest-token-0123456789"  # noqa: S105 - the simulator's, nothing real


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    hold: float  # for:
    severity: str
    keep: float = 0.0  # keep_firing_for:


@dataclass(frozen=True)
class Incident:
    kind: str
    addon: str
    start: float  # when the failure became true
    alert: str  # the alert that detects it
    target: float  # the longest time to detect allowed


@dataclass
class Firing:
    alert: str
    labels: dict[str, str]
    start: float  # when it fired (its condition held for `for:`)
    end: float


@dataclass
class History:
    """Every series rendered, as the samples that say what a query would see.

    A poll's sample is kept when the series appears or changes value, and at least every
    KEEPALIVE otherwise; the replay's Prometheus looks back further than that, so a query sees
    the value of the last poll, as live. A series that a poll no longer renders gets a NaN
    sample then: every comparison with NaN is false, as with a series that went stale (live,
    Prometheus writes a staleness marker, which OpenMetrics cannot carry). Written in full, a
    month of 200 addons was 5.4 GB of OpenMetrics, and promtool took over ten minutes a file.
    """

    series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[array, array]] = field(
        default_factory=dict
    )
    # per series: [when its last sample was kept, that sample's value, the last poll it was in]
    _last: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = field(default_factory=dict)

    def add(self, name: str, labels: dict[str, str], moment: float, value: float) -> None:
        key = (name, tuple(sorted(labels.items())))
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


def load_rules() -> list[Rule]:
    rules = []
    for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]:
        rules.append(
            Rule(
                rule["alert"],
                rule["expr"],
                _seconds(rule.get("for", "0s")),
                rule["labels"]["severity"],
                _seconds(rule.get("keep_firing_for", "0s")),
            )
        )
    return rules


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


# An instant selector of one of our series, with its label matchers, not followed by a range.
_INSTANT = re.compile(r"\b(northflank_[a-z0-9_]+)(\{[^}]*\})?(?![\w{])(?!\s*\[)")


def stale_free(expr: str) -> str:
    """The expression with every instant selector of our series read as `(selector > -Inf)`,
    which drops NaN samples: a series that vanished (a NaN sample, see History) is then absent
    at once, for `unless` and `count` too, as a live staleness marker makes it. The exporter
    never publishes NaN, so nothing else is dropped; range selectors are left as they are."""
    return _INSTANT.sub(r"(\1\2 > -Inf)", expr)


def rule_metrics(rules: list[Rule]) -> set[str]:
    return {name for rule in rules for name in re.findall(r"\bnorthflank_[a-z0-9_]+", rule.expr)}


# --- the replay


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
    ).with_listen_address("127.0.0.1:0")


def _render(
    exporter: Exporter, names: set[str], moment: float, history: History, instance: str
) -> None:
    """The families the rules read, as one scrape at `moment` would see them."""
    rendered = exporter.gather()  # the families, without the text a scrape would be sent
    collector = SnapshotCollector(lambda: rendered, clock=lambda: moment, only=frozenset(names))
    for family in collector.collect():
        for sample in family.samples:
            if sample.name in names:
                labels = {**sample.labels, "job": JOB, "instance": instance}
                history.add(sample.name, labels, moment, sample.value)
    history.add("up", {"job": JOB, "instance": instance}, moment, 1.0)


@dataclass(frozen=True)
class Plan:
    """One replay process's share: its destinations, the window, and the noise."""

    seed: int
    addons: int
    days: float
    start: float
    worker: int
    names: frozenset[str]
    restart_at: float
    outage_at: float

    @property
    def end(self) -> float:
        return self.start + self.days * DAY

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


def replay_share(plan: Plan, workdir: str) -> Share:
    """Replay this worker's destinations; write their history to workdir."""
    fleet, _ = build_fleet(plan.seed, plan.addons, plan.days, plan.start)
    mine = tuple(d for n, d in enumerate(fleet.destinations) if n % WORKERS == plan.worker)
    ids = {d.id for d in mine}
    fleet = replace(
        fleet, destinations=mine, addons=tuple(a for a in fleet.addons if a.destination in ids)
    )
    history, polls, warnings = asyncio.run(replay(fleet, plan))
    samples = history.write_openmetrics(Path(workdir) / f"history-{plan.worker}.om")
    return Share(polls, samples, warnings)


async def replay(fleet: Any, plan: Plan) -> tuple[History, int, list[tuple[float, str]]]:
    start, end, names, instance = plan.start, plan.end, plan.names, plan.instance
    restart_at, outage_at = plan.restart_at, plan.outage_at
    clock = [start]
    history = History()
    at = FleetAt(fleet, lambda: clock[0])
    warnings = WarningsSeen(lambda: clock[0])
    logger = logging.getLogger("exporter")
    logger.addHandler(warnings)
    logger.propagate = False  # kept, not printed: the outage's lines are meant
    try:
        with Simulator(
            at, token=TOKEN, clock=lambda: clock[0], rate_limit=10**9, refresh_seconds=0
        ) as simulator:  # type: ignore[arg-type]
            exporter = Exporter(_config(simulator), clock=lambda: clock[0])
            polls = 0
            while clock[0] <= end:
                moment = clock[0]
                simulator.faults.error_rate = (
                    1.0 if outage_at <= moment < outage_at + OUTAGE else 0.0
                )
                if restart_at <= moment < restart_at + POLL:
                    # the process is gone for this scrape; the new one starts with nothing held
                    await exporter.aclose()
                    exporter = Exporter(_config(simulator), clock=lambda: clock[0])
                    history.add("up", {"job": JOB, "instance": instance}, moment, 0.0)
                else:
                    await exporter.poll_once()
                    _render(exporter, set(names), moment, history, instance)
                history.poll_done(moment)
                polls += 1
                clock[0] += POLL
            await exporter.aclose()
    finally:
        logger.removeHandler(warnings)
        logger.propagate = True
    return history, polls, warnings.seen


# --- evaluating the rules over the history


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Replayed:
    """A Prometheus serving the history's TSDB, for query_range."""

    def __init__(self, workdir: Path) -> None:
        """Each history-N.om file of `workdir` becomes blocks of one TSDB (the workers'
        series differ by instance, so their blocks overlap in time and never in series)."""
        self.workdir = workdir
        blocks = workdir / "tsdb"
        for data in sorted(workdir.glob("history-*.om")):
            subprocess.run(  # noqa: S603 - promtool from PATH, our own arguments
                [
                    _binary("promtool"),
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    # promtool reads the whole file again for every block (2 h by default):
                    # with one block for the month, a 30-day run imports in 9 s, not 12 min
                    # (the flag is hidden in promtool 2.42, and honoured)
                    "--max-block-duration=1458h",
                    str(data),
                    str(blocks),
                ],
                check=True,
                capture_output=True,
            )
            data.unlink()
        (workdir / "prometheus.yml").write_text("global: {}\n")
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603 - prometheus from PATH, our own arguments
            [
                _binary("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={blocks}",
                "--storage.tsdb.retention.time=100y",
                f"--query.lookback-delta={KEEPALIVE + POLL + EVALUATION:.0f}s",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=(workdir / "prometheus.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the replay Prometheus did not start: see prometheus.log")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def true_steps(self, expr: str, start: float, end: float) -> dict[tuple, list[float]]:
        """For each series of the result, the evaluation steps at which the expression held."""
        found: dict[tuple, list[float]] = {}
        chunk = MAX_POINTS * EVALUATION
        begin = start
        while begin <= end:
            finish = min(end, begin + chunk - EVALUATION)
            answer = httpx.post(
                f"{self.url}/api/v1/query_range",
                data={"query": expr, "start": begin, "end": finish, "step": EVALUATION},
                timeout=600,
            ).json()
            if answer["status"] != "success":
                raise RuntimeError(f"{expr}: {answer}")
            for result in answer["data"]["result"]:
                key = tuple(sorted(result["metric"].items()))
                found.setdefault(key, []).extend(float(t) for t, _ in result["values"])
            begin = finish + EVALUATION
        return found


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is needed: `make test` installs Debian's prometheus packages")
    return path


def firings(rule: Rule, steps: dict[tuple, list[float]]) -> Iterator[Firing]:
    """Apply `for:` and `keep_firing_for:` as Prometheus does: an alert fires once its
    expression has held at every evaluation for `for:`, and stays firing while it holds. An
    evaluation where it does not hold resets a pending alert; a firing one keeps firing until
    `keep_firing_for` has passed since the first evaluation where it stopped holding, and goes
    on firing if it holds again by then."""
    for key, moments in steps.items():
        labels = dict(key)
        run_start = previous = -math.inf
        fired: Firing | None = None
        for moment in moments:
            gap = moment - previous > EVALUATION * 1.5
            if fired is not None and gap:
                if moment - previous < rule.keep + 2 * EVALUATION:
                    gap = False  # it kept firing through the gap
                else:
                    fired.end, fired = previous + rule.keep, None
            if gap:
                run_start = moment
            previous = moment
            if fired is None and moment - run_start >= rule.hold:
                fired = Firing(rule.name, labels, moment, moment)
                yield fired
            elif fired is not None:
                fired.end = moment
        if fired is not None:
            fired.end = previous + rule.keep


# --- what should fire, and when


GRACE = 3600.0  # the exporter's default schedule.grace
TOLERANCE = 300.0  # and schedule.tolerance


def incidents(
    fleet: Any, incident_addons: list[FleetAddon], rules: dict[str, Rule]
) -> list[Incident]:
    """What each incident addon should fire, from when, and how late at most."""
    return [EXPECTED[addon.incident or ""](fleet, addon, rules) for addon in incident_addons]


def _stopped(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    alert = "NorthflankBackupAddonOverdue"
    target = _gap(addon) + GRACE + rules[alert].hold + POLL
    return Incident("stopped", addon.ident, _first_slot(addon), alert, target)


def _skipped_runs(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    at = _incident_at(addon)
    slot = next(s for s in scheduled_slots(addon, at, at + 8 * DAY) if skipped(s))
    return _one_slot(
        addon,
        slot + TOLERANCE,
        alert="NorthflankBackupAddonMissedRuns",
        rules=rules,
    )


def _skipped_once(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon,
        _first_slot(addon) + TOLERANCE,
        alert="NorthflankBackupAddonMissedRuns",
        rules=rules,
    )


def _stuck(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    alert = "NorthflankBackupAddonStuck"
    first = _first_slot(addon)
    threshold = max(3 * _longest_run(fleet, addon, first), 3600)
    return Incident("stuck", addon.ident, first, alert, threshold + rules[alert].hold + POLL)


def _never_completed(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon,
        _first_slot(addon),
        alert="NorthflankBackupAddonNeverCompleted",
        rules=rules,
    )


def _failing(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """It fires on the second failure: "one slot" is from the first failure's end to the
    second's, run times included."""
    first = _first_slot(addon)
    ended = _ended(fleet, addon, first)
    second = _ended(fleet, addon, scheduled_slots(addon, first + 1, first + 8 * DAY)[0])
    return _one_slot(
        addon, ended, alert="NorthflankBackupAddonFailing", slot=second - ended, rules=rules
    )


def _shrunk(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon,
        _first_shrunk_end(fleet, addon, _incident_at(addon)),
        alert="NorthflankBackupAddonSizeDrop",
        rules=rules,
    )


def _retention_ending(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    last = _last_completed_expiry(fleet, addon, _incident_at(addon))
    return _one_slot(
        addon,
        last - DAY,
        alert="NorthflankBackupAddonRestorableWindowEnding",
        rules=rules,
    )


def _unprotected(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon,
        _incident_at(addon),
        alert="NorthflankBackupAddonUnprotected",
        slot=HOUR,
        rules=rules,
    )


def _not_arriving(fleet: Any, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """The rule waits an hour past the schedule's first slot before it judges."""
    return _one_slot(
        addon,
        _first_slot(addon) + HOUR,
        alert="NorthflankBackupScheduleNotArriving",
        slot=0.0,
        rules=rules,
    )


EXPECTED = {
    "stopped": _stopped,
    "skipped-runs": _skipped_runs,
    "skipped-once": _skipped_once,
    "stuck": _stuck,
    "never-completed": _never_completed,
    "failing": _failing,
    "shrunk": _shrunk,
    "retention-ending": _retention_ending,
    "unprotected": _unprotected,
    "not-arriving": _not_arriving,
}
assert set(EXPECTED) == set(INCIDENT_KINDS), "every incident of the fleet has an expectation"


def _incident_at(addon: FleetAddon) -> float:
    assert addon.incident_at is not None
    return addon.incident_at


def _first_slot(addon: FleetAddon) -> float:
    """The addon's first slot from its incident's start."""
    at = _incident_at(addon)
    return scheduled_slots(addon, at, at + 8 * DAY)[0]


def _one_slot(
    addon: FleetAddon,
    start: float,
    *,
    alert: str,
    rules: dict[str, Rule],
    slot: float | None = None,
) -> Incident:
    """Detected within one slot (the schedule's longest gap unless given) + for: + a poll."""
    assert addon.incident is not None
    slot = _gap(addon) if slot is None else slot
    return Incident(addon.incident, addon.ident, start, alert, slot + rules[alert].hold + POLL)


def _gap(addon: FleetAddon) -> float:
    slots = scheduled_slots(addon, addon.incident_at or 0, (addon.incident_at or 0) + 8 * DAY)
    return max(b - a for a, b in itertools.pairwise(slots))


def _listed_at(fleet: Any, addon: FleetAddon, moment: float) -> list[dict[str, Any]]:
    return [listed.backup for listed in fleet.listed(addon, moment)]


def _ended(fleet: Any, addon: FleetAddon, slot: float) -> float:
    """When the run of `slot` ended, read from the listing a day later."""
    for backup in _listed_at(fleet, addon, slot + DAY):
        if backup["id"] == f"{addon.ident}-{slot:.0f}":
            return _epoch(backup["completedAt"])
    raise AssertionError(f"no run at {slot} for {addon.ident}")


def _first_shrunk_end(fleet: Any, addon: FleetAddon, at: float) -> float:
    """When the first backup (scheduled or manual) taken after `at` completed."""
    ends = [
        _epoch(b["completedAt"])
        for b in _listed_at(fleet, addon, at + 2 * DAY)
        if b["status"] == "completed" and _epoch(b["createdAt"]) >= at
    ]
    return min(ends)


def _longest_run(fleet: Any, addon: FleetAddon, moment: float) -> float:
    runs = [
        _epoch(b["completedAt"]) - _epoch(b["createdAt"])
        for b in _listed_at(fleet, addon, moment)
        if b["status"] == "completed"
    ]
    return max(runs)


def _last_completed_expiry(fleet: Any, addon: FleetAddon, moment: float) -> float:
    return max(
        b["expiredBy"] / 1000
        for b in _listed_at(fleet, addon, moment)
        if b["status"] == "completed"
    )


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- the verdict


@dataclass
class Score:
    alert: str
    severity: str
    injected: int = 0
    detected: int = 0
    detect_seconds: list[float] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    false: int = 0
    outage: int = 0
    firing_seconds: float = 0.0

    def false_per_100_week(self, addons: int, days: float) -> float:
        return self.false / (addons / 100) / (days / 7)


@dataclass(frozen=True)
class Noise:
    outage: tuple[float, float]  # when the API answered 5xx
    restart: float


def score(
    rules: list[Rule],
    fired: list[Firing],
    expected: list[Incident],
    incident_starts: dict[str, float],
    noise: Noise,
) -> list[Score]:
    scores = {rule.name: Score(rule.name, rule.severity) for rule in rules}
    for incident in expected:
        entry = scores[incident.alert]
        entry.injected += 1
        entry.targets.append(incident.target)
        hits = _hits(incident, fired)
        if hits:
            entry.detected += 1
            entry.detect_seconds.append(min(f.start for f in hits) - incident.start)
    for firing in fired:
        entry = scores[firing.alert]
        entry.firing_seconds += firing.end - firing.start + EVALUATION
        addon = firing.labels.get("addon")
        if addon is not None and addon in incident_starts:
            if firing.end >= incident_starts[addon]:
                continue  # on an addon whose incident had begun
        elif addon is None and _overlaps(firing, noise.outage):
            entry.outage += 1  # a destination truly down while the API was
            continue
        entry.false += 1
    return list(scores.values())


def _hits(incident: Incident, fired: list[Firing]) -> list[Firing]:
    """The firings of the alert that should detect the incident, on its addon, after it began."""
    return [
        f
        for f in fired
        if f.alert == incident.alert
        and f.labels.get("addon") == incident.addon
        and f.end >= incident.start
    ]


def incident_rows(expected: list[Incident], fired: list[Firing]) -> list[dict[str, Any]]:
    """Per incident: how late it was detected, against its target, and how long its alert
    fired (an incident that ends, like one skipped run, shows how long it kept paging)."""
    rows = []
    for incident in expected:
        hits = _hits(incident, fired)
        detected = min((f.start for f in hits), default=None)
        rows.append(
            {
                "incident": incident.kind,
                "addon": incident.addon,
                "alert": incident.alert,
                "detect_seconds": None if detected is None else detected - incident.start,
                "target_seconds": incident.target,
                "firing_seconds": sum(f.end - f.start + EVALUATION for f in hits),
                "unbroken_seconds": (
                    None if detected is None else _unbroken(incident.addon, detected, fired)
                ),
                "other_alerts": sorted(
                    {
                        f.alert.removeprefix("NorthflankBackup")
                        for f in fired
                        if f.labels.get("addon") == incident.addon
                        and f.alert != incident.alert
                        and f.end >= incident.start
                    }
                ),
            }
        )
    return rows


def _unbroken(addon: str, detected: float, fired: list[Firing]) -> float:
    """From its detection, how long some alert kept firing on the addon without a gap (one
    alert may hand over to another: Overdue to ScheduleNotArriving once the last backup
    expired and the addon left the listing)."""
    until = detected
    spans = sorted((f.start, f.end) for f in fired if f.labels.get("addon") == addon)
    for begin, end in spans:
        if begin > until + 2 * EVALUATION:
            break
        until = max(until, end)
    return until - detected + EVALUATION


def _overlaps(firing: Firing, window: tuple[float, float]) -> bool:
    return firing.start <= window[1] + HOUR and firing.end >= window[0]


def verdicts(scores: list[Score], expected: list[Incident], addons: int, days: float) -> list[str]:
    """Each target the run missed, as one line; none when all were met."""
    missed = []
    for entry in scores:
        if entry.detected < entry.injected:
            missed.append(
                f"{entry.alert}: {entry.injected - entry.detected} incident(s) not detected"
            )
        if entry.severity == "critical" and entry.false:
            missed.append(f"{entry.alert}: {entry.false} false critical firing(s)")
        if entry.severity == "warning" and entry.false_per_100_week(addons, days) > 1:
            missed.append(
                f"{entry.alert}: {entry.false_per_100_week(addons, days):.2f} false firings "
                "per 100 addons per week (target <= 1)"
            )
        for took, target in zip(entry.detect_seconds, entry.targets, strict=False):
            if took > target:
                missed.append(
                    f"{entry.alert}: detected after {_hours(took)}, target {_hours(target)}"
                )
    return missed


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}h"


def table(scores: list[Score], addons: int, days: float) -> str:
    lines = [
        f"{'alert':<44}{'severity':<10}{'incidents':>10}{'detected':>9}"
        f"{'detect median':>15}{'max':>8}{'target':>8}{'false/100/wk':>13}{'outage':>7}"
        f"{'firing h':>9}"
    ]
    for s in scores:
        median = _hours(statistics.median(s.detect_seconds)) if s.detect_seconds else "-"
        longest = _hours(max(s.detect_seconds)) if s.detect_seconds else "-"
        target = _hours(max(s.targets)) if s.targets else "-"
        lines.append(
            f"{s.alert:<44}{s.severity:<10}{s.injected:>10}{s.detected:>9}{median:>15}"
            f"{longest:>8}{target:>8}{s.false_per_100_week(addons, days):>13.2f}{s.outage:>7}"
            f"{s.firing_seconds / 3600:>9.1f}"
        )
    return "\n".join(lines)


def incident_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'incident':<18}{'alert':<44}{'detected after':>15}{'target':>8}{'firing h':>9}"
        f"{'unbroken h':>11}  also fired"
    ]
    for row in rows:
        took = row["detect_seconds"]
        lines.append(
            f"{row['incident']:<18}{row['alert']:<44}"
            f"{'-' if took is None else _hours(took):>15}{_hours(row['target_seconds']):>8}"
            f"{row['firing_seconds'] / 3600:>9.1f}{(row['unbroken_seconds'] or 0) / 3600:>11.1f}"
            f"  {', '.join(row['other_alerts']) or '-'}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    rules = load_rules()
    start = (time.time() // DAY) * DAY - (args.days + 1) * DAY
    end = start + args.days * DAY
    fleet, incident_addons = build_fleet(args.seed, args.addons, args.days, start)
    noise = Noise(
        outage=(
            start + args.days * DAY * 0.7 + 13 * MINUTE,
            start + args.days * DAY * 0.7 + 13 * MINUTE + OUTAGE,
        ),
        restart=start + args.days * DAY * 0.55 + 2 * MINUTE,
    )
    plans = [
        Plan(
            args.seed,
            args.addons,
            args.days,
            start,
            worker,
            frozenset(rule_metrics(rules)),
            noise.restart,
            noise.outage[0],
        )
        for worker in range(WORKERS)
    ]
    with tempfile.TemporaryDirectory(prefix="backtest-") as scratch:
        with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
            shares = pool.starmap(replay_share, [(plan, scratch) for plan in plans])
        polls = sum(share.polls for share in shares)
        samples = sum(share.samples for share in shares)
        replayed_at = time.monotonic()
        prometheus = Replayed(Path(scratch))
        imported_at = time.monotonic()
        try:
            fired: list[Firing] = []
            for rule in rules:
                fired.extend(
                    firings(rule, prometheus.true_steps(stale_free(rule.expr), start, end))
                )
        finally:
            prometheus.stop()
    by_name = {rule.name: rule for rule in rules}
    expected = [i for i in incidents(fleet, incident_addons, by_name) if i.start + i.target <= end]
    starts = {a.ident: a.incident_at for a in incident_addons if a.incident_at is not None}
    scores = score(rules, fired, expected, starts, noise)
    missed = verdicts(scores, expected, args.addons, args.days)
    unexpected = unexpected_warnings([w for share in shares for w in share.warnings], noise)
    missed.extend(warning_verdicts(unexpected))
    return {
        "seed": args.seed,
        "addons": args.addons,
        "days": args.days,
        "poll_interval_seconds": POLL,
        "evaluation_interval_seconds": EVALUATION,
        "polls": polls,
        "samples": samples,
        "seconds": {
            "replay": round(replayed_at - began, 1),
            "import": round(imported_at - replayed_at, 1),
            "total": round(time.monotonic() - began, 1),
        },
        "scores": [
            {
                "alert": s.alert,
                "severity": s.severity,
                "incidents": s.injected,
                "detected": s.detected,
                "detect_seconds": s.detect_seconds,
                "target_seconds": s.targets,
                "false_firings": s.false,
                "false_per_100_addons_per_week": round(
                    s.false_per_100_week(args.addons, args.days), 3
                ),
                "outage_firings": s.outage,
                "firing_seconds": s.firing_seconds,
            }
            for s in scores
        ],
        "incidents": incident_rows(expected, fired),
        "incident_firings": [
            {"alert": f.alert, "addon": f.labels["addon"], "start": f.start, "end": f.end}
            for f in sorted(fired, key=lambda f: (f.labels.get("addon", ""), f.start))
            if f.labels.get("addon") in starts
        ],
        "false_firings": [
            {"alert": f.alert, "labels": f.labels, "start": f.start, "end": f.end}
            for f in fired
            if not _explained(f, starts, noise)
        ][:50],
        "exporter_warnings_outside_outage": [
            {"at": moment, "message": message} for moment, message in unexpected[:50]
        ],
        "missed_targets": missed,
        "_scores": scores,
    }


def unexpected_warnings(warnings: list[tuple[float, str]], noise: Noise) -> list[tuple[float, str]]:
    """The exporter's warnings that the API outage does not explain."""
    return [(moment, text) for moment, text in warnings if not _in_outage(moment, noise)]


def warning_verdicts(unexpected: list[tuple[float, str]]) -> list[str]:
    """A missed target when a healthy fleet drew any warning: one line, with the first."""
    if not unexpected:
        return []
    return [
        f"the exporter logged {len(unexpected)} warning(s) outside the API outage, "
        f"the first: {unexpected[0][1]}"
    ]


def _in_outage(moment: float, noise: Noise) -> bool:
    """Within the outage, or the polls just after it that find the destinations again."""
    return noise.outage[0] <= moment <= noise.outage[1] + 2 * POLL


def _explained(firing: Firing, starts: dict[str, float], noise: Noise) -> bool:
    addon = firing.labels.get("addon")
    if addon is not None and addon in starts:
        return firing.end >= starts[addon]
    return addon is None and _overlaps(firing, noise.outage)


def _where(labels: dict[str, str]) -> str:
    if "addon" in labels:
        return f"{labels.get('project')}/{labels['addon']} ({labels.get('destination')})"
    return labels.get("destination") or labels.get("instance") or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--addons", type=int, default=200)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args)
    scores = result.pop("_scores")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"backtest: seed {args.seed}, {args.addons} addons "
            f"(+{len(INCIDENT_KINDS)} with incidents), "
            f"{args.days:g} days, poll.interval {POLL:.0f}s, evaluation every {EVALUATION:.0f}s"
        )
        print(table(scores, args.addons, args.days))
        print()
        print(incident_table(result["incidents"]))
        for firing in result["false_firings"]:
            print(
                f"false: {firing['alert']} on {_where(firing['labels'])}, "
                f"{_hours(firing['end'] - firing['start'] + EVALUATION)} from "
                f"{datetime.fromtimestamp(firing['start'], tz=UTC):%Y-%m-%d %H:%M}"
            )
        for line in result["missed_targets"]:
            print(f"MISSED: {line}")
        if not result["missed_targets"]:
            print("every target met")
        print(
            f"took {result['seconds']['total']:.0f}s ({result['seconds']['replay']:.0f}s replaying "
            f"{result['polls']} polls, {result['seconds']['import']:.0f}s importing "
            f"{result['samples']} samples)"
        )
    return 1 if result["missed_targets"] else 0


if __name__ == "__main__":
    sys.exit(main())
