"""`kizuki case REF`: one case as people read it, rebuilt from the record (no patient data is on it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO
from uuid import UUID
from zoneinfo import ZoneInfo

from kizuki.audit import RecordEntry
from shared.reference import named, reference_of


def complaint_named(text: str, entries: Iterable[RecordEntry]) -> UUID:
    """The complaint that ``text`` (its id or its reference) names on the record."""
    received = {
        UUID(entry.complaint_id)
        for entry in entries
        if entry.event_type == "ComplaintReceived" and entry.complaint_id
    }

    def on_the_record(reference: str) -> list[UUID]:
        return [complaint_id for complaint_id in received if reference_of(complaint_id) == reference]

    return named(text, on_the_record, " on the record")


@dataclass
class Duty:
    owner: str
    due_at: datetime
    status: str = "open"
    notes: list[str] = field(default_factory=list)


@dataclass
class Callback:
    purpose: str
    assignee: str = ""
    due_at: datetime | None = None
    status: str = "scheduled"


@dataclass
class Case:
    complaint_id: UUID
    facts: dict[str, Any] = field(default_factory=dict)
    duties: dict[str, Duty] = field(default_factory=dict)
    alerts: dict[tuple[str, str, int], str] = field(default_factory=dict)
    callbacks: dict[str, Callback] = field(default_factory=dict)
    happenings: list[str] = field(default_factory=list)


def rebuild(complaint_id: UUID, entries: Iterable[RecordEntry], zone: ZoneInfo) -> Case:
    """The case's facts, duties, alerts and callbacks, from its events in record order."""
    case = Case(complaint_id)

    def at(value: str) -> str:
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    for entry in entries:
        if entry.complaint_id != str(complaint_id):
            continue
        event, kind = entry.body, entry.event_type
        when = at(event["occurred_at"])
        duty = case.duties.get(event.get("duty", ""))
        if kind == "ComplaintReceived":
            case.facts |= {"occurred": when, "registered": at(event["recorded_at"])}
            case.facts |= {key: event[key] for key in ("channel", "heard_by", "department")}
        elif kind == "EscalationStarted":
            case.facts |= {
                "tier": f"{event['tier']} ({event['tier_reason']})",
                "policy": event["policy_version"],
            }
        elif kind == "DutyAssigned":
            case.duties[event["duty"]] = Duty(event["owner"], datetime.fromisoformat(event["due_at"]))
            if event.get("alert"):  # the alert sent with the assignment
                alert = {**event["alert"], "duty": event["duty"]}
                case.alerts[_alert_key(alert)] = f"{when}  {_alert(alert)}: requested"
        elif kind == "DutyReassigned" and duty is not None:
            duty.owner = event["owner"]
            duty.notes.append(f"to {event['owner']} {when}: {event['reason']}")
        elif kind == "AlertAcknowledged" and duty is not None:
            duty.notes.append(f"acknowledged by {event['by']} {when}")
        elif kind == "DutyFulfilled" and duty is not None:
            timely = "on time" if datetime.fromisoformat(event["occurred_at"]) <= duty.due_at else "late"
            duty.status = f"done {timely}, {when} by {event['by']} ({event['how']})"
        elif kind == "DutyMissed" and duty is not None:
            duty.status = f"missed by {event['person']}"
        elif kind == "DeadlinePassed" and duty is not None:
            duty.notes.append("deadline passed")
        elif kind == "AlertRequested":
            case.alerts[_alert_key(event)] = f"{when}  {_alert(event)}: requested"
        elif kind in ("NotificationSent", "NotificationNotDelivered"):
            outcome = f"sent by {event['channel']}" if kind == "NotificationSent" else "reached no one"
            requested = case.alerts.get(_alert_key(event), f"{when}  {_alert(event)}: requested")
            case.alerts[_alert_key(event)] = requested.replace(": requested", f": {outcome}")
        elif kind == "NotificationAcknowledged":
            case.happenings.append(
                f"{when}  {event['by']} acknowledged the {event['duty']} alert by its link"
            )
        elif kind == "CallbackScheduled":
            callback = case.callbacks.setdefault(event["callback_id"], Callback(event["purpose"]))
            callback.assignee, callback.due_at = event["assignee"], datetime.fromisoformat(event["due_at"])
            callback.status = f"attempt {event['attempt']} scheduled"
        elif kind.startswith("Callback") and event["callback_id"] in case.callbacks:
            followed = case.callbacks[event["callback_id"]]
            followed.status = _callback_status(kind, event, when, followed.status)
        elif kind in HAPPENINGS:
            case.happenings.append(f"{when}  {HAPPENINGS[kind](event)}")
    return case


