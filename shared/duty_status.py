"""How the regime judges a duty and sums times: one rule for the audit report and the console's overview."""

from __future__ import annotations

import math
from datetime import datetime

# The reporting duties name the person who owed them: past the deadline they are missed, not overdue.
REPORTING_ROLES = {
    "supervisor_acknowledgement": "supervisor",
    "supervisor_report": "supervisor",
    "first_hearer_report": "first hearer",
}
# What became of a duty, as of a moment.
STATUSES = ("on_time", "late", "missed", "overdue", "not_yet_due")


def duty_status(
    kind: str, due_at: datetime, done_at: datetime | None, deadline_passed: bool, as_of: datetime | None
) -> str:
    """Done on time or late; else missed (a reporting duty, which names the person who owed it)
    or overdue (the apology call, the feedback: still to be done) once the deadline has passed
    (``deadline_passed``: the record says so) or ``as_of`` has reached it; else not yet due."""
    if done_at is not None:
        return "on_time" if done_at <= due_at else "late"
    if deadline_passed or (as_of is not None and as_of >= due_at):
        return "missed" if kind in REPORTING_ROLES else "overdue"
    return "not_yet_due"


def nearest_rank(values: list[float], share: float) -> float | None:
    """The smallest value with at least ``share`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
