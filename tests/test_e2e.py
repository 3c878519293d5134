"""End to end: the simulator with every scenario, two exporters (the real command line),
a real Prometheus scraping them with the shipped rules, a real Alertmanager, and a webhook
receiver served here. The alerts that should fire reach the webhook with the right labels;
no others do; every dashboard and rule query parses and names only metrics that exist.

Prometheus and Alertmanager come from Debian's packages (`make test` installs them).
The rules' `for:` durations are set to 0s here so the run takes a minute, not an hour;
`promtool test rules` (monitoring/alerts.test.yaml) proves the durations themselves.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from exporter.inventory import MANAGED_STORAGE
from exporter.simulator import Faults, Simulator, build_world
from exporter.simulator.scenarios import COVERAGE_SCENARIOS, SCENARIOS
from exporter.simulator.server import RateLimit
from tests.conftest import free_port, wait_until_ready
from tests.reference import addon_expectations, managed_now

MONITORING = Path(__file__).parent.parent / "monitoring"
RULES = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "dashboard.json"
JOB = "northflank-backup-exporter"
TOKEN = "e2e-token-4b8d"
# Conditions that involve the clock are judged at the start and this much later; an addon whose
# answer changes in between is too close to a threshold to assert either way.
MARGIN = 600.0
DRILLED = "scenarios/restore-.*"
DRILL = 30 * 86400


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required: `make test` installs Debian's prometheus packages"
    return path


class Webhook:
    """Alertmanager's webhook receiver: remembers every alert it is sent."""

    def __init__(self) -> None:
        self.alerts: list[dict] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self) -> set[tuple[str, ...]]:
        return {alert_key(a["labels"]) for a in self.alerts if a["status"] == "firing"}


def alert_key(labels: dict[str, str]) -> tuple[str, ...]:
    """(alertname, instance, destination, project, addon or volume)."""
    return (
        *(labels.get(k, "") for k in ("alertname", "instance", "destination", "project")),
        labels.get("addon") or labels.get("volume", ""),
    )


