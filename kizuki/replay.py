"""`kizuki audit replay`: the record as it happened, one line an event: when (in the hospital's time
zone), who acted (a member of staff by id, or a service; never the patient), and what happened.

Each line is printed as its message is read, so memory stays the same however long the record is.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from kizuki.audit import RecordEntry, RecordMessage, entry_of

DUTIES = {
    "supervisor_acknowledgement": "the supervisor's acknowledgement",
    "supervisor_report": "the supervisor's report to an executive",
    "first_hearer_report": "the first hearer's report to an executive",
    "first_response": "the apology call",
    "patient_feedback": "the feedback to the patient",
    "major_case": "the major case",
    "learning_notice": "a learning notice",
}
CALLBACKS = {
    "after_first_response": "after the apology call",
    "after_closure": "after closure",
    "after_discharge": "after discharge",
}


class Replay:
    """Turns record entries into lines people read, with times in ``zone``."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def time(self, value: Any) -> str:
        try:
            return datetime.fromisoformat(str(value)).astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        except ValueError:
            return "?"

    def line(self, entry: RecordEntry) -> str:
        who, what = self.describe(entry)
        where = f"complaint {entry.complaint_id}, " if entry.complaint_id else ""
        when = self.time(entry.body.get("occurred_at"))
        return f"{when}  {who:<12} {what}  ({where}seq {entry.stream_sequence})"

    def json_line(self, entry: RecordEntry) -> str:
        who, what = self.describe(entry)
        line = {
            "stream_sequence": entry.stream_sequence,
            "subject": entry.subject,
            "service": entry.service,
            "event_type": entry.event_type,
            "complaint_id": entry.complaint_id,
            "event": entry.body,
            "when": self.time(entry.body.get("occurred_at")),
            "who": who,
            "what": what,
        }
        return json.dumps(line, ensure_ascii=False, sort_keys=True)

    def describe(self, entry: RecordEntry) -> tuple[str, str]:
        """Who acted and what happened, in a short sentence. Free text that could carry what a patient
        said (summaries, notes, a provider's failure text) is never shown."""
        b, service = entry.body, entry.service
        duty = DUTIES.get(str(b.get("duty")), str(b.get("duty")))
        to = "the complainant" if b.get("recipient") == "complainant" else b.get("recipient")
        match entry.event_type:
            case "ComplaintReceived":
                return b.get(
                    "heard_by", service
                ), f"registered a complaint ({b.get('channel')}, {b.get('department')})"
            case "ComplaintMessageAppended":
                return "complainant", f"sent a further message by {b.get('channel')}"
            case "ComplaintErased":
                return b.get("by", service), "erased the complaint's patient data"
            case "ReporterIdentityOpened":
                return b.get("by", service), "opened the anonymous reporter's identity"
            case "PossibleDuplicateFlagged":
                return service, f"flagged as possibly the same as complaint {b.get('duplicate_of')}"
            case "ChannelMessageRejected":
                return service, f"did not register a {b.get('channel')} message: {b.get('reason')}"
            case "EscalationStarted":
                return (
                    service,
                    f"opened the case: {b.get('tier')} ({b.get('tier_reason')}), "
                    f"policy {b.get('policy_version')}",
                )
            case "DutyAssigned":
                late = ", already late" if b.get("late_on_arrival") else ""
                alert = b.get("alert")
                alerted = (
                    f"; alert {alert.get('alert_number')} requested for {alert.get('recipient')}"
                    if isinstance(alert, dict)
                    else ""
                )
                return (
                    service,
                    f"{duty}: owed by {b.get('owner')}, due {self.time(b.get('due_at'))}{late}{alerted}",
                )
            case "AlertRequested":
                return (
                    service,
                    f"alert {b.get('alert_number')} about {duty} requested for {b.get('recipient')}",
                )
            case "DutyReassigned":
                return service, f"{duty} passed to {b.get('owner')}: {b.get('reason')}"
            case "AlertAcknowledged":
                return b.get("by", service), f"acknowledged the alert about {duty}"
            case "DutyFulfilled":
                return b.get("by", service), f"did {duty} ({b.get('how')})"
            case "DutyMissed":
                return service, f"{duty} missed by {b.get('person')} (due {self.time(b.get('due_at'))})"
            case "DeadlinePassed":
                return service, f"{duty} past its deadline ({self.time(b.get('due_at'))}), not done"
            case "ReportFiled":
                return b.get("by", service), f"reported to executive {b.get('to')}"
            case "FirstResponseRecorded":
                reached = "reached" if b.get("patient_reached") else "not reached"
                window = "within the window" if b.get("within_window") else "after the window"
                return b.get("by", service), f"called the patient: {reached}, {window}"
            case "HarassmentAssessed":
                verdict = (
                    f"harassment, handed to {b.get('second_line')}"
                    if b.get("is_harassment")
                    else "not harassment"
                )
                return b.get("by", service), f"assessed the complaint: {verdict}"
            case "CorrectiveMeasureRecorded":
                return b.get(
                    "by", service
                ), f"recorded the corrective measure; {b.get('responsible')} responsible"
            case "CaseClosed":
                return b.get("by", service), "closed the case"
            case "CaseReopened":
                return service, f"reopened the case: {b.get('reason')}"
            case "CaseCoded":
                coded = ", ".join(
                    f"{name} {level}" for name, level in sorted(b.get("severities", {}).items()) if level
                )
                blind = "a blind second coding" if b.get("blind") else "a coding"
                return b.get("coded_by", service), (
                    f"recorded {blind} (HCAT: {coded or 'no category'}; "
                    f"harm {b.get('harm')}, {b.get('stage')})"
                )
            case "LearningNoticeIssued":
                departments = ", ".join(b.get("departments", []))
                return b.get("issued_by", service), (
                    f"issued learning notice {b.get('notice_id')} to {departments}, answers due "
                    f"{self.time(b.get('due_at'))}"
                )
            case "LearningNoticeRead":
                return b.get(
                    "read_by", service
                ), f"read learning notice {b.get('notice_id')} for {b.get('department')}"
            case "LearningNoticeAnswered":
                answer = "action complete" if b.get("answer") == "action_complete" else "not applicable"
                return b.get("answered_by", service), (
                    f"answered learning notice {b.get('notice_id')} for {b.get('department')}: {answer}"
                )
            case "LearningNoticeOverdue":
                return service, (
                    f"learning notice {b.get('notice_id')}: {b.get('department')} had not answered by "
                    f"{self.time(b.get('due_at'))}"
                )
            case "SafetyEventLinked":
                return b.get(
                    "linked_by", service
                ), f"linked to adverse-event report {b.get('adverse_event_id')}"
            case "NotificationAttempted":
                what = "receipt" if b.get("recipient") == "complainant" else "alert"
                return service, f"{what} to {to} by {b.get('channel')}: attempt {b.get('attempt')}"
            case "NotificationSent":
                return service, f"alert to {to} about {duty} by {b.get('channel')}: sent"
            case "NotificationFailed":
                then = (
                    f"trying {b.get('next_channel')} next"
                    if b.get("next_channel")
                    else f"again at {self.time(b.get('retry_at'))}"
                    if b.get("retry_at")
                    else "given up on this channel"
                )
                return service, f"alert to {to} by {b.get('channel')}: failed, {then}"
            case "NotificationNotDelivered":
                return service, f"alert {b.get('alert_number')} about {duty} to {to}: reached no one"
            case "NotificationAcknowledged":
                return b.get("by", service), f"acknowledged the alert about {duty} by its link"
            case "ComplainantAcknowledged":
                return (
                    service,
                    f"receipt to the complainant by {b.get('channel')} ({b.get('language')}): sent",
                )
            case "ComplainantNotAcknowledged":
                return service, "no receipt could be sent to the complainant"
            case "CallbackScheduled":
                purpose = CALLBACKS.get(str(b.get("purpose")), b.get("purpose"))
                return service, (
                    f"callback {purpose}, attempt {b.get('attempt')}: {b.get('assignee')} to call "
                    f"from {self.time(b.get('due_at'))}"
                )
            case "CallbackDue":
                return service, f"callback attempt {b.get('attempt')} due"
            case "CallbackAttempted":
                return b.get(
                    "by", service
                ), f"called the patient back: not reached (attempt {b.get('attempt')})"
            case "CallbackCompleted":
                resolved = "resolved" if b.get("resolved") else "not resolved"
                return b.get(
                    "by", service
                ), f"called the patient back: satisfaction {b.get('satisfaction')}/5, {resolved}"
            case "CallbackAbandoned":
                return service, f"callback abandoned after {b.get('attempts')} attempts"
            case "CallbackOverdue":
                return service, f"callback not done by {self.time(b.get('complete_by'))}"
            case "CaseReopenRequested":
                return service, f"asked to reopen the case: {b.get('reason')}"
            case "MessageRejected":
                return b.get("rejected_by", service), (
                    f"set aside {b.get('message_subject')} (seq {b.get('stream_sequence')}): "
                    f"{b.get('reason')}"
                )
            case "CheckpointSigned":
                return b.get("signed_by", service), f"signed its chain up to link {b.get('head_index')}"
            case other:
                return service, other


async def replay(
    messages: AsyncIterable[RecordMessage],
    out: TextIO,
    zone: ZoneInfo,
    complaint: str | None = None,
    as_json: bool = False,
) -> None:
    """Prints each message of the record (or of one complaint) as it is read."""
    lines = Replay(zone)
    async for message in messages:
        if complaint is not None and message.headers.get("Kizuki-Complaint-Id") != complaint:
            continue
        entry = entry_of(message)
        print(lines.json_line(entry) if as_json else lines.line(entry), file=out)
