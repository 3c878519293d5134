"""One fleet addon's restores: drills on a cadence for the addons under the backtest's drill
policy, now and then a restore by hand for the others, and the restore incidents
(`fleet.EFFECTS`). Every restore is a pure function of (seed, addon, its number).

Listed as the official clients declare them ({id, backupId, status, restoreTimestamp,
completedAt?}); a restore has no creation time in the API: it is listed from when it began."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple

from exporter.simulator.units import DAY, HOUR, MINUTE, draws, iso

if TYPE_CHECKING:
    from monitoring.fleet import FleetAddon

# The backtest's drill policies (restores.drills in the replay's configuration): two projects
# of the healthy fleet drilled weekly, restored every 5 to 6.5 days, as a team that drills on a
# calendar would be; the restore incidents every two days, restored every 1 to 1.5 days before
# their incident, so that a lapsed drill lapses within the run.
DRILLED = r"project-0[01]/.*"
DRILL_EVERY = 7 * DAY
DRILL_GAP = 5 * DAY
DRILL_GAP_SPREAD = 1.5 * DAY
INCIDENTS_DRILLED = r"incidents/incident-restore-.*"
INCIDENTS_DRILL_EVERY = 2 * DAY
INCIDENTS_DRILL_GAP = 1 * DAY
INCIDENTS_DRILL_GAP_SPREAD = 0.5 * DAY
POLICIES = ((DRILLED, DRILL_EVERY), (INCIDENTS_DRILLED, INCIDENTS_DRILL_EVERY))
BY_HAND_SHARE = 0.1  # the undrilled addons restored by hand, once, in the two months before
FAILED_DRILL = 20 * MINUTE  # how long the restore-failed incident's drill runs before it fails
RETRY_AFTER = 2 * HOUR  # and when, after that, the team restores again, successfully


class FleetRestore(NamedTuple):
    began: float
    lasted: float | None  # None: it never ends
    outcome: str  # what it ends as


def restores(seed: int, addon: FleetAddon, until: float) -> list[FleetRestore]:
    """Every restore of the addon that begins by `until`, oldest first."""
    if addon.effect.restore_incident:
        return _incident_drills(seed, addon, until)
    if re.fullmatch(DRILLED, f"{addon.project}/{addon.ident}"):
        return _drills(seed, addon, addon.born, until)
    draw = draws(seed, f"{addon.ident}-by-hand", 0)
    if draw[0] >= BY_HAND_SHARE:
        return []
    began = addon.born + DAY + draw[1] * 58 * DAY
    return [FleetRestore(began, _lasted(draw[2]), "completed")] if began <= until else []


def _drills(seed: int, addon: FleetAddon, since: float, until: float) -> list[FleetRestore]:
    """Drills from `since` on, each a drill gap after the one before, all completing."""
    gap, spread = (
        (INCIDENTS_DRILL_GAP, INCIDENTS_DRILL_GAP_SPREAD)
        if addon.effect.restore_incident
        else (DRILL_GAP, DRILL_GAP_SPREAD)
    )
    made = []
    number = 0
    began = since + draws(seed, f"{addon.ident}-drill", number)[0] * spread
    while began <= until:
        draw = draws(seed, f"{addon.ident}-drill", number)
        made.append(FleetRestore(began, _lasted(draw[1]), "completed"))
        number += 1
        began += gap + draws(seed, f"{addon.ident}-drill", number)[0] * spread
    return made


def _lasted(draw: float) -> float:
    """10 to 40 minutes; one in twenty takes 2 to 3 hours (a large database)."""
    if draw > 0.95:
        return 2 * HOUR + (draw - 0.95) * 20 * HOUR
    return 10 * MINUTE + draw * 30 * MINUTE


def _incident_drills(seed: int, addon: FleetAddon, until: float) -> list[FleetRestore]:
    """The healthy drills that ended before the incident, then its own: a drill at its start
    that fails (retried two hours later, successfully, then drilled as before), one that
    never ends, or none at all."""
    at = addon.incident_at
    assert at is not None
    effect = addon.effect
    made = [
        drill
        for drill in _drills(seed, addon, addon.born, at)
        if drill.lasted is not None and drill.began + drill.lasted < at
    ]
    if effect.restore_fails:
        made.append(FleetRestore(at, FAILED_DRILL, "failed"))
        retry = at + FAILED_DRILL + RETRY_AFTER
        made.extend(_drills(seed, addon, retry, until))
    elif effect.restore_sticks:
        made.append(FleetRestore(at, None, "completed"))
    return [drill for drill in made if drill.began <= until]


def restore_objects(seed: int, addon: FleetAddon, now: float) -> list[dict[str, Any]]:
    """The addon's restores as listed at `now`, newest first."""
    listed = []
    for number, restore in enumerate(restores(seed, addon, now)):
        ended = None if restore.lasted is None else restore.began + restore.lasted
        shown: dict[str, Any] = {
            "id": f"{addon.ident}-restore-{number:03d}",
            "backupId": f"{addon.ident}-{restore.began - DAY:.0f}",
            "status": "in-progress" if ended is None or now < ended else restore.outcome,
            # the point restored to: the newest daily backup before it began, about
            "restoreTimestamp": iso(restore.began - restore.began % DAY - 2 * HOUR),
        }
        if ended is not None and now >= ended:
            shown["completedAt"] = iso(ended)
        listed.append(shown)
    listed.reverse()
    return listed
