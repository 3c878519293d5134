"""The simulator answers as Northflank's official Python client declares the API, on every
endpoint the exporter calls, in every scenario and on team routes; the permissions the exporter
names are the client's own. The client (`northflank`, test-only) shares no code with the
simulator or the exporter: where they disagree with it, it wins (`tests/contract.py`)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest

from exporter.api import PERMISSIONS
from exporter.config import RestoreSettings
from exporter.resources import build_units
from exporter.resources.unit import Listing
from exporter.runtime import Exporter
from exporter.simulator import Simulator, build_world
from exporter.simulator.data import SIMULATED_ACCESS_KEY, SIMULATED_SECRET_KEY
from exporter.simulator.scenarios import COVERAGE_SCENARIOS, SCENARIOS
from tests.conftest import NOW, TOKEN, Clock, config_for, loops_of_no_api, poll_once, with_account
from tests.contract import declared_for, declared_gets

TEAM = "platform"
RUNNING = ("scheduled", "in-progress", "aborting")


def _served(team: str | None) -> tuple[Simulator, Exporter, Clock]:
    """A simulator of every scenario and the fleet, and an exporter with coverage on that has
    read it all: destinations (listed, and one asked for by id), inventory, managed storage,
    volumes."""
    clock = Clock(NOW)
    world = build_world(7, NOW, 2, 260, scenarios=(*SCENARIOS, *COVERAGE_SCENARIOS), fleet=True)
    simulator = Simulator(world, token=TOKEN, team=team, clock=clock, rate_limit=10**9).start()
    config = config_for(simulator, coverage=True)
    # under a drill policy, an addon's restores are read at once (both pages of one of them)
    drills = ((re.compile("scenarios/restore-.*"), 30 * 86400.0),)
    config = replace(config, restores=RestoreSettings(drills=drills))
    (account,) = config.accounts
    config = with_account(config, northflank=replace(account.northflank, team=team))
    exporter = Exporter(config, clock=clock)
    assert poll_once(exporter)
    clock.now += 600
    poll_once(exporter)
    # a destination asked for by id: configured (`destinations:`), while the list is refused
    simulator.faults.destination_status[""] = 403
    named = Exporter(with_account(config, destinations=("backups-02",)), clock=clock)
    poll_once(named)  # the listing failed; the destination was still read
    del simulator.faults.destination_status[""]
    return simulator, exporter, clock


def _problems(path: str, body: dict) -> list[str]:
    declared = declared_for(urlsplit(path).path)
    assert declared is not None, f"GET {path}: an endpoint the official client does not have"
    data = body.get("data")
    problems = declared.problems(data)
    # The one documented exception: a backup still running has no completedAt (the clients
    # declare it required; a backup that has not finished cannot have a real one).
    listed = data if isinstance(data, list) else (data or {}).get("backups", [])
    running = {
        str(number)
        for number, item in enumerate(listed)
        if isinstance(item, dict) and item.get("status") in RUNNING and "completedAt" not in item
    }
    return [
        problem
        for problem in problems
        if not (
            problem.endswith("completedAt: Field required") and problem.split(".")[-2] in running
        )
    ]


@pytest.mark.parametrize("team", [None, TEAM], ids=["account", "team"])
def test_every_answer_the_exporter_reads_is_what_the_official_client_declares(team):
    simulator, _, _ = _served(team)
    try:
        asked = sorted({record.path for record in simulator.requests})
        templates = Counter()
        for path in asked:
            response = httpx.get(
                simulator.base_url + path, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert response.status_code == 200, path
            assert _problems(path, response.json()) == [], path
            declared = declared_for(urlsplit(path).path)
            templates[declared.templates[0]] += 1
    finally:
        simulator.stop()
    # every endpoint the exporter calls was asked for here, and no other
    assert set(templates) == set(PERMISSIONS), set(PERMISSIONS) ^ set(templates)
    if team is not None:
        assert all(urlsplit(path).path.startswith(f"/v1/teams/{TEAM}/") for path in asked)


def test_each_resource_unit_names_the_clients_endpoint_and_type():
    """What a unit says it reads (`Reads`) is what the official client declares for its path."""
    loops = loops_of_no_api()
    units = build_units(loops, set)  # nothing is read: only what each unit declares
    asyncio.run(loops.client.aclose())
    assert {unit.reads.listing for unit in units} == set(Listing)
    for unit in units:
        reads = unit.reads
        example = re.sub(r"\{[^}]+\}", "x", reads.endpoint)
        declared = declared_for(example)
        assert declared is not None, reads.endpoint
        assert declared.name == reads.client_endpoint, reads
        assert getattr(declared.data_type, "__name__", None) == reads.client_type, reads
        assert declared.permission == reads.permission, reads


def test_the_permissions_the_exporter_names_are_the_clients_own():
    declared = {}
    for _, endpoint in declared_gets():
        for template in endpoint.templates:
            declared[template] = endpoint.permission
    assert {template: declared[template] for template in PERMISSIONS} == PERMISSIONS


def test_the_contract_check_finds_a_shape_the_client_does_not_declare():
    """The check can fail: a volumes answer as our notes once had it, a schedule whose
    additional destination lacks its type, a backup with its size as a number."""
    volumes = declared_for("/v1/projects/p/volumes")
    assert volumes.problems({"volumes": []}) != []
    assert volumes.problems([]) == []
    schedules = declared_for("/v1/projects/p/addons/a/backup-schedules")
    assert schedules.problems({}) == []  # the schedules list is optional
    assert schedules.problems(
        {
            "schedules": [
                {
                    "id": "s",
                    "createdAt": "2026-01-01T00:00:00Z",
                    "updatedAt": "2026-01-01T00:00:00Z",
                    "backupType": "snapshot",
                    "scheduling": {"interval": "hourly", "minute": [0]},
                    "retentionTime": 7,
                    "additionalDestinations": [{"destinationId": "d"}],
                }
            ]
        }
    ) == ["schedules.0.additionalDestinations.0.type: Field required"]
    backups = declared_for("/v1/backup-destinations/d/backups")
    assert "0.config.size: Input should be a valid string" in backups.problems(
        [
            {
                "id": "b",
                "name": "b",
                "status": "completed",
                "config": {"size": 1},
                "createdAt": "2026-01-01T00:00:00Z",
                "completedAt": "2026-01-01T00:01:00Z",
                "expiredBy": 1.0,
            }
        ]
    )
    assert declared_for("/v1/nowhere") is None


def test_no_credential_reaches_a_log_line_a_metric_or_an_error(caplog):
    """Destinations are served with the credentials the clients declare (fake values)."""
    caplog.set_level(logging.DEBUG)
    simulator, exporter, clock = _served(None)
    try:
        listing = httpx.get(
            f"{simulator.base_url}/v1/backup-destinations",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()
        served = listing["data"]["backupDestinations"][0]["credentials"]
        assert served["secretKey"] == SIMULATED_SECRET_KEY
        # an error too: every destination forbidden, then read again
        simulator.faults.destination_status.update({"primary-backups": 403, "backups-02": 500})
        clock.now += 600
        assert poll_once(exporter) is False
        # every error the exporter met is in its log: its messages quote the API's answers
        outputs = [exporter.exposition().decode(), caplog.text]
    finally:
        simulator.stop()
    secrets = (SIMULATED_SECRET_KEY, SIMULATED_ACCESS_KEY, served["bucketName"], served["endpoint"])
    for text in outputs:
        for secret in secrets:
            assert secret not in text
