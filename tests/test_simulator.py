"""The simulator speaks the API of shared/northflank-api, checked with a plain HTTP client."""

import httpx
import pytest

from exporter.model import STATUSES
from exporter.simulator import build_world
from exporter.simulator.server import RateLimit
from exporter.simulator.units import iso
from tests.conftest import NOW, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def get(simulator, path, **params):
    return httpx.get(f"{simulator.base_url}{path}", params=params, headers=AUTH)


def walk(simulator, path, per_page=100):
    """Follow cursors by hand; return (items, pages)."""
    items, pages, cursor = [], [], None
    while True:
        params = {"per_page": per_page} | ({"cursor": cursor} if cursor else {})
        body = get(simulator, path, **params).json()
        pages.append(body)
        data = body["data"]
        items.extend(data["backupDestinations"] if isinstance(data, dict) else data)
        if not body["pagination"]["hasNextPage"]:
            return items, pages
        cursor = body["pagination"]["cursor"]


def test_wrong_or_missing_token_is_401_with_an_error_body(simulator):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{simulator.base_url}/v1/backup-destinations", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["status"] == 401
        assert "token" in response.json()["error"]["message"]


def test_destination_list_and_detail(simulator):
    body = get(simulator, "/v1/backup-destinations").json()
    listed = body["data"]["backupDestinations"]
    assert [d["id"] for d in listed] == ["primary-backups", "backups-02"]
    assert listed[0]["usage"] == "globalBackups"
    assert listed[0]["type"] == "s3"
    assert body["pagination"] == {"hasNextPage": False, "count": 2}
    detail = get(simulator, "/v1/backup-destinations/backups-02").json()["data"]
    assert detail["id"] == "backups-02"
    assert get(simulator, "/v1/backup-destinations/nope").status_code == 404
    assert get(simulator, "/v1/backup-destinations/nope/backups").status_code == 404


def test_cursor_walk_lists_every_backup_once_newest_first(simulator):
    items, pages = walk(simulator, "/v1/backup-destinations/primary-backups/backups")
    assert len(items) == 260
    assert len({item["id"] for item in items}) == 260
    created = [item["createdAt"] for item in items]
    assert created == sorted(created, reverse=True)
    assert [page["pagination"]["count"] for page in pages] == [100, 100, 60]
    assert all(page["pagination"]["hasNextPage"] for page in pages[:-1])
    assert "cursor" not in pages[-1]["pagination"]
    assert items == simulator.backups("primary-backups")


def test_default_page_is_50_and_page_numbers_work_too(simulator):
    path = "/v1/backup-destinations/primary-backups/backups"
    first = get(simulator, path).json()
    assert first["pagination"]["count"] == 50
    second = get(simulator, path, page=2).json()
    assert second["data"] == simulator.backups("primary-backups")[50:100]


@pytest.mark.parametrize("per_page", [101, 0, "many"])
def test_per_page_out_of_range_is_400(simulator, per_page):
    response = get(simulator, "/v1/backup-destinations/primary-backups/backups", per_page=per_page)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400


def test_team_routes_mirror_the_plain_ones(start_simulator):
    simulator = start_simulator(team="platform")
    plain = get(simulator, "/v1/backup-destinations/backups-02/backups").json()
    team = get(simulator, "/v1/teams/platform/backup-destinations/backups-02/backups").json()
    assert team == plain
    assert get(simulator, "/v1/teams/other/backup-destinations").status_code == 404


