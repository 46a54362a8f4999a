"""A complaint that revealed a safety event, linked to an adverse-event report: a staff report
registered through intake (channel ``staff_report``), possibly anonymous. The link names the report by
its complaint id only, never its reporter. Pure rules, no I/O."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared import refusals

ADVERSE_EVENT_CHANNEL = "staff_report"


class SafetyLinksOfCase(Aggregate):
    """The adverse-event reports a case is linked to (part of ``Case``)."""

    safety_events: list[UUID]

    class SafetyEventLinked(Aggregate.Event):
        adverse_event_id: UUID
        linked_by: str
        at: datetime

    def people(self) -> set[str]:
        raise NotImplementedError  # the case's people, see Case

    def check_may_link(self, by: str, anywhere: bool) -> None:
        if not anywhere and by not in self.people():
            raise refusals.NotPermitted(f"{by} is not among the people of this case")

    def link_safety_event(
        self, by: str, anywhere: bool, report: UUID, report_channel: str | None, at: datetime
    ) -> None:
        """``anywhere``: the person may link any case (quality, patient safety), otherwise only a case
        they are among the people of. ``report_channel``: the channel the report came by, as its case
        knows it (None: not known). Linking the same report again changes nothing."""
        self.check_may_link(by, anywhere)
        if report == self.id:
            raise refusals.NotPossible("a complaint cannot be linked to itself")
        if report_channel != ADVERSE_EVENT_CHANNEL:
            raise refusals.NotPossible(
                f"complaint {report} is not an adverse-event report (a staff report registered by intake)"
            )
        if report not in self.safety_events:
            self._link(adverse_event_id=report, linked_by=by, at=at)

    @event(SafetyEventLinked)
    def _link(self, adverse_event_id: UUID, linked_by: str, at: datetime) -> None:
        self.safety_events.append(adverse_event_id)
