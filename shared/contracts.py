"""What each service says on the bus and what it listens to, as plain data: no service's code.

Provisioning, the bus permissions, the AsyncAPI documents and ``kizuki map`` are derived from these
contracts, so the ``kizuki`` command never imports a service. Each service binds its own message table
to its contract (shared/messages.py): a domain event for every wire event it publishes, a handler for
every wire event it handles; a table that says more or less than its contract is refused when built.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.bus import RECORD_STREAM, SUBMISSION_STREAM, Subscription, submission_subject, timer_subscription
from shared.events import (
    WIRE_EVENTS,
    AlertAcknowledged,
    AlertRequested,
    CallbackAbandoned,
    CallbackAttempted,
    CallbackCompleted,
    CallbackOverdue,
    CallbackScheduled,
    CaseClosed,
    CaseReopened,
    CaseReopenRequested,
    ComplaintErased,
    ComplaintReceived,
    CorrectiveMeasureRecorded,
    DeadlinePassed,
    DutyAssigned,
    DutyFulfilled,
    DutyMissed,
    DutyReassigned,
    EscalationStarted,
    FirstResponseRecorded,
    HarassmentAssessed,
    NotificationAcknowledged,
    NotificationFailed,
    NotificationNotDelivered,
    NotificationSent,
    ReportFiled,
    WireEvent,
    subject_of,
)

# Published by whichever service it happened in: a message set aside or taken up, an event the bus
# refused, a signed checkpoint (``events.<service>.<type>``, named by the instance, not the class).
ANY_SERVICE = "any"


@dataclass(frozen=True)
class Contract:
    """One service's messages: the wire events it handles from the record (on its durable consumer,
    named after it), whether it sets timers for itself, and whether it takes what channel systems
    submit on the bus (``submissions``: the topic of the submission's model, read only to describe it,
    so that no service's code is imported here). What it publishes is known from the wire classes:
    each names its service.

    ``reads_gathered``: its consumer of the record waits a moment after a small batch, so that what
    follows is handled together (``GATHER_SECONDS``); ``relays_gathered``: its relay waits as long
    after publishing a few events. Only for what people read, never on the way to an alert."""

    service: str
    handles: tuple[type[WireEvent], ...] = ()
    timers: bool = False
    submissions: str | None = None
    reads_gathered: bool = False
    relays_gathered: bool = False

    def __post_init__(self) -> None:
        unnamed = ", ".join(kind.type_name() for kind in self.handles if kind.service == ANY_SERVICE)
        if unnamed:
            raise ValueError(f"{self.service} cannot subscribe to {unnamed}: no one service publishes them")

    @property
    def publishes(self) -> tuple[type[WireEvent], ...]:
        """Its own events; every service also publishes the events of ``ANY_SERVICE``."""
        return tuple(kind for kind in WIRE_EVENTS if kind.service == self.service)

    @property
    def record(self) -> Subscription | None:
        """Its durable consumer of the record, filtered to the subjects of the events it handles."""
        if not self.handles:
            return None
        subjects = [subject_of(kind) for kind in self.handles]
        return Subscription(RECORD_STREAM, self.service, subjects, gathers=self.reads_gathered)

    @property
    def timer(self) -> Subscription | None:
        """Its durable consumer of its own timer fires."""
        return timer_subscription(self.service) if self.timers else None

    @property
    def submitted(self) -> Subscription | None:
        """Its durable consumer of every channel's submissions."""
        if self.submissions is None:
            return None
        return Subscription(SUBMISSION_STREAM, self.service, [submission_subject("*")])

    @property
    def subscriptions(self) -> list[Subscription]:
        declared = (self.record, self.timer, self.submitted)
        return [subscription for subscription in declared if subscription is not None]

    def published_subject(self, kind: type[WireEvent]) -> str:
        """Where this service publishes events of that kind (its own, or those of any service)."""
        return f"events.{self.service}.{kind.type_name()}"


INTAKE = Contract("intake", submissions="services.intake.submissions:Submission")
# A consumer's filter subjects follow the order of ``handles``: the order they were declared in before.
ESCALATION = Contract(
    "escalation",
    handles=(ComplaintReceived, CallbackCompleted, CaseReopenRequested, NotificationAcknowledged),
    timers=True,
)
NOTIFIER = Contract(
    "notifier",
    handles=(ComplaintReceived, DutyAssigned, AlertRequested, ComplaintErased),
    # What it publishes says what became of a delivery (the alert itself is handed over before): read
    # by the console and the auditors, and by escalation for a recipient's acknowledgement.
    relays_gathered=True,
)
FOLLOWUP = Contract(
    "followup",
    # ComplaintReceived: who the complaint concerns, so who may see its callbacks.
    handles=(ComplaintReceived, EscalationStarted, FirstResponseRecorded, CaseClosed),
    timers=True,
    reads_gathered=True,  # it schedules callbacks days ahead
)
# The console shows what its pages need; it reads, and publishes only what any service does.
CONSOLE = Contract(
    "console",
    handles=(
        ComplaintReceived, ComplaintErased, EscalationStarted, DutyAssigned, DutyReassigned, AlertRequested,
        AlertAcknowledged, DutyFulfilled, DutyMissed, DeadlinePassed, ReportFiled, FirstResponseRecorded,
        HarassmentAssessed, CorrectiveMeasureRecorded, CaseClosed, CaseReopened, NotificationSent,
        NotificationFailed, NotificationNotDelivered, NotificationAcknowledged, CallbackScheduled,
        CallbackAttempted, CallbackCompleted, CallbackAbandoned, CallbackOverdue,
    ),
    reads_gathered=True,  # for pages people look at
)  # fmt: skip
CONTRACTS = (INTAKE, ESCALATION, NOTIFIER, FOLLOWUP, CONSOLE)
CONTRACT_OF = {contract.service: contract for contract in CONTRACTS}
# Every service's durable consumers, which provisioning declares and the bus permissions follow.
SUBSCRIPTIONS: dict[str, list[Subscription]] = {
    contract.service: contract.subscriptions for contract in CONTRACTS
}
