"""Wire contracts: the events every service publishes on the record stream.

Each event is a frozen, versioned pydantic model. Its subject on the bus is
``events.<service>.<type>``. Bodies are self-describing (``type`` and ``version``)
so that an auditor can decode the record without this code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Literal, get_args
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

Channel = Literal["phone", "walk_in", "web", "email", "wechat", "line", "letter", "survey", "staff_report"]
Tier = Literal["minor", "complex", "major"]
Language = Literal["ja", "zh", "en"]
DutyKind = Literal[
    "supervisor_acknowledgement",
    "supervisor_report",
    "first_hearer_report",
    "first_response",
    "patient_feedback",
]
# What an alert is about: a duty, a major case (straight to leadership), or a department's answer to a
# learning notice (chased like a duty; never a duty that can be missed).
AlertSubject = DutyKind | Literal["major_case", "learning_notice"]
CallbackPurpose = Literal["after_first_response", "after_closure", "after_discharge"]
# The Healthcare Complaints Analysis Tool (HCAT; Reader, Gillespie & Roberts, BMJ Qual Saf 2014):
# seven categories in three domains, a severity per category, the harm, and the stage of care.
HcatCategory = Literal[
    "quality",
    "safety",
    "environment",
    "institutional_processes",
    "listening",
    "communication",
    "respect_and_patient_rights",
]
HCAT_DOMAINS: dict[str, tuple[HcatCategory, ...]] = {
    "clinical": ("quality", "safety"),
    "management": ("environment", "institutional_processes"),
    "relationships": ("listening", "communication", "respect_and_patient_rights"),
}
CareStage = Literal[
    "admission",
    "examination_and_diagnosis",
    "care_on_the_ward",
    "operation_or_procedure",
    "discharge_and_transfer",
    "other",
]
NoticeAnswer = Literal["action_complete", "not_applicable"]


class WireEvent(BaseModel):
    """Fields every event on the record carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: ClassVar[str]

    event_id: UUID = Field(description="Unique id of this event; the same on every retry of its relay.")
    complaint_id: UUID = Field(description="The complaint this event belongs to (correlation id).")
    occurred_at: AwareDatetime = Field(description="When the fact happened in the world.")
    recorded_at: AwareDatetime = Field(description="When the publishing service recorded the fact.")

    @property
    def subject(self) -> str:
        return subject_of(type(self))

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


def subject_of(kind: type[WireEvent]) -> str:
    """The subject events of that kind are published on: known from the class, before any is made."""
    return f"events.{kind.service}.{kind.type_name()}"


class ComplaintReceived(WireEvent):
    """A staff member registered the facts of a complaint."""

    service: ClassVar[str] = "intake"
    type: Literal["ComplaintReceived"] = "ComplaintReceived"
    version: Literal[2] = 2

    channel: Channel = Field(description="How the complaint reached the hospital.")
    heard_by: str = Field(description="Staff id of the first hearer (the reporting owner).")
    department: str = Field(description="Department the complaint concerns.")
    patient_data: str = Field(
        description="The complainant's name and contact and the complaint's text, sealed with the "
        "complaint's own key (see shared/privacy.py); unreadable once the complaint is erased."
    )
    category: str | None = Field(
        default=None, description="The hospital's category of the complaint, if given."
    )
    tier: Tier | None = Field(default=None, description="Tier given at intake, if any.")
    language: Language = Field(description="The complainant's language for receipts.")
    reporter_sealed: str | None = Field(
        default=None,
        description="For an anonymous staff report: who reported it, sealed so that only the "
        "patient-safety officer can open it (each opening is a ReporterIdentityOpened event).",
    )


class ReporterIdentityOpened(WireEvent):
    """The patient-safety officer opened the sealed identity of an anonymous staff report."""

    service: ClassVar[str] = "intake"
    type: Literal["ReporterIdentityOpened"] = "ReporterIdentityOpened"
    version: Literal[1] = 1

    by: str = Field(description="Staff id of the patient-safety officer who opened it.")
    reason: str = Field(description="Why it was opened.")


class ComplaintErased(WireEvent):
    """The complaint's key was destroyed: its patient data can no longer be read, here or anywhere."""

    service: ClassVar[str] = "intake"
    type: Literal["ComplaintErased"] = "ComplaintErased"
    version: Literal[1] = 1

    by: str = Field(description="Staff id of the administrator who erased it.")


