"""Times people type in after the fact: when an apology call was made, when a patient was discharged.

Deadlines and compliance figures are read from these times, so a time typed in is bounded: not in
the future (beyond a device clock running a little ahead), not before what it follows, and not
further back from the moment it is recorded than the policy's ``[recording]`` section allows.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# A device whose clock runs a little ahead of the server's is not refused for it.
CLOCK_SKEW = timedelta(minutes=2)


class TimeRefused(ValueError):
    """A time typed in lies outside its bounds; the message names the field and the bound (422)."""


def duration(span: timedelta) -> str:
    """A span as a person says it: "6 hours", "2 days", "90 seconds"."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def check_entered(
    field: str,
    at: datetime,
    now: datetime,
    within: timedelta,
    policy_key: str,
    not_before: tuple[str, datetime] | None = None,
) -> None:
    """Refuse ``at`` when it is in the future, before ``not_before`` (what it follows, and when), or
    more than ``within`` (the policy's ``policy_key``) before ``now``, the moment it is recorded."""
    if at > now + CLOCK_SKEW:
        raise TimeRefused(f"{field}: cannot be in the future (it is {at.isoformat()}, now {now.isoformat()})")
    if not_before is not None and at < not_before[1]:
        what, moment = not_before
        raise TimeRefused(f"{field}: cannot be before {what} ({moment.isoformat()})")
    if at < now - within:
        raise TimeRefused(
            f"{field}: may be at most {duration(within)} before it is recorded "
            f"(the policy's [recording] {policy_key}); {at.isoformat()} is earlier than that"
        )
