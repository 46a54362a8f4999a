"""When a duty or a notice falls due: from its anchor, in clock time or in working days. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.calendar import add_working_days
from shared.policy import CalendarPolicy, DutyRule, Window


def due_at(
    rule: DutyRule, occurred_at: datetime, registered_at: datetime, calendar: CalendarPolicy
) -> datetime:
    return window_end(rule, occurred_at if rule.anchor == "occurred_at" else registered_at, calendar)


def window_end(window: Window, anchor: datetime, calendar: CalendarPolicy) -> datetime:
    if window.within_seconds is not None:
        return anchor + timedelta(seconds=window.within_seconds)
    assert window.within_working_days is not None  # the policy guarantees one of the two
    return add_working_days(anchor, window.within_working_days, calendar)
