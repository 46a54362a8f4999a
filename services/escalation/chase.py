"""The chase: whoever owes an answer is alerted again every interval, then the next person up their
chain. One machinery for duties and for learning notices. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.calendar import outside_quiet_hours
from shared.policy import CalendarPolicy, ChasePolicy


def next_alert_time(after: datetime, chase: ChasePolicy, calendar: CalendarPolicy) -> datetime:
    """A reminder waits the interval, and then for the end of quiet hours if it falls inside them."""
    return outside_quiet_hours(after + timedelta(seconds=chase.repeat_interval_seconds), calendar)


@dataclass(frozen=True)
class NextAlert:
    recipient: str
    attempt: int  # alerts to this recipient so far, this one included
    next_alert_at: datetime | None  # None once nobody is left above to alert


@dataclass(kw_only=True)
class Chased:
    """Someone owes an answer: the owner, then the chain above, as it stood when it was (re)assigned."""

    recipients: list[str]
    alerts_sent: int = 0
    alerts_before_owner: int = 0  # alerts sent to earlier owners, before a reassignment
    alerted: list[str] = field(default_factory=list)
    acknowledged_by: str | None = None

    def recipient_of(self, alert_number: int, attempts: int) -> tuple[str, int] | None:
        """Who the alert goes to, and which attempt it is for them; None once the chain is exhausted."""
        stage, attempt = divmod(alert_number - self.alerts_before_owner - 1, attempts)
        return (self.recipients[stage], attempt + 1) if stage < len(self.recipients) else None

    def next_alert(
        self, alert_number: int, now: datetime, chase: ChasePolicy, calendar: CalendarPolicy
    ) -> NextAlert | None:
        """Alert number N (of this chase): to whom, and when the one after it is due, if any."""
        target = self.recipient_of(alert_number, chase.attempts)
        if target is None:
            return None
        further = self.recipient_of(alert_number + 1, chase.attempts) is not None
        return NextAlert(*target, next_alert_time(now, chase, calendar) if further else None)

    def alerted_now(self, alert_number: int, recipient: str) -> None:
        self.alerts_sent = alert_number
        if recipient not in self.alerted:
            self.alerted.append(recipient)