class ComplaintMessageAppended(WireEvent):
    """A further message from the complainant, on a chat channel, added to their recent complaint."""

    service: ClassVar[str] = "intake"
    type: Literal["ComplaintMessageAppended"] = "ComplaintMessageAppended"
    version: Literal[1] = 1

    channel: Channel = Field(description="The channel the message came by.")
    message_ref: str = Field(description="The channel's own id of the message, e.g. 'line:5123...'.")
    patient_data: str = Field(
        description="The message's text, sealed with the complaint's own key like its first text."
    )


class PossibleDuplicateFlagged(WireEvent):
    """The same contact said something similar in a recent complaint: both stay; a person decides."""

    service: ClassVar[str] = "intake"
    type: Literal["PossibleDuplicateFlagged"] = "PossibleDuplicateFlagged"
    version: Literal[1] = 1

    duplicate_of: UUID = Field(description="The earlier complaint it may repeat.")
    similarity: float = Field(ge=0, le=1, description="Estimated likeness of the two texts, 0 to 1.")


class ChannelMessageRejected(WireEvent):
    """A message that came by a channel could not become a complaint; the reason is recorded."""

    service: ClassVar[str] = "intake"
    type: Literal["ChannelMessageRejected"] = "ChannelMessageRejected"
    version: Literal[1] = 1

    complaint_id: UUID | None = Field(  # type: ignore[assignment]  # a rejected message made no complaint
        default=None, description="Always null: no complaint was made."
    )
    channel: Channel = Field(description="The channel the message came by.")
    message_ref: str = Field(description="The channel's id of the message, or the file and line of a row.")
    reason: str = Field(description="Why it was not registered.")


class EscalationStarted(WireEvent):
    """The reporting regime opened a case for the complaint."""

    service: ClassVar[str] = "escalation"
    type: Literal["EscalationStarted"] = "EscalationStarted"
    version: Literal[1] = 1

    policy_version: str = Field(description="Version of the policy in force; the case keeps it.")
    tier: Tier = Field(description="Tier of the case: given at intake, or classified by the policy.")
    tier_reason: str = Field(description="Where the tier came from (intake, a keyword rule, the default).")
    chase: dict[str, int] | None = Field(
        default=None,
        description="The chase settings the case keeps (repeat_interval_seconds, attempts); absent in "
        "records written before they were recorded.",
    )
    calendar: dict[str, str] | None = Field(
        default=None,
        description="The calendar the case keeps (country, timezone, quiet hours); absent in records "
        "written before it was recorded.",
    )


class AlertWithAssignment(BaseModel):
    """The alert a duty's assignment sends at once: the first of its chase, or the next one when the
    case reopens. Requested when the duty was assigned, about its deadline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipient: str = Field(description="Staff id of the person alerted.")
    tier: Tier = Field(description="Tier of the case.")
    alert_number: int = Field(ge=1, description="Alerts about this duty so far, this one included.")
    attempt: int = Field(ge=1, description="Alerts to this recipient about this duty so far.")
    next_alert_at: AwareDatetime | None = Field(description="When the next alert goes out if no one answers.")


class DutyAssigned(WireEvent):
    """A person owes a duty of the reporting regime on this case, by a deadline; with the alert that
    tells them (one event rather than two)."""

    service: ClassVar[str] = "escalation"
    type: Literal["DutyAssigned"] = "DutyAssigned"
    version: Literal[1] = 1

    duty: DutyKind = Field(description="Which duty.")
    owner: str = Field(description="Staff id of the person who owes it.")
    due_at: AwareDatetime = Field(description="Its deadline, anchored as the policy says.")
    late_on_arrival: bool = Field(description="The deadline had already passed when the case opened.")
    recipients: list[str] | None = Field(
        default=None,
        description="Who is chased, in order: the owner, then the chain above as it stood; absent in "
        "records written before it was recorded.",
    )
    alert: AlertWithAssignment | None = Field(
        default=None,
        description="The alert sent with the assignment; absent in records written before it was carried "
        "here (an AlertRequested followed each DutyAssigned), or if no one can be alerted.",
    )


class CaseEvent(WireEvent):
    """An event of the reporting regime of a case."""

    service: ClassVar[str] = "escalation"


class AlertRequested(CaseEvent):
    """Escalation asks the notifier to alert a person about a duty. Never carries the patient's story."""

    type: Literal["AlertRequested"] = "AlertRequested"
    version: Literal[1] = 1

    duty: AlertSubject = Field(description="The duty the alert is about.")
    recipient: str = Field(description="Staff id of the person alerted.")
    tier: Tier = Field(description="Tier of the case.")
    alert_number: int = Field(ge=1, description="Alerts about this duty so far, this one included.")
    attempt: int = Field(ge=1, description="Alerts to this recipient about this duty so far.")
    due_at: AwareDatetime = Field(description="Deadline of the duty.")
    next_alert_at: AwareDatetime | None = Field(description="When the next alert goes out if no one answers.")
    notice_id: UUID | None = Field(
        default=None, description="For a learning notice's alert: the notice (absent in older records)."
    )
    department: str | None = Field(
        default=None,
        description="For a learning notice's alert: the department chased (absent in older records).",
    )


