"""What each incident of the fleet should fire, from when, and how late at most.

Worked out from the fleet alone (its own slots and listings), never from the exporter: an
expectation that shared the exporter's arithmetic would hide the exporter's mistakes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exporter.simulator.units import DAY, HOUR
from monitoring.backtest.replay import POLL
from monitoring.backtest.rules import Rule
from monitoring.fleet import INCIDENTS, Fleet, FleetAddon
from monitoring.fleet_restores import INCIDENTS_DRILL_EVERY, restore_objects
from monitoring.fleet_runs import scheduled_slots, skipped

GRACE = 3600.0  # the exporter's default schedule.grace, which the rules' arithmetic assumes
TOLERANCE = 300.0  # and its schedule.tolerance
UNDER_WAY = 900.0  # RestorableWindowEnding: how long after its slot a run counts as under way
RESTORES_READ = DAY  # the exporter's default restores.interval: a restore may be seen this late
STUCK_RESTORE = 6 * HOUR  # RestoreStuck's threshold


@dataclass(frozen=True)
class Incident:
    kind: str
    addon: str  # the addon's id, or the volume's
    start: float  # when the failure became true
    alert: str  # the alert that detects it
    target: float  # the longest time to detect allowed

    @property
    def judged_by(self) -> float:
        """The moment by which it must have been detected."""
        return self.start + self.target


Expectation = Callable[[Fleet, FleetAddon, dict[str, Rule]], Incident]


def incidents(fleet: Fleet, incident_addons: list[FleetAddon], rules: list[Rule]) -> list[Incident]:
    """What each incident addon should fire, from when, and how late at most."""
    by_name = {rule.name: rule for rule in rules}
    return [EXPECTED[addon.incident or ""](fleet, addon, by_name) for addon in incident_addons]


def _stopped(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    alert = "NorthflankBackupAddonOverdue"
    target = _gap(addon) + GRACE + rules[alert].hold + POLL
    return Incident("stopped", addon.ident, _first_slot(addon), alert, target)


def _skipped_runs(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """From the first skipped slot that nothing answers: a backup taken by hand within the
    tolerance of a slot answers it (seed 2 took one 2.5 minutes after the first)."""
    at = _incident_at(addon)
    slot = next(
        s
        for s in scheduled_slots(addon, at, at + 8 * DAY)
        if skipped(s) and not _created_near(fleet, addon, s)
    )
    return _one_slot(addon, slot + TOLERANCE, alert="NorthflankBackupAddonMissedRuns", rules=rules)


def _created_near(fleet: Fleet, addon: FleetAddon, slot: float) -> bool:
    """Whether the addon lists a backup of any status created within TOLERANCE of `slot`."""
    return any(
        abs(_epoch(b["createdAt"]) - slot) <= TOLERANCE
        for b in _listed_at(fleet, addon, slot + DAY)
    )


def _skipped_once(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon, _first_slot(addon) + TOLERANCE, alert="NorthflankBackupAddonMissedRuns", rules=rules
    )


def _stuck(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    alert = "NorthflankBackupAddonStuck"
    first = _first_slot(addon)
    threshold = max(3 * _longest_run(fleet, addon, first), 3600)
    return Incident("stuck", addon.ident, first, alert, threshold + rules[alert].hold + POLL)


def _never_completed(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon, _first_slot(addon), alert="NorthflankBackupAddonNeverCompleted", rules=rules
    )


def _failing(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """It fires on the second failure: "one slot" is from the first failure's end to the
    second's, run times included."""
    first = _first_slot(addon)
    ended = _ended(fleet, addon, first)
    second = _ended(fleet, addon, scheduled_slots(addon, first + 1, first + 8 * DAY)[0])
    return _one_slot(
        addon, ended, alert="NorthflankBackupAddonFailing", slot=second - ended, rules=rules
    )


def _shrunk(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon,
        _first_shrunk_end(fleet, addon, _incident_at(addon)),
        alert="NorthflankBackupAddonSizeDrop",
        rules=rules,
    )