class Processes:
    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path, **options) -> subprocess.Popen:
        process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, **options)
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def exporter_config(path: Path, simulator: Simulator, addons: bool) -> Path:
    # The side exporter polls slowly: its token has 50 requests left, which must last the run
    # (a spent window would turn its destinations down and fire alerts nobody expects); its
    # inventory stops at the first listing, which the token may not read.
    interval = "2s" if addons else "20s"
    config = {
        "northflank": {"api_url": simulator.base_url, "token": TOKEN},
        "poll": {"interval": interval, "retry_backoff": "100ms", "max_retries": 1},
        "rate_limit": {"requests_per_hour": 100_000, "reserve": 0},
        "addons": {"enabled": addons},
    }
    if addons:  # the restore scenarios under a drill: their restores are read at once
        config["restores"] = {"drills": [{"match": DRILLED, "every": "30d"}]}
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    anchor = time.time()
    clock = lambda: anchor  # noqa: E731 - the data stays put while the stack runs
    main = Simulator(
        build_world(3, anchor, 2, 300, scenarios=(*SCENARIOS, *COVERAGE_SCENARIOS), fleet=True),
        token=TOKEN,
        rate_limit=100_000,
        clock=clock,
    ).start()
    # Another client of this token spent most of the window; one destination forbids access.
    side = Simulator(
        build_world(4, anchor, 2, 100),
        token=TOKEN,
        rate_limit=RateLimit(1000, used=950),
        clock=clock,
        faults=Faults(destination_status={"backups-02": 403}),
    ).start()
    side.serve_raw(
        "/v1/projects",
        b'{"error": {"status": 403, "message": "Missing permission Project > General > Read"}}',
        status=403,
    )
    processes = Processes()
    webhook = Webhook()
    ports = {name: free_port() for name in ("main", "side", "dead", "prometheus", "alertmanager")}
    try:
        for name, simulator, addons in (("main", main, True), ("side", side, False)):
            processes.start(
                [
                    sys.executable,
                    "-m",
                    "exporter",
                    "--config.file",
                    str(exporter_config(tmp / f"{name}.yaml", simulator, addons)),
                    "--web.listen-address",
                    f"127.0.0.1:{ports[name]}",
                ],
                tmp / f"{name}.log",
            )
        rules = tmp / "alerts.yaml"
        rules.write_text(re.sub(r"(?m)^(\s+)for: \S+", r"\1for: 0s", RULES.read_text()))
        (tmp / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "test",
                        "group_by": ["..."],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [{"name": "test", "webhook_configs": [{"url": webhook.url}]}],
                }
            )
        )
        processes.start(
            [
                binary("prometheus-alertmanager"),
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            tmp / "alertmanager.log",
        )
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "evaluation_interval": "1s",
                        "scrape_timeout": "1s",
                    },
                    "rule_files": [str(rules)],
                    "alerting": {
                        "alertmanagers": [
                            {
                                "static_configs": [
                                    {"targets": [f"127.0.0.1:{ports['alertmanager']}"]}
                                ]
                            }
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "static_configs": [
                                {
                                    "targets": [
                                        f"127.0.0.1:{ports[name]}"
                                        for name in ("main", "side", "dead")
                                    ]
                                }
                            ],
                        }
                    ],
                }
            )
        )
        processes.start(
            [
                binary("prometheus"),
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            tmp / "prometheus.log",
        )
        wait_until_ready(ports["main"], timeout=30)
        wait_until_ready(ports["side"], timeout=30)
        prometheus = f"http://127.0.0.1:{ports['prometheus']}"
        wait_for(lambda: _ready(f"{prometheus}/-/ready"), 30, "Prometheus")
        yield {
            "main": main,
            "side": side,
            "ports": ports,
            "prometheus": prometheus,
            "webhook": webhook,
            "anchor": anchor,
            "tmp": tmp,
        }
    finally:
        processes.stop()
        webhook.server.shutdown()
        main.stop()
        side.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def query(stack, expr: str) -> list[dict]:
    response = httpx.get(f"{stack['prometheus']}/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


# --- what should fire, worked out from the simulator's data


def expected_alerts(stack) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(alerts that must fire, alerts too close to a threshold to assert)."""
    main, anchor = stack["main"], stack["anchor"]
    instance = f"127.0.0.1:{stack['ports']['main']}"
    must: set[tuple[str, ...]] = set()
    unsure: set[tuple[str, ...]] = set()
    listings = {d: main.backups(d) for d in ("primary-backups", "backups-02")}
    listings[MANAGED_STORAGE] = [i for _, _, items in managed_now(main, anchor) for i in items]
    for destination, items in listings.items():
        early = addon_expectations(items, anchor)
        late = addon_expectations(items, anchor + MARGIN)
        for (project, addon), first in early.items():
            later = late[(project, addon)]
            for name, condition in ADDON_CONDITIONS.items():
                key = (name, instance, destination, project, addon)
                verdicts = {condition(first, anchor), condition(later, anchor + MARGIN)}
                if verdicts == {True}:
                    must.add(key)
                elif len(verdicts) == 2:
                    unsure.add(key)
    side = f"127.0.0.1:{stack['ports']['side']}"
    dead = f"127.0.0.1:{stack['ports']['dead']}"
    must |= {
        ("NorthflankBackupExporterDown", dead, "", "", ""),
        ("NorthflankBackupDestinationDown", side, "backups-02", "", ""),
        ("NorthflankBackupRateLimitLow", side, "", "", ""),
        ("NorthflankBackupCoverageDown", side, "", "", ""),
        # what only the inventory shows
        ("NorthflankBackupAddonUnprotected", instance, "", "scenarios", "unprotected-postgresql"),
        ("NorthflankBackupVolumeUnprotected", instance, "", "scenarios", "scratch"),
        # the volume whose snapshots stopped three slots before the start
        ("NorthflankBackupVolumeOverdue", instance, "", "scenarios", "media"),
        ("NorthflankBackupVolumeMissedRuns", instance, "", "scenarios", "media"),
        (
            "NorthflankBackupScheduleNotArriving",
            instance,
            "primary-backups",
            "scenarios",
            "not-arriving-mongodb",
        ),
    }
    return must | restore_alerts(main, instance, anchor), unsure


def restore_alerts(main, instance: str, anchor: float) -> set[tuple[str, ...]]:
    """From the simulator's restore listings: a drilled addon with no restore completed within
    30 days, or none, is overdue; one whose newest failure ended under two days ago failed. No
    restore has been seen running for six hours in a run of minutes."""
    alerts = set()
    for item in main.world.addons("scenarios", anchor):
        addon = item["id"]
        restores = main.world.addon_restores("scenarios", addon, anchor)
        done = [epoch(r["completedAt"]) for r in restores if r["status"] == "completed"]
        if re.fullmatch(DRILLED, f"scenarios/{addon}") and (not done or anchor - max(done) > DRILL):
            alerts.add(("NorthflankBackupRestoreDrillOverdue", instance, "", "scenarios", addon))
        failed = [
            epoch(r["completedAt"])
            for r in restores
            if r["status"] in ("failed", "aborted") and "completedAt" in r
        ]
        if failed and anchor - max(failed) < 2 * 86400:
            alerts.add(("NorthflankBackupRestoreFailed", instance, "", "scenarios", addon))
    return alerts


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _stuck(want, now):
    if want["running_age"] is None or want["last_completed_duration"] is None:
        return False
    return want["running_age"] > max(3 * want["last_completed_duration"], 3600)


def _window_ending(want, now):
    """The window closes before the next backup can land: the slot whose run is under way (or
    due under 15 minutes ago), else the next one, plus the last run time and the hour of
    grace; with no schedule left, within a day."""
    until = want["restorable_until"]
    if until is None:
        return False
    if want["next_scheduled"] is None:
        return until - now < 86400
    last, running = want["last_scheduled"], want["running_age"]
    under_way = now - last < 900 or (running is not None and running < now - last + 900)
    slot = last if under_way else want["next_scheduled"]
    return until < slot + (want["last_completed_duration"] or 0) + 3600


ADDON_CONDITIONS = {
    "NorthflankBackupAddonOverdue": lambda w, now: (
        (w["overdue"] or 0) > (w["expected_interval"] or math.inf)
    ),
    "NorthflankBackupAddonMissedRuns": lambda w, now: (
        (w["missed"] or 0) > 0 and now - w["last_missed"] < 86400
    ),
    "NorthflankBackupAddonFailing": lambda w, now: w["consecutive_failures"] >= 2,
    "NorthflankBackupAddonStuck": _stuck,
    "NorthflankBackupAddonNeverCompleted": lambda w, now: w["never_completed"] == 1,
    "NorthflankBackupAddonRestorableWindowEnding": _window_ending,
    "NorthflankBackupAddonSizeDrop": lambda w, now: (
        w["last_completed_size"] is not None and w["last_completed_size"] < 0.5 * w["size_median"]
    ),
}


def rules_evaluated_at(stack) -> float:
    """When Prometheus last evaluated the rule group it evaluated least recently."""
    groups = httpx.get(f"{stack['prometheus']}/api/v1/rules").json()["data"]["groups"]
    return min(rfc3339_seconds(group["lastEvaluation"]) for group in groups)


def rfc3339_seconds(text: str) -> float:
    """Prometheus's RFC 3339 times carry up to nine fraction digits, more than Python reads."""
    whole, fraction = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(\.\d+)?Z", text).groups()
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(fraction or 0)


def test_alerts_reach_the_webhook_with_the_right_labels_and_no_others(stack):
    must, unsure = expected_alerts(stack)
    scenario_alerts = {
        ("NorthflankBackupAddonOverdue", "stopped-postgresql"),
        ("NorthflankBackupAddonMissedRuns", "stopped-postgresql"),
        ("NorthflankBackupAddonMissedRuns", "skipped-runs-mysql"),
        ("NorthflankBackupAddonStuck", "stuck-mongodb"),
        ("NorthflankBackupAddonNeverCompleted", "never-completed-redis"),
        ("NorthflankBackupAddonRestorableWindowEnding", "expiring-postgresql"),
        ("NorthflankBackupAddonFailing", "expiring-postgresql"),
        ("NorthflankBackupAddonSizeDrop", "shrunk-mysql"),
        ("NorthflankBackupAddonOverdue", "managed-stopped-mysql"),
        ("NorthflankBackupAddonMissedRuns", "managed-stopped-mysql"),
        ("NorthflankBackupAddonUnprotected", "unprotected-postgresql"),
        ("NorthflankBackupScheduleNotArriving", "not-arriving-mongodb"),
        ("NorthflankBackupRestoreFailed", "restore-failed-mysql"),
        ("NorthflankBackupRestoreDrillOverdue", "restore-stuck-mongodb"),
    }
    assert scenario_alerts <= {(key[0], key[4]) for key in must}
    webhook = stack["webhook"]
    wait_for(lambda: must <= webhook.firing(), 120, f"alerts {sorted(must - webhook.firing())}")
    # Every rule (all with `for: 0s` here) evaluated again after that on data that no longer
    # changes: what Prometheus holds active now is all that will ever fire.
    evaluated = rules_evaluated_at(stack)
    wait_for(lambda: rules_evaluated_at(stack) > evaluated + 1, 60, "two more rule evaluations")
    active = {
        alert_key(alert["labels"])
        for alert in httpx.get(f"{stack['prometheus']}/api/v1/alerts").json()["data"]["alerts"]
    }
    assert active - must - unsure == set()
    assert webhook.firing() - must - unsure == set()
    for alert in webhook.alerts:
        labels, annotations = alert["labels"], alert["annotations"]
        assert labels["job"] == JOB
        assert labels["severity"] in ("critical", "warning", "info")
        assert annotations["runbook_url"].endswith("#" + labels["alertname"].lower())
        for name in ("destination", "project", "addon"):
            if name in labels:
                assert labels[name] in annotations["description"]


def test_targets_are_up_and_the_live_output_passes_promtool(stack):
    health = wait_for(
        lambda: (
            {
                t["labels"]["instance"]: t["health"]
                for t in httpx.get(f"{stack['prometheus']}/api/v1/targets").json()["data"][
                    "activeTargets"
                ]
                if t["health"] != "unknown"
            }
            or None
        ),
        30,
        "scrapes",
    )
    ports = stack["ports"]
    wait_for(lambda: len(query(stack, f'up{{job="{JOB}"}} == 1')) == 2, 30, "both exporters up")
    assert health.get(f"127.0.0.1:{ports['dead']}") in ("down", None)
    exposition = httpx.get(f"http://127.0.0.1:{ports['main']}/metrics").content
    result = subprocess.run(
        [binary("promtool"), "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_and_unit_tests_the_rules():
    promtool = binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 22 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yaml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- the dashboard and the rules against the live Prometheus

VARIABLES = {
    "$job": ".*",
    "$account": ".*",
    "$destination": ".*",
    "$project": ".*",
    "$addon": ".*",
    "$__rate_interval": "30s",
    "${datasource}": "",
}


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def dashboard_panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    return {rule["alert"]: rule["expr"] for rule in rules}


def test_every_dashboard_panel_returns_series(stack):
    wait_for(
        lambda: query(stack, "count(northflank_exporter_api_requests_total offset 30s)"),
        60,
        "history for rate()",
    )
    empty = []
    for panel in dashboard_panels():
        results = [query(stack, substitute(t["expr"])) for t in panel["targets"]]
        if not any(results):
            empty.append(panel["title"])
    assert empty == []


def test_dashboard_variables_and_structure(stack):
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "account", "destination", "project", "addon"} <= set(variables)
    for name in ("job", "account", "destination", "project", "addon"):
        definition = variables[name]["definition"]
        selector, label = re.fullmatch(r"label_values\((.*), (\w+)\)", definition).groups()

        def values(selector=selector, label=label):
            response = httpx.get(
                f"{stack['prometheus']}/api/v1/series", params={"match[]": substitute(selector)}
            ).json()
            return {series[label] for series in response["data"]}

        # the first scrape may not have landed yet when this test runs first
        wait_for(values, 60, f"series for the {name} variable")
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${datasource}"
    titles = {panel["title"] for panel in dashboard_panels()}
    assert {
        "Addons overdue",
        "Addons failing",
        "Never completed",
        "Bytes stored",
        "Last completed backup against the schedule",
        "Backups by status",
        "Bytes stored by destination",
        "Backups expiring within the warning window",
        "Poll duration",
        "API requests by code",
        "Rate-limit headroom",
    } <= titles


def test_every_rule_expression_parses(stack):
    for name, expr in rule_expressions().items():
        response = httpx.get(f"{stack['prometheus']}/api/v1/query", params={"query": expr})
        assert response.json()["status"] == "success", (name, response.text)


def referenced_metrics() -> set[str]:
    texts = [t["expr"] for p in dashboard_panels() for t in p["targets"]]
    texts += list(rule_expressions().values())
    texts += [
        v.get("definition", "") for v in json.loads(DASHBOARD.read_text())["templating"]["list"]
    ]
    return {name for text in texts for name in re.findall(r"\bnorthflank_[a-z0-9_]+", text)}


def test_every_metric_referenced_is_one_the_exporter_emits(stack):
    ports = stack["ports"]
    emitted = set()
    for name in ("main", "side"):
        text = httpx.get(f"http://127.0.0.1:{ports[name]}/metrics").text
        emitted |= {
            line.split("{")[0].split(" ")[0]
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
    referenced = referenced_metrics()
    assert len(referenced) >= 20
    assert referenced - emitted == set()


def test_runbook_sections_exist_for_every_alert():
    readme = (MONITORING / "README.md").read_text()
    anchors = {heading.strip().lower() for heading in re.findall(r"^### (\w+)$", readme, re.M)}
    assert set(name.lower() for name in rule_expressions()) <= anchors


def test_the_logs_name_the_forbidden_destination_and_never_the_token(stack):
    log = (stack["tmp"] / "side.log").read_text()
    assert "destination=backups-02 poll failed code=403" in log
    assert "coverage: the API token may not list projects (HTTP 403)" in log
    for name in ("main.log", "side.log"):
        assert TOKEN not in (stack["tmp"] / name).read_text()