class DutyReassigned(CaseEvent):
    """A duty passed to another owner (e.g. a harassment case to the second-line responder)."""

    type: Literal["DutyReassigned"] = "DutyReassigned"
    version: Literal[1] = 1

    duty: DutyKind
    owner: str = Field(description="Staff id of the new owner.")
    reason: str
    recipients: list[str] | None = Field(
        default=None,
        description="Who is chased now, the new owner first; absent in records written before it was "
        "recorded.",
    )


class AlertAcknowledged(CaseEvent):
    """Someone answered an alert: the chase for that duty stops."""

    type: Literal["AlertAcknowledged"] = "AlertAcknowledged"
    version: Literal[1] = 1

    duty: DutyKind
    by: str = Field(description="Staff id of who acknowledged.")


class DutyFulfilled(CaseEvent):
    type: Literal["DutyFulfilled"] = "DutyFulfilled"
    version: Literal[1] = 1

    duty: DutyKind
    by: str = Field(description="Staff id of who did it.")
    how: str = Field(description="What fulfilled it.")


class DutyMissed(CaseEvent):
    """A reporting duty passed its deadline undone. The only event that names a person as having failed."""

    type: Literal["DutyMissed"] = "DutyMissed"
    version: Literal[1] = 1

    duty: DutyKind = Field(description="A reporting duty: the supervisor's or the first hearer's.")
    person: str = Field(description="Staff id of who owed it.")
    due_at: AwareDatetime


class DeadlinePassed(CaseEvent):
    """A duty of the case (first response, feedback) passed its deadline; recorded against the case."""

    type: Literal["DeadlinePassed"] = "DeadlinePassed"
    version: Literal[1] = 1

    duty: DutyKind
    due_at: AwareDatetime


class ReportFiled(CaseEvent):
    type: Literal["ReportFiled"] = "ReportFiled"
    version: Literal[1] = 1

    track: DutyKind = Field(description="first_hearer_report or supervisor_report.")
    by: str
    to: str = Field(description="Staff id of the executive reported to.")


class FirstResponseRecorded(CaseEvent):
    type: Literal["FirstResponseRecorded"] = "FirstResponseRecorded"
    version: Literal[1] = 1

    by: str
    patient_reached: bool
    within_window: bool = Field(
        description="Made before the deadline anchored on when the complaint occurred."
    )


class HarassmentAssessed(CaseEvent):
    type: Literal["HarassmentAssessed"] = "HarassmentAssessed"
    version: Literal[1] = 1

    by: str = Field(description="Who decided.")
    demand_valid: bool
    means_appropriate: bool
    impact_on_staff: bool
    is_harassment: bool
    second_line: str | None = Field(description="Who takes the case over, when it is harassment.")
    protected_staff: str | None = Field(description="The staff member the organisation protects.")


class CorrectiveMeasureRecorded(CaseEvent):
    type: Literal["CorrectiveMeasureRecorded"] = "CorrectiveMeasureRecorded"
    version: Literal[1] = 1

    by: str
    measure: str
    responsible: str


class CaseClosed(CaseEvent):
    type: Literal["CaseClosed"] = "CaseClosed"
    version: Literal[1] = 1

    by: str