def _retention_ending(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """Its backups stop; the window must page once it will close before the next slot's backup
    can land (the slot, plus the usual run time, plus the grace). Between two slots the next
    one is the later, once the earlier's run can no longer be under way unlisted (UNDER_WAY
    after it), so that holds from then after the slot before the first one too late."""
    at = _incident_at(addon)
    expires = _last_completed_expiry(fleet, addon, at)
    usual = _last_run(fleet, addon, at)
    previous = at
    for slot in scheduled_slots(addon, at, expires + DAY):
        if slot + usual + GRACE > expires:
            break
        previous = slot
    return _one_slot(
        addon,
        max(at, previous + UNDER_WAY),
        alert="NorthflankBackupAddonRestorableWindowEnding",
        rules=rules,
    )


def _unprotected(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon,
        _incident_at(addon),
        alert="NorthflankBackupAddonUnprotected",
        slot=HOUR,
        rules=rules,
    )


def _not_arriving(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """The rule waits an hour past the schedule's first slot before it judges."""
    return _one_slot(
        addon,
        _first_slot(addon) + HOUR,
        alert="NorthflankBackupScheduleNotArriving",
        slot=0.0,
        rules=rules,
    )


def _volume_stopped(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    alert = "NorthflankBackupVolumeOverdue"
    target = _gap(addon) + GRACE + rules[alert].hold + POLL
    return Incident("volume-stopped", addon.ident, _first_slot(addon), alert, target)


def _volume_skipped(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    return _one_slot(
        addon, _first_slot(addon) + TOLERANCE, alert="NorthflankBackupVolumeMissedRuns", rules=rules
    )


def _restore_failed(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """From when the failed drill ended: seen at the addon's next read of its restores."""
    alert = "NorthflankBackupRestoreFailed"
    at = _incident_at(addon)
    listed = restore_objects(fleet.seed, addon, at + DAY)
    ended = min(_epoch(r["completedAt"]) for r in listed if r["status"] == "failed")
    target = RESTORES_READ + rules[alert].hold + POLL
    return Incident("restore-failed", addon.ident, ended, alert, target)


def _restore_lapsed(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """From when the drill policy's interval has passed since the last drill completed."""
    alert = "NorthflankBackupRestoreDrillOverdue"
    listed = restore_objects(fleet.seed, addon, _incident_at(addon))
    last = max(_epoch(r["completedAt"]) for r in listed if r["status"] == "completed")
    target = rules[alert].hold + POLL
    return Incident("restore-lapsed", addon.ident, last + INCIDENTS_DRILL_EVERY, alert, target)


def _restore_stuck(fleet: Fleet, addon: FleetAddon, rules: dict[str, Rule]) -> Incident:
    """From when the drill began: seen at the addon's next read, and timed from then."""
    alert = "NorthflankBackupRestoreStuck"
    target = RESTORES_READ + STUCK_RESTORE + rules[alert].hold + POLL
    return Incident("restore-stuck", addon.ident, _incident_at(addon), alert, target)


EXPECTED: dict[str, Expectation] = {
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
    "volume-stopped": _volume_stopped,
    "volume-skipped": _volume_skipped,
    "restore-failed": _restore_failed,
    "restore-lapsed": _restore_lapsed,
    "restore-stuck": _restore_stuck,
}
assert set(EXPECTED) == set(INCIDENTS), "every incident of the fleet has an expectation"


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
    at = _incident_at(addon)
    slots = scheduled_slots(addon, at, at + 8 * DAY)
    return max(b - a for a, b in itertools.pairwise(slots))


def _listed_at(fleet: Fleet, addon: FleetAddon, moment: float) -> list[dict[str, Any]]:
    return [listed.backup for listed in fleet.listed(addon, moment)]


def _ended(fleet: Fleet, addon: FleetAddon, slot: float) -> float:
    """When the run of `slot` ended, read from the listing a day later."""
    for backup in _listed_at(fleet, addon, slot + DAY):
        if backup["id"] == f"{addon.ident}-{slot:.0f}":
            return _epoch(backup["completedAt"])
    raise AssertionError(f"no run at {slot} for {addon.ident}")


def _first_shrunk_end(fleet: Fleet, addon: FleetAddon, at: float) -> float:
    """When the first backup (scheduled or manual) taken after `at` completed."""
    ends = [
        _epoch(b["completedAt"])
        for b in _listed_at(fleet, addon, at + 2 * DAY)
        if b["status"] == "completed" and _epoch(b["createdAt"]) >= at
    ]
    return min(ends)


def _completed(fleet: Fleet, addon: FleetAddon, moment: float) -> list[dict[str, Any]]:
    return [b for b in _listed_at(fleet, addon, moment) if b["status"] == "completed"]


def _run_time(backup: dict[str, Any]) -> float:
    return _epoch(backup["completedAt"]) - _epoch(backup["createdAt"])


def _longest_run(fleet: Fleet, addon: FleetAddon, moment: float) -> float:
    return max(_run_time(b) for b in _completed(fleet, addon, moment))


def _last_run(fleet: Fleet, addon: FleetAddon, moment: float) -> float:
    """How long the backup that completed last before `moment` took."""
    last = max(_completed(fleet, addon, moment), key=lambda b: _epoch(b["completedAt"]))
    return _run_time(last)


def _last_completed_expiry(fleet: Fleet, addon: FleetAddon, moment: float) -> float:
    return max(float(b["expiredBy"]) / 1000 for b in _completed(fleet, addon, moment))


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
