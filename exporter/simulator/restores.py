"""An addon's restores, as `GET .../addons/{id}/restores` lists them: none for most addons, and
a history of its own for each restore scenario (`SimAddon.restores`). A restore has no creation
time in the API: it is listed from when it began, in progress until it ends, and its
`restoreTimestamp` is the point its data was restored to, an hour before it began."""

from __future__ import annotations

from typing import Any, NamedTuple

from exporter.simulator.units import DAY, HOUR, iso


class SimRestore(NamedTuple):
    began: float  # seconds before the anchor
    lasted: float  # seconds; the restore is in progress until then
    outcome: str


# The restore histories, by SimAddon.restores; the newest last.
HISTORIES: dict[str, tuple[SimRestore, ...]] = {
    # drilled every 30 days, the last three days ago
    "drilled": tuple(SimRestore(3 * DAY + n * 30 * DAY, 1200, "completed") for n in (2, 1, 0)),
    # restored ten days ago; the newest restore, six hours ago, failed
    "failed": (SimRestore(10 * DAY, 900, "completed"), SimRestore(6 * HOUR, 600, "failed")),
    # a restore in progress since ten hours before the anchor, that never ends
    "stuck": (SimRestore(10 * HOUR, 3650 * DAY, "completed"),),
    # drilled daily for 130 days: two pages of the clients' 100
    "paged": tuple(SimRestore(DAY + n * DAY, 300, "completed") for n in range(129, -1, -1)),
}


def restore_objects(addon_id: str, history: str, anchor: float, now: float) -> list[Any]:
    """The addon's restores listed at `now`, newest first, as the official clients declare
    them: {id, backupId, status, restoreTimestamp, completedAt?}."""
    listed = []
    for number, restore in enumerate(HISTORIES.get(history, ())):
        began = anchor - restore.began
        if began > now:
            continue
        ended = began + restore.lasted
        shown: dict[str, Any] = {
            "id": f"{addon_id}-restore-{number:03d}",
            "backupId": f"{addon_id}-backup-{number:03d}",
            "status": "in-progress" if now < ended else restore.outcome,
            "restoreTimestamp": iso(began - HOUR),
        }
        if now >= ended:
            shown["completedAt"] = iso(ended)
        listed.append(shown)
    listed.reverse()
    return listed