def _alert_key(event: dict[str, Any]) -> tuple[str, str, int]:
    return event["duty"], event["recipient"], event["alert_number"]


def _alert(event: dict[str, Any]) -> str:
    return f"{event['duty']} alert {event['alert_number']} to {event['recipient']}"


def _callback_status(kind: str, event: dict[str, Any], when: str, before: str) -> str:
    if kind == "CallbackDue":
        return f"attempt {event['attempt']} due"
    if kind == "CallbackAttempted":
        return f"attempt {event['attempt']} not reached ({event['by']}, {when})"
    if kind == "CallbackCompleted":
        resolved = "resolved" if event["resolved"] else "not resolved"
        return f"completed {when} by {event['by']}: satisfaction {event['satisfaction']}/5, {resolved}"
    if kind == "CallbackAbandoned":
        return f"abandoned after {event['attempts']} attempts"
    if kind == "CallbackOverdue":
        return f"{before}; overdue since {when}"
    return before


HAPPENINGS: dict[str, Any] = {
    "ReportFiled": lambda e: f"{e['by']} reported to {e['to']} ({e['track']})",
    "FirstResponseRecorded": lambda e: (
        f"apology call by {e['by']}: patient "
        + ("reached" if e["patient_reached"] else "not reached")
        + ("" if e["within_window"] else ", after the window")
    ),
    "HarassmentAssessed": lambda e: (
        f"{e['by']} judged it " + ("harassment" if e["is_harassment"] else "not harassment")
    ),
    "CorrectiveMeasureRecorded": lambda e: f"corrective measure by {e['by']}, {e['responsible']} responsible",
    "CaseClosed": lambda e: f"closed by {e['by']}",
    "CaseReopened": lambda e: f"reopened: {e['reason']}",
    "ComplainantAcknowledged": lambda e: f"receipt ({e['language']}) handed to {e['channel']}",
    "ComplainantNotAcknowledged": lambda e: f"no receipt: {e['reason']}",
    "ComplaintErased": lambda e: f"patient data erased by {e['by']}",
}


def print_case(case: Case, zone: ZoneInfo, now: datetime, out: TextIO) -> None:
    def line(text: str = "") -> None:
        print(text, file=out)

    def at(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    facts = {"tier": "not yet set"} | case.facts
    line(f"Case {reference_of(case.complaint_id)}  (complaint {case.complaint_id}; times in {zone.key})")
    line(f"  occurred {facts.get('occurred')}, registered {facts.get('registered')}")
    line(f"  {facts.get('channel')} to {facts.get('heard_by')}, department {facts.get('department')}")
    line(f"  tier {facts['tier']}, policy {facts.get('policy')}")
    line("Duties")
    for kind, duty in case.duties.items():
        status = duty.status
        if status == "open" and duty.due_at <= now:
            status = "open, overdue"
        line(f"  {kind:<28} {duty.owner:<8} due {at(duty.due_at)}  {status}")
        for note in duty.notes:
            line(f"  {'':<28} {note}")
    line("Alerts")
    for alert in case.alerts.values():
        line(f"  {alert}")
    line("Callbacks" if case.callbacks else "Callbacks: none yet")
    for callback in case.callbacks.values():
        due = at(callback.due_at) if callback.due_at else "?"
        line(f"  {callback.purpose:<22} {callback.assignee:<8} due {due}  {callback.status}")
    if case.happenings:
        line("What people did")
        for happening in case.happenings:
            line(f"  {happening}")