class CaseReopened(CaseEvent):
    """A callback found the patient unsatisfied: the case is open again with a new first-response duty."""

    type: Literal["CaseReopened"] = "CaseReopened"
    version: Literal[1] = 1

    callback_id: UUID = Field(description="The callback whose outcome asked for the reopening.")
    reason: str = Field(description="Why the callback asked for it.")


class CaseCoded(CaseEvent):
    """A handler or the quality officer coded the case with HCAT. Recoding is a new event; the old one
    stays. A blind coding is a second coder's, kept apart to measure agreement (Cohen's kappa)."""

    type: Literal["CaseCoded"] = "CaseCoded"
    version: Literal[1] = 1

    coded_by: str = Field(description="Staff id of the coder.")
    blind: bool = Field(description="A second coder's blind coding, for agreement; not the case's coding.")
    severities: dict[HcatCategory, Annotated[int, Field(ge=0, le=3)]] = Field(
        description="Severity per HCAT category: 0 not present, 1 low, 2 medium, 3 high."
    )
    harm: int = Field(
        ge=0, le=5, description="HCAT harm: 0 none, 1 minimal, 2 minor, 3 moderate, 4 major, 5 catastrophic."
    )
    stage: CareStage = Field(description="The stage of care the complaint concerns.")


class LearningNoticeIssued(CaseEvent):
    """A corrective measure was issued as a learning notice to the departments it concerns; each
    department's responsible person owes an answer by the deadline."""

    type: Literal["LearningNoticeIssued"] = "LearningNoticeIssued"
    version: Literal[1] = 1

    notice_id: UUID = Field(description="The notice; the complaint id is the case it comes from.")
    issued_by: str = Field(description="Staff id of who issued it.")
    departments: list[str] = Field(min_length=1, description="Departments that must answer.")
    responsible: dict[str, str] = Field(description="Per department, the staff id who answers for it.")
    categories: list[HcatCategory] = Field(description="What the notice is about, to follow the trend.")
    due_at: AwareDatetime = Field(description="When every answer is due.")
    recipients: dict[str, list[str]] | None = Field(
        default=None,
        description="Per department, who is chased, the responsible person first; absent in records "
        "written before it was recorded.",
    )


class LearningNoticeRead(CaseEvent):
    """A department's responsible person opened the notice."""

    type: Literal["LearningNoticeRead"] = "LearningNoticeRead"
    version: Literal[1] = 1

    notice_id: UUID
    department: str
    read_by: str


class LearningNoticeAnswered(CaseEvent):
    """A department answered a learning notice: the action is complete, or it does not apply (why)."""

    type: Literal["LearningNoticeAnswered"] = "LearningNoticeAnswered"
    version: Literal[1] = 1

    notice_id: UUID
    department: str
    answered_by: str
    answer: NoticeAnswer
    reason: str | None = Field(default=None, description="Required when the notice does not apply.")


class LearningNoticeOverdue(CaseEvent):
    """A department had not answered a learning notice by its deadline; recorded against the notice and
    the department, never against a person (only a missed report names a person)."""

    type: Literal["LearningNoticeOverdue"] = "LearningNoticeOverdue"
    version: Literal[1] = 1

    notice_id: UUID
    department: str
    due_at: AwareDatetime


class SafetyEventLinked(CaseEvent):
    """The complaint revealed a safety event: it is linked to an adverse-event report (a staff report
    registered through intake, possibly anonymous), so the two registers meet."""

    type: Literal["SafetyEventLinked"] = "SafetyEventLinked"
    version: Literal[1] = 1

    adverse_event_id: UUID = Field(description="Complaint id of the adverse-event (staff) report.")
    linked_by: str


class NotificationSent(WireEvent):
    """An alert to a staff member was handed to a delivery channel."""

    service: ClassVar[str] = "notifier"
    type: Literal["NotificationSent"] = "NotificationSent"
    version: Literal[1] = 1

    delivery_id: UUID
    recipient: str
    channel: str
    duty: str
    alert_number: int


