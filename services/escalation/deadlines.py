"""When a duty falls due: anchored where the domain says, in clock time or in working days. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.calendar import add_working_days
from shared.policy import CalendarPolicy, DutyRule


def due_at(
    rule: DutyRule, occurred_at: datetime, registered_at: datetime, calendar: CalendarPolicy
) -> datetime:
    anchor = occurred_at if rule.anchor == "occurred_at" else registered_at
    if rule.within_seconds is not None:
        return anchor + timedelta(seconds=rule.within_seconds)
    assert rule.within_working_days is not None  # the policy guarantees one of the two
    return add_working_days(anchor, rule.within_working_days, calendar)