def test_rate_limit_headers_count_down_and_429_when_spent(start_simulator, clock):
    simulator = start_simulator(rate_limit=3)
    remaining = []
    for _ in range(3):
        response = get(simulator, "/v1/backup-destinations")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        assert response.headers["x-ratelimit-reset"] == "3600"
        remaining.append(response.headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    clock.now += 600
    spent = get(simulator, "/v1/backup-destinations")
    assert spent.status_code == 429
    assert spent.headers["x-ratelimit-reset"] == "3000"
    assert "retry-after" not in spent.headers
    clock.now += 3000
    assert get(simulator, "/v1/backup-destinations").status_code == 200


def test_data_is_deterministic_for_a_seed_and_realistic():
    world = build_world(7, NOW, 2, 260)
    again = build_world(7, NOW, 2, 260)
    destination = world.destinations[0]
    backups = [listed.backup for listed in world.backups(destination, NOW)]
    assert backups == [listed.backup for listed in again.backups(again.destinations[0], NOW)]
    assert backups != [
        listed.backup for listed in build_world(8, NOW, 2, 260).backups(destination, NOW)
    ]
    assert {b["status"] for b in backups} == set(STATUSES)
    assert {
        b["config"]["addonType"]
        for d in world.destinations
        for b in (listed.backup for listed in world.backups(d, NOW))
    } >= {"postgresql", "mongodb", "mysql"}
    assert all(isinstance(b["config"]["size"], str) for b in backups)
    # a number, as the clients declare it (the exporter also reads the string of the page's
    # example: tests/test_backups.py)
    assert {type(b["expiredBy"]) for b in backups} == {float, int}
    running = [b for b in backups if b["status"] in ("scheduled", "in-progress", "aborting")]
    assert running
    assert all("completedAt" not in b for b in running)
    assert all(isinstance(b["completedAt"], str) for b in backups if b not in running)
    intervals = {s["interval"] for d in world.destinations for a in d.addons for s in a.schedules}
    assert len(intervals) >= 2
    assert any("schedules" not in b for b in backups)  # manual backups
    assert max(b["createdAt"] for b in backups) <= iso(NOW)


def test_time_moves_the_data_on(simulator, clock):
    before = simulator.backups("primary-backups")
    clock.now += 8 * 86400
    after = simulator.backups("primary-backups")
    assert len(after) == len(before)
    assert after[0]["createdAt"] > before[0]["createdAt"]
    assert before[-1]["id"] not in {b["id"] for b in after}


def test_cursor_stays_valid_when_new_backups_arrive(simulator, clock):
    path = "/v1/backup-destinations/primary-backups/backups"
    first = get(simulator, path, per_page=100).json()
    clock.now += 3600
    second = get(simulator, path, per_page=100, cursor=first["pagination"]["cursor"]).json()
    last_seen = first["data"][-1]["createdAt"]
    assert second["data"][0]["createdAt"] < last_seen


def test_injected_faults(start_simulator):
    from exporter.simulator import Faults

    simulator = start_simulator(faults=Faults(destination_status={"backups-02": 403}))
    assert get(simulator, "/v1/backup-destinations/backups-02/backups").status_code == 403
    assert get(simulator, "/v1/backup-destinations/primary-backups/backups").status_code == 200
    simulator.faults.error_rate = 1.0
    response = get(simulator, "/v1/backup-destinations")
    assert response.status_code == 500
    assert response.json()["error"]["message"]
    simulator.faults.error_rate = 0.0
    simulator.faults.malformed_rate = 1.0
    with pytest.raises(ValueError):
        get(simulator, "/v1/backup-destinations").json()
    assert [r.status for r in simulator.requests] == [403, 200, 500, 200]


def test_unknown_scenarios_are_refused():
    with pytest.raises(ValueError, match="unknown scenario 'flaky'"):
        build_world(1, NOW, 1, 10, scenarios=("flaky",))


def test_scenarios_add_addons_of_their_own_to_the_first_destination():
    world = build_world(1, NOW, 2, 100, scenarios=("stuck", "stopped"))
    plain = build_world(1, NOW, 2, 100)
    first = [a.addon_id for a in world.destinations[0].addons]
    assert first[-2:] == ["stuck-mongodb", "stopped-postgresql"]
    assert world.destinations[1] == plain.destinations[1]
    listed = world.backups(world.destinations[0], NOW)
    assert len(listed) == 100 + 48 + 45  # the stopped addon: 48 slots of retention, 3 missing
    stopped = [
        item.created for item in listed if item.backup["addon"]["id"] == "stopped-postgresql"
    ]
    # hourly at :15, stopped three slots before NOW (12:34:55): the newest is from 09:15
    assert 0 <= max(stopped) - (NOW - NOW % 3600 - 3 * 3600 + 900) < 30


def test_the_command_line_prints_its_base_url_first(tmp_path):
    import subprocess
    import sys

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
            "1",
            "--backups-per-destination",
            "10",
            "--scenario",
            "never-completed",
            "--now",
            "2026-11-30T12:00:00Z",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        body = httpx.get(
            f"{base_url}/v1/backup-destinations/primary-backups/backups", headers=AUTH
        ).json()
        assert body["pagination"]["count"] == 20  # 10 generated and 10 of the scenario
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_requests_spent_by_other_clients_of_the_token(start_simulator):
    simulator = start_simulator(rate_limit=RateLimit(10, used=8))
    first = get(simulator, "/v1/backup-destinations")
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert get(simulator, "/v1/backup-destinations").headers["x-ratelimit-remaining"] == "0"
    assert get(simulator, "/v1/backup-destinations").status_code == 429


# --- the inventory (shared/northflank-api/inventory.md): what should be backed up


def walk_inventory(simulator, path, key, per_page=2):
    """Every item of an inventory listing: `data.{key}`, or `data` itself when `key` is None
    (volumes, as the clients declare them); an optional list left out holds none."""
    items, cursor = [], None
    while True:
        params = {"per_page": per_page} | ({"cursor": cursor} if cursor else {})
        response = get(simulator, path, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        page = body["data"] if key is None else body["data"].get(key, [])
        items.extend(page)
        assert body["pagination"]["count"] == len(page)
        if not body["pagination"]["hasNextPage"]:
            return items
        cursor = body["pagination"]["cursor"]


def listed_addons(simulator):
    """(project, addon) of every backup the destinations list, and the backups of each."""
    found = {}
    for destination in ("primary-backups", "backups-02"):
        for item in simulator.backups(destination):
            key = (item["project"]["id"], item["addon"]["id"])
            found.setdefault(key, []).append((destination, item))
    return found


def test_projects_and_their_addons_are_those_the_backups_belong_to(simulator):
    found = listed_addons(simulator)
    projects = walk_inventory(simulator, "/v1/projects", "projects")
    assert [p["id"] for p in projects] == sorted({project for project, _ in found})
    assert all(p["lifecycleStatus"] == "created" and p["name"] for p in projects)
    for project in projects:
        addons = walk_inventory(simulator, f"/v1/projects/{project['id']}/addons", "addons")
        assert {a["id"] for a in addons} == {a for p, a in found if p == project["id"]}
        assert {a["spec"]["type"] for a in addons} <= {"postgresql", "mongodb", "mysql", "redis"}
        assert walk_inventory(simulator, f"/v1/projects/{project['id']}/volumes", None) == []


def test_an_addons_schedules_and_backups_match_what_its_destination_lists(simulator):
    found = listed_addons(simulator)
    assert len(found) >= 4  # every addon below is checked; none would check nothing
    for (project, addon), listed in found.items():
        base = f"/v1/projects/{project}/addons/{addon}"
        schedules = walk_inventory(simulator, f"{base}/backup-schedules", "schedules")
        declared = next(item["schedules"] for _, item in listed if item.get("schedules"))
        assert [s["scheduling"] for s in schedules] == declared
        assert {s["customDestinationId"] for s in schedules} == {d for d, _ in listed}
        assert all(s["backupType"] == "dump" and s["retentionTime"] > 0 for s in schedules)
        backups = walk_inventory(simulator, f"{base}/backups", "backups", per_page=7)
        in_destinations = {item["id"]: (destination, item) for destination, item in listed}
        assert len(backups) == len(in_destinations)
        for backup in backups:
            destination, item = in_destinations[backup["id"]]
            assert backup["customDestinationId"] == destination
            assert (backup["status"], backup["createdAt"]) == (item["status"], item["createdAt"])
            assert backup["config"]["size"] == item["config"]["size"]
        created = [backup["createdAt"] for backup in backups]
        assert created == sorted(created, reverse=True)  # newest first, as destinations list


def test_the_inventory_answers_under_team_routes_and_404s_what_does_not_exist(start_simulator):
    simulator = start_simulator(team="platform")
    projects = walk_inventory(simulator, "/v1/teams/platform/projects", "projects")
    assert projects == walk_inventory(simulator, "/v1/projects", "projects")
    project = projects[0]["id"]
    assert get(simulator, "/v1/teams/other/projects").status_code == 404
    assert get(simulator, "/v1/projects/nope/addons").status_code == 404
    assert get(simulator, f"/v1/projects/{project}/addons/nope/backups").status_code == 404
    assert get(simulator, f"/v1/projects/{project}/volumes/nope/backups").status_code == 404