class NotificationAttempted(WireEvent):
    """A delivery is about to be handed to a channel; recorded before it is, so a restart knows."""

    service: ClassVar[str] = "notifier"
    type: Literal["NotificationAttempted"] = "NotificationAttempted"
    version: Literal[1] = 1

    delivery_id: UUID = Field(description="The notification being delivered.")
    recipient: str = Field(description="Staff id, or 'complainant' (whose contact stays off the record).")
    channel: str = Field(description="Channel of this attempt, as named in the channel configuration.")
    attempt: int = Field(ge=1, description="Attempts of this notification so far, this one included.")
    idempotency_key: UUID = Field(
        description="Sent to the provider; the same on every attempt on this channel."
    )


class NotificationFailed(WireEvent):
    """An attempt failed: tried again later on the same channel, on the next channel, or given up."""

    service: ClassVar[str] = "notifier"
    type: Literal["NotificationFailed"] = "NotificationFailed"
    version: Literal[1] = 1

    delivery_id: UUID
    recipient: str
    channel: str
    attempt: int = Field(ge=1)
    reason: str = Field(
        description="Why, as classified: e.g. `rejected_recipient (SMTP 550)`, `server_error (HTTP 503)`, "
        "`timeout (…)`, `unreachable`; never the provider's own text."
    )
    permanent: bool = Field(description="The channel refused it; trying it again would not help.")
    retry_at: AwareDatetime | None = Field(description="When the same channel is tried again, if it is.")
    next_channel: str | None = Field(description="The recipient's next channel, tried now, if any.")


class NotificationNotDelivered(WireEvent):
    """An alert reached no one: the staff member has no contact on a configured channel, or every
    channel failed. The chase goes on (and up the chain) as for any alert not acknowledged; this is
    on the record so that quality staff can fix the directory or the channel."""

    service: ClassVar[str] = "notifier"
    type: Literal["NotificationNotDelivered"] = "NotificationNotDelivered"
    version: Literal[1] = 1

    delivery_id: UUID = Field(description="The alert that was given up.")
    recipient: str = Field(description="Staff id of the person the alert was for.")
    duty: AlertSubject = Field(description="The duty the alert was about.")
    alert_number: int = Field(description="Which alert of the chase it was.")
    reason: str = Field(description="Why it was given up, without any address.")


class NotificationAcknowledged(WireEvent):
    """A staff member acknowledged an alert through its one-click link."""

    service: ClassVar[str] = "notifier"
    type: Literal["NotificationAcknowledged"] = "NotificationAcknowledged"
    version: Literal[1] = 1

    delivery_id: UUID = Field(description="The alert acknowledged.")
    duty: AlertSubject = Field(description="The duty the alert was about.")
    by: str = Field(description="Staff id of the person the alert went to.")


class ComplainantAcknowledged(WireEvent):
    """A receipt to the complainant was handed to a delivery channel."""

    service: ClassVar[str] = "notifier"
    type: Literal["ComplainantAcknowledged"] = "ComplainantAcknowledged"
    version: Literal[1] = 1

    delivery_id: UUID = Field(description="Id of the delivery, also the channel's idempotency key.")
    channel: str = Field(description="Delivery channel the receipt was handed to.")
    language: Language = Field(description="Language the receipt was written in.")


class ComplainantNotAcknowledged(WireEvent):
    """No receipt could be sent to the complainant, and why."""

    service: ClassVar[str] = "notifier"
    type: Literal["ComplainantNotAcknowledged"] = "ComplainantNotAcknowledged"
    version: Literal[1] = 1

    reason: str = Field(description="Why no receipt was sent.")


class CallbackEvent(WireEvent):
    """An event of a callback visit (回访) to the patient."""

    service: ClassVar[str] = "followup"

    callback_id: UUID = Field(description="The callback visit.")


class CallbackScheduled(CallbackEvent):
    """An attempt of a callback visit was scheduled: the first one, or the next after the patient was
    not reached."""

    type: Literal["CallbackScheduled"] = "CallbackScheduled"
    version: Literal[1] = 1

    purpose: CallbackPurpose = Field(description="What the callback follows.")
    assignee: str = Field(description="Staff id of the callback staff member who makes the call.")
    due_at: AwareDatetime = Field(description="When the attempt falls due.")
    complete_by: AwareDatetime = Field(description="When the callback becomes overdue if not done.")
    attempt: int = Field(ge=1, description="Attempt number this schedule is for.")


