"""Expected values worked out from raw API objects, minute by minute, without the exporter's
own code: what the tests hold the exporter to."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

STATUSES = (
    "scheduled",
    "in-progress",
    "completed",
    "aborting",
    "aborted",
    "failed",
    "not-supported",
)
MINUTE = 60


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def matches(schedules: list[dict[str, Any]], moment: float) -> bool:
    """Is this whole minute a slot of one of the schedules (API form, day 0 = Monday, UTC)?"""
    when = datetime.fromtimestamp(moment, tz=UTC)
    if when.second or when.microsecond:
        return False
    for schedule in schedules:
        if when.minute not in schedule["minute"]:
            continue
        if schedule["interval"] == "hourly":
            return True
        if when.hour not in schedule["hour"]:
            continue
        if schedule["interval"] == "daily" or when.weekday() in schedule["day"]:
            return True
    return False


def _minute_floor(moment: float) -> int:
    return int(moment // MINUTE) * MINUTE


def _slot_before(schedules, moment):
    minute = _minute_floor(moment)
    while not matches(schedules, minute):
        minute -= MINUTE
    return float(minute)


def _slot_from(schedules, moment, *, strictly_after):
    minute = _minute_floor(moment)
    if minute < moment or (strictly_after and minute == moment):
        minute += MINUTE
    while not matches(schedules, minute):
        minute += MINUTE
    return float(minute)


def _longest_gap(schedules, start):
    slots = [m for m in range(int(start), int(start) + 15 * 86400, MINUTE) if matches(schedules, m)]
    return float(max(b - a for a, b in itertools.pairwise(slots)))


def addon_expectations(
    items: list[dict[str, Any]],
    now: float,
    *,
    window: float = 86400.0,
    tolerance: float = 300.0,
    grace: float = 3600.0,
    lookback: float = 7 * 86400.0,
) -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if item.get("expiredBy") and float(item["expiredBy"]) / 1000 <= now:
            continue  # past its expiredBy a backup is gone, even if still listed
        if isinstance(item.get("addon"), dict):
            project = item["project"]["id"] if isinstance(item.get("project"), dict) else ""
            groups[(project, item["addon"]["id"])].append(item)
    return {
        key: _one_addon(group, now, window, tolerance, grace, lookback)
        for key, group in groups.items()
    }


IMPORTS = ("fileUpload", "externalDump")


def _imported(item: dict[str, Any]) -> bool:
    source = item.get("config", {}).get("source")
    return isinstance(source, dict) and source.get("type") in IMPORTS


def _one_addon(group, now, window, tolerance, grace, lookback):
    want: dict[str, Any] = {"counts": dict.fromkeys(STATUSES, 0)}
    for item in group:
        want["counts"][item["status"]] = want["counts"].get(item["status"], 0) + 1
    newest = max(group, key=lambda item: epoch(item["createdAt"]))
    # an import of outside data counts by status, and in nothing else
    group = [item for item in group if not _imported(item)] or [newest]
    want["info"] = {
        "project_name": newest["project"]["name"],
        "addon_name": newest["addon"]["name"],
        "addon_type": newest["config"]["addonType"],
        "addon_version": newest["config"]["addonVersion"],
    }
    completed = [item for item in group if item["status"] == "completed"]
    last = max(completed, key=lambda item: epoch(item["completedAt"]), default=None)
    want["last_completed"] = epoch(last["completedAt"]) if last else None
    want["last_completed_size"] = int(last["config"]["size"]) if last else None
    newest_ten = sorted(completed, key=lambda item: epoch(item["completedAt"]))[-10:]
    want["size_median"] = (
        statistics.median(int(item["config"]["size"]) for item in newest_ten) if completed else None
    )
    want["last_completed_duration"] = (
        epoch(last["completedAt"]) - epoch(last["createdAt"]) if last else None
    )
    failures = [
        epoch(item["completedAt"]) if item.get("completedAt") else epoch(item["createdAt"])
        for item in group
        if item["status"] in ("failed", "aborted")
    ]
    want["last_failure"] = max(failures, default=None)
    newest_completed = max((epoch(item["createdAt"]) for item in completed), default=None)
    want["consecutive_failures"] = sum(
        1
        for item in group
        if item["status"] in ("failed", "aborted")
        and (newest_completed is None or epoch(item["createdAt"]) > newest_completed)
    )
    running = [
        epoch(item["createdAt"])
        for item in group
        if item["status"] in ("scheduled", "in-progress", "aborting")
    ]
    want["running_age"] = now - min(running) if running else None
    want["never_completed"] = 0 if completed else 1
    # an addon's own listing (managed storage) sends no expiredBy
    expiries = [float(item["expiredBy"]) / 1000 for item in group if "expiredBy" in item]
    want["restorable_until"] = max(
        (float(item["expiredBy"]) / 1000 for item in completed if "expiredBy" in item),
        default=None,
    )
    want["expiring"] = sum(1 for e in expiries if now < e <= now + window)
    scheduled = [item for item in group if item.get("schedules")]
    want.update(
        _schedule_expectations(group, scheduled, completed, now, tolerance, grace, lookback)
    )
    return want


def _schedule_expectations(group, scheduled, completed, now, tolerance, grace, lookback):
    if not scheduled:
        return {
            "intervals": set(),
            "expected_interval": None,
            "last_scheduled": None,
            "next_scheduled": None,
            "overdue": None,
            "missed": None,
            "last_missed": None,
        }
    schedules = max(scheduled, key=lambda item: epoch(item["createdAt"]))["schedules"]
    created = [epoch(item["createdAt"]) for item in group]
    oldest = min(created)
    newest_completed = max((epoch(item["createdAt"]) for item in completed), default=None)
    if newest_completed is None:
        first_unanswered = _slot_from(schedules, oldest - tolerance, strictly_after=False)
    else:
        first_unanswered = _slot_from(schedules, newest_completed + tolerance, strictly_after=True)
    # slots count from when the current schedules were first declared, without a break
    declared_since = oldest
    for item in sorted(scheduled, key=lambda item: epoch(item["createdAt"]), reverse=True):
        if item["schedules"] != schedules:
            break
        declared_since = epoch(item["createdAt"])
    start = max(now - lookback, max(oldest, declared_since) - tolerance)
    missed = 0
    last_missed = None
    minute = _slot_from(schedules, start, strictly_after=False)
    while minute <= now - tolerance:
        if not any(abs(c - minute) <= tolerance for c in created):
            missed += 1
            last_missed = minute
        minute = _slot_from(schedules, minute, strictly_after=True)
    return {
        "intervals": {schedule["interval"] for schedule in schedules},
        "expected_interval": _longest_gap(schedules, _minute_floor(now)),
        "last_scheduled": _slot_before(schedules, now),
        "next_scheduled": _slot_from(schedules, now, strictly_after=True),
        "overdue": max(0.0, now - (first_unanswered + grace)),
        "missed": missed,
        "last_missed": last_missed,
    }


def approx_equal(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, abs_tol=1e-3)


def retention_expiry(item: dict[str, Any], declared: list[dict[str, Any]], tolerance=300.0):
    """An addon-listed backup's expiredBy (ms) where its listing sends none: createdAt plus the
    retentionTime days of the schedule whose slot it is (within the tolerance); None for one
    taken by hand."""
    created = epoch(item["createdAt"])
    days = [
        schedule["retentionTime"]
        for schedule in declared
        if any(
            matches([schedule["scheduling"]], minute)
            for minute in range(
                _minute_floor(created - tolerance), int(created + tolerance) + 1, 60
            )
        )
    ]
    return None if not days else (created + max(days) * 86400) * 1000


def managed_now(simulator, now):
    """(project, addon, items) of every addon the simulator backs up to managed storage at
    `now`: its own listing, given the project and addon objects, type and declared schedules
    a destination's listing would carry, so that `addon_expectations` reads it."""
    world = simulator.world
    for addon in world.elsewhere:
        if not addon.schedules or addon.target != "managed":
            continue
        items = []
        declared = world.addon_schedules(addon.project_id, addon.addon_id)
        for listed in world.addon_backups(addon.project_id, addon.addon_id, now):
            item = with_listing_context(
                listed.backup,
                {"id": addon.project_id, "name": addon.project_name},
                {"id": addon.addon_id, "name": addon.addon_name},
                addon.addon_type,
                declared,
            )
            if item.get("expiredBy") is None or float(item["expiredBy"]) / 1000 > now:
                items.append(item)
        yield addon.project_id, addon.addon_id, items


def with_listing_context(item, project, addon, addon_type, declared):
    """An addon-listed backup in the shape `addon_expectations` reads: the project, addon,
    type and schedules a destination's listing would carry, and its expiry from retention."""
    shown = {
        **item,
        "project": project,
        "addon": addon,
        "config": {**item["config"], "addonType": addon_type},
        "schedules": [schedule["scheduling"] for schedule in declared],
    }
    expiry = retention_expiry(item, declared)
    if expiry is not None:
        shown["expiredBy"] = expiry
    return shown
