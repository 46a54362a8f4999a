"""The names people read for the record's words (duties, statuses, events), as catalogue message ids."""

from __future__ import annotations

DUTIES = {
    "supervisor_acknowledgement": "Supervisor's acknowledgement",
    "supervisor_report": "Supervisor's report to an executive",
    "first_hearer_report": "First hearer's report to an executive",
    "first_response": "Apology call",
    "patient_feedback": "Feedback to the patient",
    "major_case": "Major case",
    "callback": "Callback",
}
STATUSES = {
    "open": "open",
    "overdue": "overdue",
    "done": "done",
    "done late": "done late",
    "missed": "missed",
}
ALERT_OUTCOMES = {
    "requested": "requested",
    "sent": "sent",
    "not delivered": "not delivered",
    "acknowledged": "acknowledged",
}
CALLBACK_OUTCOMES = {
    "scheduled": "scheduled",
    "not reached": "not reached",
    "completed": "completed",
    "abandoned": "abandoned",
    "overdue": "overdue",
}
TIERS = {"minor": "minor", "complex": "complex", "major": "major"}
CHANNELS = {"phone": "Phone", "walk_in": "At the desk"}
EVENTS = {
    "ComplaintReceived": "Complaint registered",
    "ComplaintErased": "Patient data erased",
    "EscalationStarted": "Case opened",
    "DutyAssigned": "Duty assigned",
    "DutyReassigned": "Duty handed over",
    "AlertRequested": "Alert sent",
    "AlertAcknowledged": "Alert acknowledged",
    "DutyFulfilled": "Duty done",
    "DutyMissed": "Reporting duty missed",
    "DeadlinePassed": "Deadline passed",
    "ReportFiled": "Report filed",
    "FirstResponseRecorded": "Apology call recorded",
    "HarassmentAssessed": "Harassment assessed",
    "CorrectiveMeasureRecorded": "Corrective measure recorded",
    "CaseClosed": "Case closed",
    "CaseReopened": "Case reopened",
    "NotificationSent": "Alert delivered",
    "NotificationFailed": "Delivery failed",
    "NotificationNotDelivered": "Alert reached no one",
    "NotificationAcknowledged": "Alert link confirmed",
    "CallbackScheduled": "Callback scheduled",
    "CallbackAttempted": "Callback: not reached",
    "CallbackCompleted": "Callback completed",
    "CallbackAbandoned": "Callback abandoned",
    "CallbackOverdue": "Callback overdue",
}
ALL = {**DUTIES, **STATUSES, **ALERT_OUTCOMES, **CALLBACK_OUTCOMES, **TIERS, **CHANNELS, **EVENTS}