class CallbackDue(CallbackEvent):
    """A scheduled attempt of a callback visit fell due."""

    type: Literal["CallbackDue"] = "CallbackDue"
    version: Literal[1] = 1

    attempt: int = Field(ge=1, description="Attempt number that fell due.")


class CallbackAttempted(CallbackEvent):
    """A call was made and the patient was not reached."""

    type: Literal["CallbackAttempted"] = "CallbackAttempted"
    version: Literal[1] = 1

    by: str = Field(description="Staff id of who called.")
    attempt: int = Field(ge=1, description="Attempt number of the call.")


class CallbackCompleted(CallbackEvent):
    """The patient was reached and said how it went. Their own words stay in followup's store."""

    type: Literal["CallbackCompleted"] = "CallbackCompleted"
    version: Literal[1] = 1

    purpose: CallbackPurpose = Field(description="What the callback followed.")
    by: str = Field(description="Staff id of who called.")
    attempt: int = Field(ge=1, description="Attempt number of the call.")
    satisfaction: int = Field(ge=1, le=5, description="The patient's satisfaction, 1 (worst) to 5.")
    resolved: bool = Field(description="Whether the problem is resolved, in the patient's words.")


class CallbackAbandoned(CallbackEvent):
    """The patient was not reached in any of the attempts the policy allows."""

    type: Literal["CallbackAbandoned"] = "CallbackAbandoned"
    version: Literal[1] = 1

    attempts: int = Field(ge=1, description="Attempts made.")


class CallbackOverdue(CallbackEvent):
    """A callback was not done by its deadline. Recorded against the case, never a person."""

    type: Literal["CallbackOverdue"] = "CallbackOverdue"
    version: Literal[1] = 1

    complete_by: AwareDatetime = Field(description="The deadline it passed.")


class CaseReopenRequested(CallbackEvent):
    """A callback found the problem unresolved or the patient unsatisfied: the case should reopen."""

    type: Literal["CaseReopenRequested"] = "CaseReopenRequested"
    version: Literal[1] = 1

    reason: str = Field(description="What the patient said, in outline: unresolved, or the satisfaction.")


class MessageRejected(WireEvent):
    """A message on the bus could not be processed; it was set aside, not lost."""

    service: ClassVar[str] = "any"
    type: Literal["MessageRejected"] = "MessageRejected"
    version: Literal[1] = 1

    complaint_id: UUID | None = Field(  # type: ignore[assignment]  # a bad message may name no complaint
        default=None, description="The complaint, when the bad message named one."
    )
    rejected_by: str = Field(description="Service that rejected the message.")
    stream: str = Field(description="Stream the message was read from.")
    stream_sequence: int = Field(description="Its sequence in that stream.")
    message_subject: str = Field(description="Its subject.")
    reason: str = Field(description="Why it could not be processed.")

    @property
    def subject(self) -> str:
        return f"events.{self.rejected_by}.{self.type_name()}"


class MessageTakenUp(WireEvent):
    """A message that was set aside (MessageRejected) was taken up again once its cause was fixed."""

    service: ClassVar[str] = "any"
    type: Literal["MessageTakenUp"] = "MessageTakenUp"
    version: Literal[1] = 1

    complaint_id: UUID | None = Field(  # type: ignore[assignment]  # as the rejected message
        default=None, description="The complaint, when the message named one."
    )
    taken_up_by: str = Field(description="Service that handled the message this time.")
    stream: str = Field(description="Stream the message was read from.")
    stream_sequence: int = Field(description="Its sequence in that stream.")
    requested_by: str = Field(description="Staff id of the administrator who asked for it.")

    @property
    def subject(self) -> str:
        return f"events.{self.taken_up_by}.{self.type_name()}"


class EventSetAside(WireEvent):
    """In place of an event the bus refused for good (e.g. larger than the server takes): the chain
    goes on and says why that link holds no event. The event itself stays in the service's store until
    an administrator takes it up (it is then published at the head of the chain); no content of it is
    here, since it may hold patient data."""

    service: ClassVar[str] = "any"
    type: Literal["EventSetAside"] = "EventSetAside"
    version: Literal[1] = 1

    complaint_id: UUID | None = Field(  # type: ignore[assignment]  # taken from the event's headers
        default=None, description="The complaint of the event set aside, when it had one."
    )
    set_aside_by: str = Field(description="Service whose relay set the event aside.")
    notification_id: int = Field(description="The event's place in that service's store (outbox).")
    event_type: str = Field(description="The type of the event set aside.")
    size: int = Field(description="Bytes of its payload as it would have been published.")
    reason: str = Field(description="Why the bus refused it.")

    @property
    def subject(self) -> str:
        return f"events.{self.set_aside_by}.{self.type_name()}"


