"""The case: the reporting regime of one complaint. Pure rules, no I/O."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Case(Aggregate):
    class Started(Aggregate.Created):
        complaint_occurred_at: datetime
        opened_at: datetime
        policy_version: str
        tier: str | None

    @event(Started)
    def __init__(
        self,
        id: UUID,  # eventsourcing takes the aggregate id by this name; it is the complaint's
        complaint_occurred_at: datetime,
        opened_at: datetime,
        policy_version: str,
        tier: str | None,
    ) -> None:
        self.complaint_occurred_at = complaint_occurred_at
        self.opened_at = opened_at
        self.policy_version = policy_version
        self.tier = tier
