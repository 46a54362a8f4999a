"""The organisation's calendar: working days and quiet hours, in its own time zone, and when a duty or a
notice falls due from its anchor, in clock time or in working days. Pure."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from shared.policy import CalendarPolicy, DutyRule, Window


@cache
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def is_working_day(day: date, calendar: CalendarPolicy) -> bool:
    return day.weekday() < 5 and day not in _holidays(calendar.country, day.year)


def add_working_days(start: datetime, days: int, calendar: CalendarPolicy) -> datetime:
    """``days`` working days after ``start``, at the same local time of day."""
    local = start.astimezone(ZoneInfo(calendar.timezone))
    remaining = days
    while remaining:
        local += timedelta(days=1)
        if is_working_day(local.date(), calendar):
            remaining -= 1
    return local


def in_quiet_hours(moment: datetime, calendar: CalendarPolicy) -> bool:
    local = moment.astimezone(ZoneInfo(calendar.timezone)).time()
    start, end = calendar.quiet_hours_start, calendar.quiet_hours_end
    return start <= local < end if start <= end else (local >= start or local < end)


def outside_quiet_hours(moment: datetime, calendar: CalendarPolicy) -> datetime:
    """The moment itself, or the end of the quiet hours it falls in."""
    if not in_quiet_hours(moment, calendar):
        return moment
    local = moment.astimezone(ZoneInfo(calendar.timezone))
    end = local.replace(
        hour=calendar.quiet_hours_end.hour, minute=calendar.quiet_hours_end.minute, second=0, microsecond=0
    )
    return end if end > local else end + timedelta(days=1)


def next_working_moment(moment: datetime, calendar: CalendarPolicy) -> datetime:
    """The moment itself, or the first moment after it on a working day and outside quiet hours."""
    local = outside_quiet_hours(moment, calendar).astimezone(ZoneInfo(calendar.timezone))
    while not is_working_day(local.date(), calendar):
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        local = outside_quiet_hours(midnight, calendar).astimezone(ZoneInfo(calendar.timezone))
    return local


def due_at(
    rule: DutyRule, occurred_at: datetime, registered_at: datetime, calendar: CalendarPolicy
) -> datetime:
    return window_end(rule, occurred_at if rule.anchor == "occurred_at" else registered_at, calendar)


def window_end(window: Window, anchor: datetime, calendar: CalendarPolicy) -> datetime:
    if window.within_seconds is not None:
        return anchor + timedelta(seconds=window.within_seconds)
    assert window.within_working_days is not None  # the policy guarantees one of the two
    return add_working_days(anchor, window.within_working_days, calendar)