class CheckpointSigned(WireEvent):
    """A service signed the head of its chain on the record (see shared/chain.py)."""

    service: ClassVar[str] = "any"
    type: Literal["CheckpointSigned"] = "CheckpointSigned"
    version: Literal[1] = 1

    complaint_id: UUID | None = Field(  # type: ignore[assignment]  # a checkpoint covers every complaint
        default=None, description="None: a checkpoint belongs to no complaint."
    )
    signed_by: str = Field(description="Service whose chain is signed.")
    head_index: int = Field(ge=1, description="Index of the last link signed, in that chain.")
    head_hash: str = Field(description="Hash of that link (hex SHA-256).")
    public_key: str = Field(description="The service's nkey public key the signature verifies with.")
    signature: str = Field(description="Ed25519 signature (base64) of the checkpoint statement.")

    @property
    def subject(self) -> str:
        return f"events.{self.signed_by}.{self.type_name()}"


AnyEvent = Annotated[
    ComplaintReceived
    | ComplaintErased
    | ReporterIdentityOpened
    | ComplaintMessageAppended
    | PossibleDuplicateFlagged
    | ChannelMessageRejected
    | EscalationStarted
    | DutyAssigned
    | AlertRequested
    | DutyReassigned
    | AlertAcknowledged
    | DutyFulfilled
    | DutyMissed
    | DeadlinePassed
    | ReportFiled
    | FirstResponseRecorded
    | HarassmentAssessed
    | CorrectiveMeasureRecorded
    | CaseClosed
    | CaseReopened
    | CaseCoded
    | LearningNoticeIssued
    | LearningNoticeRead
    | LearningNoticeAnswered
    | LearningNoticeOverdue
    | SafetyEventLinked
    | NotificationSent
    | NotificationAttempted
    | NotificationFailed
    | NotificationNotDelivered
    | NotificationAcknowledged
    | ComplainantAcknowledged
    | ComplainantNotAcknowledged
    | CallbackScheduled
    | CallbackDue
    | CallbackAttempted
    | CallbackCompleted
    | CallbackAbandoned
    | CallbackOverdue
    | CaseReopenRequested
    | MessageRejected
    | MessageTakenUp
    | EventSetAside
    | CheckpointSigned,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
# Every kind of event on the record, in the order above.
WIRE_EVENTS: tuple[type[WireEvent], ...] = get_args(get_args(AnyEvent)[0])


def decode_event(data: bytes) -> AnyEvent:
    """Decode a record-stream message body; raises ``pydantic.ValidationError`` when it is not one."""
    return EVENT_ADAPTER.validate_json(data)


def encode_event(event: WireEvent) -> bytes:
    return event.model_dump_json().encode()


# The header naming the complaint an event on the bus is about (none when it is about none).
COMPLAINT_ID_HEADER = "Kizuki-Complaint-Id"


def headers_for(event: WireEvent, msg_id: str) -> dict[str, str]:
    headers = {
        "Nats-Msg-Id": msg_id,
        "Kizuki-Event-Type": event.type_name(),
        "Kizuki-Event-Version": str(event.version),  # type: ignore[attr-defined]  # every wire event's
    }
    complaint_id = event.complaint_id
    if complaint_id is not None:
        headers[COMPLAINT_ID_HEADER] = str(complaint_id)
    return headers


def decoder(*accepted: type[WireEvent]) -> Callable[[bytes], AnyEvent]:
    """A decoder for a consumer that takes only some event types; anything else is a ValueError."""
    names = ", ".join(kind.type_name() for kind in accepted)

    def decode(data: bytes) -> AnyEvent:
        decoded = decode_event(data)
        if not isinstance(decoded, accepted):
            raise ValueError(f"expected {names}, got {decoded.type_name()}")
        return decoded

    return decode
