"""The report on a scripted history: complaints with known on-time, late and missed duties."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from kizuki.audit import RecordMessage
from kizuki.report import Rebuild, Timeline
from kizuki.report_forms import duration, print_csv, print_json, print_table
from shared.events import (
    CallbackCompleted,
    CallbackDue,
    CallbackScheduled,
    CaseClosed,
    CorrectiveMeasureRecorded,
    DeadlinePassed,
    DutyAssigned,
    DutyFulfilled,
    DutyMissed,
    EscalationStarted,
    FirstResponseRecorded,
    NotificationNotDelivered,
    NotificationSent,
    ReportFiled,
    WireEvent,
    encode_event,
    headers_for,
)
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 2, tzinfo=UTC)
A, B, C, EARLIER, CALLBACK = (UUID(int=n) for n in (1, 2, 3, 4, 5))
DUTIES = ("supervisor_acknowledgement", "supervisor_report", "first_hearer_report", "first_response",
          "patient_feedback")  # fmt: skip


def on(complaint: UUID, kind: type[WireEvent], at: datetime, **fields: Any) -> WireEvent:
    return kind(event_id=uuid4(), complaint_id=complaint, occurred_at=at, recorded_at=at, **fields)


def received(complaint: UUID, occurred: datetime, registered: datetime, **fields: Any) -> list[WireEvent]:
    """A complaint registered, its case opened with every duty, and the supervisor notified."""
    due = {"supervisor_acknowledgement": timedelta(minutes=10), "supervisor_report": timedelta(hours=1),
           "first_hearer_report": timedelta(hours=1), "patient_feedback": timedelta(days=2)}  # fmt: skip
    tier = fields.pop("tier")
    return [
        complaint_received(complaint_id=complaint, occurred_at=occurred, recorded_at=registered, **fields),
        on(complaint, EscalationStarted, registered, policy_version="p", tier=tier, tier_reason="given"),
        *(
            on(
                complaint,
                DutyAssigned,
                registered,
                duty=duty,
                owner="x",
                late_on_arrival=False,
                due_at=occurred + timedelta(hours=2) if duty == "first_response" else registered + due[duty],
            )
            for duty in DUTIES
        ),
        on(
            complaint,
            NotificationSent,
            registered + timedelta(minutes=1),
            delivery_id=uuid4(),
            recipient="sv",
            channel="file",
            duty="supervisor_acknowledgement",
            alert_number=1,
        ),
    ]


def done(complaint: UUID, duty: str, at: datetime) -> WireEvent:
    return on(complaint, DutyFulfilled, at, duty=duty, by="x", how="done")


def reported(complaint: UUID, track: str, at: datetime) -> list[WireEvent]:
    return [on(complaint, ReportFiled, at, track=track, by="x", to="ex-001"), done(complaint, track, at)]


def responded(complaint: UUID, at: datetime, reached: bool, within: bool) -> list[WireEvent]:
    response = on(complaint, FirstResponseRecorded, at, by="x", patient_reached=reached, within_window=within)
    return [response, done(complaint, "first_response", at)] if reached else [response]


def missed(complaint: UUID, duty: str, person: str, at: datetime) -> WireEvent:
    return on(complaint, DutyMissed, at, duty=duty, person=person, due_at=at)


HISTORY: list[WireEvent] = [
    # A: everything on time but the supervisor's report; a callback; closed.
    *received(A, T0, T0 + timedelta(minutes=10), channel="phone", department="Ward 3", tier="complex"),
    done(A, "supervisor_acknowledgement", T0 + timedelta(minutes=15)),
    *reported(A, "first_hearer_report", T0 + timedelta(minutes=30)),
    *responded(A, T0 + timedelta(minutes=60), reached=True, within=True),
    *reported(A, "supervisor_report", T0 + timedelta(minutes=80)),
    done(A, "patient_feedback", T0 + timedelta(days=1)),
    on(
        A,
        CallbackScheduled,
        T0 + timedelta(minutes=10),
        callback_id=CALLBACK,
        purpose="after_first_response",
        assignee="cb-001",
        due_at=T0,
        complete_by=T0 + timedelta(days=2),
        attempt=1,
    ),
    on(A, CallbackDue, T0 + timedelta(days=1), callback_id=CALLBACK, attempt=1),
    on(
        A,
        CallbackCompleted,
        T0 + timedelta(days=1),
        callback_id=CALLBACK,
        by="cb-001",
        attempt=1,
        purpose="after_first_response",
        satisfaction=4,
        resolved=True,
    ),
    on(
        A,
        CorrectiveMeasureRecorded,
        T0 + timedelta(days=2),
        by="x",
        measure="Night round",
        responsible="hd-3",
    ),
    on(A, CaseClosed, T0 + timedelta(days=2), by="x"),
    # B: every reporting duty missed; the patient reached on the second call, after the window.
    *received(
        B,
        T0 + timedelta(hours=1),
        T0 + timedelta(minutes=65),
        channel="web",
        department="Ward 3",
        tier="minor",
    ),
    # The supervisor has no contact the notifier can use: two alerts of the chase reached no one.
    *(
        on(
            B,
            NotificationNotDelivered,
            T0 + timedelta(minutes=65 + 5 * number),
            delivery_id=uuid4(),
            recipient="sv-003",
            duty="supervisor_acknowledgement",
            alert_number=number,
            reason="sv-003 has no contact on a configured channel",
        )
        for number in (1, 2)
    ),
    missed(B, "supervisor_acknowledgement", "sv-003", T0 + timedelta(minutes=75)),
    *responded(B, T0 + timedelta(hours=2), reached=False, within=True),
    missed(B, "first_hearer_report", "n-002", T0 + timedelta(minutes=125)),
    missed(B, "supervisor_report", "sv-003", T0 + timedelta(minutes=125)),
    *responded(B, T0 + timedelta(hours=4), reached=True, within=False),
    # C: every duty on time but the feedback, still open.
    *received(
        C,
        T0 + timedelta(hours=2),
        T0 + timedelta(minutes=121),
        channel="email",
        department="Outpatients",
        tier="major",
    ),
    done(C, "supervisor_acknowledgement", T0 + timedelta(minutes=125)),
    *reported(C, "first_hearer_report", T0 + timedelta(minutes=140)),
    *reported(C, "supervisor_report", T0 + timedelta(minutes=141)),
    *responded(C, T0 + timedelta(minutes=150), reached=True, within=True),
    # A complaint of the day before, outside the period.
    *received(
        EARLIER,
        T0 - timedelta(days=1),
        T0 - timedelta(days=1),
        channel="letter",
        department="Ward 3",
        tier="minor",
    ),
]


def record() -> list[RecordMessage]:
    return [
        RecordMessage(seq, event.subject, headers_for(event, f"x:{seq}"), encode_event(event))
        for seq, event in enumerate(HISTORY, start=1)
    ]


def rebuilt(since: datetime | None = T0, until: datetime | None = T0 + timedelta(days=1)) -> list[Timeline]:
    rebuild = Rebuild()
    for message in record():
        rebuild.add(message)
    return rebuild.timelines(since, until)


def report_json(found: list[Timeline]) -> dict[str, Any]:
    out = io.StringIO()
    print_json(found, {"since": "s", "until": "u"}, out)
    parsed: dict[str, Any] = json.loads(out.getvalue())
    return parsed


def test_each_complaint_timeline_is_rebuilt_from_the_record() -> None:
    rows = report_json(rebuilt())["complaints"]
    assert [row["complaint_id"] for row in rows] == [str(A), str(B), str(C)]
    assert rows[0] == {
        "complaint_id": str(A),
        "occurred_at": "2026-11-02T00:00:00+00:00",
        "registered_at": "2026-11-02T00:10:00+00:00",
        "department": "Ward 3",
        "channel": "phone",
        "tier": "complex",
        "supervisor_reached_at": "2026-11-02T00:11:00+00:00",
        "acknowledged_at": "2026-11-02T00:15:00+00:00",
        "executive_reached_first_hearer_report_at": "2026-11-02T00:30:00+00:00",
        "executive_reached_supervisor_report_at": "2026-11-02T01:20:00+00:00",
        "first_response_at": "2026-11-02T01:00:00+00:00",
        "first_response_recorded_at": "2026-11-02T01:00:00+00:00",
        "first_response_within_window": True,
        "feedback_at": "2026-11-03T00:00:00+00:00",
        "callbacks_scheduled": 1,
        "callbacks_completed": 1,
        "callbacks_overdue": 0,
        "reopened": 0,
        "alerts_not_delivered": 0,
        "corrective_measure": "Night round",
        "responsible": "hd-3",
        "closed_at": "2026-11-04T00:00:00+00:00",
        "supervisor_acknowledgement_status": "on_time",
        "supervisor_report_status": "late",
        "first_hearer_report_status": "on_time",
        "first_response_status": "on_time",
        "patient_feedback_status": "on_time",
    }
    assert rows[1]["acknowledged_at"] is None
    assert rows[1]["alerts_not_delivered"] == 2
    assert rows[1]["first_response_at"] == "2026-11-02T04:00:00+00:00"  # the call that reached the patient
    assert rows[1]["first_response_within_window"] is False
    assert rows[2]["closed_at"] is None
    assert rows[2]["corrective_measure"] is None
    # B: every reporting duty missed, the apology call made late; its feedback is due after the
    # record's last event (A's closure), as is C's.
    assert [rows[1][f"{duty}_status"] for duty in DUTIES] == [
        "missed", "missed", "missed", "late", "not_yet_due"
    ]  # fmt: skip
    assert rows[2]["patient_feedback_status"] == "not_yet_due"


def test_the_period_figures_are_exactly_those_of_the_history() -> None:
    assert report_json(rebuilt())["summary"] == {
        "complaints": 3,
        "as_of": "2026-11-04T00:00:00+00:00",
        "duties_on_time": {
            "first_hearer_report": figures(owed=3, on_time=2, missed=1, share=0.6667),
            "first_response": figures(owed=3, on_time=2, late=1, share=0.6667),
            "patient_feedback": figures(owed=3, on_time=1, not_yet_due=2, share=1.0),
            "supervisor_acknowledgement": figures(owed=3, on_time=2, missed=1, share=0.6667),
            "supervisor_report": figures(owed=3, on_time=1, late=1, missed=1, share=0.3333),
        },
        "missed_reporting_duties_by_role": {"first hearer": 1, "supervisor": 2},
        "alerts_not_delivered_by_recipient": {"sv-003": 2},
        "first_response_seconds": {"count": 3, "median": 3600.0, "p90": 10800.0},
        "first_responses_within_window": 2,
        "by_tier": {"complex": 1, "major": 1, "minor": 1},
        "by_channel": {"email": 1, "phone": 1, "web": 1},
        "by_department": {"Outpatients": 1, "Ward 3": 2},
    }


def figures(**counts: float | None) -> dict[str, float | None]:
    return {"on_time": 0, "late": 0, "missed": 0, "overdue": 0, "not_yet_due": 0} | counts


def test_since_and_until_choose_complaints_by_when_they_occurred() -> None:
    assert [t.complaint_id for t in rebuilt(since=None, until=T0)] == [str(EARLIER)]
    assert [t.complaint_id for t in rebuilt(since=T0 + timedelta(hours=1), until=None)] == [str(B), str(C)]


def test_two_runs_give_byte_identical_output_in_every_form() -> None:
    def outputs() -> tuple[str, str, str]:
        found = rebuilt(since=None, until=None)
        table, as_json, as_csv = io.StringIO(), io.StringIO(), io.StringIO()
        print_table(found, {"since": None, "until": None}, table)
        print_json(found, {"since": None, "until": None}, as_json)
        print_csv(found, as_csv)
        return table.getvalue(), as_json.getvalue(), as_csv.getvalue()

    first = outputs()
    assert outputs() == first
    table, _, as_csv = first
    assert f"  {'supervisor_report':<28}" + "".join(f"{n:>13}" for n in (4, 1, 1, 2, 0, 0)) + "  25%" in table
    assert f"  {'patient_feedback':<28}" + "".join(f"{n:>13}" for n in (4, 1, 0, 0, 1, 2)) + "  50%" in table
    assert "missed reporting duties by role: first hearer 1, supervisor 2" in table
    assert table.splitlines()[3].endswith("Night round (hd-3)")  # A, after the complaint of the day before
    assert "4 on time, 1 late" in table.splitlines()[3]
    assert "first response after occurrence: median 1 h, p90 3 h" in table
    assert "  duties, as of 2026-11-04 00:00:00 UTC (the record's last event):" in table
    assert as_csv.splitlines()[0].startswith("complaint_id,occurred_at,registered_at,")
    assert len(as_csv.splitlines()) == 5


def test_a_case_opened_a_minute_ago_has_nothing_late_and_nothing_on_time_yet() -> None:
    opened = T0 + timedelta(days=10)
    rebuild = Rebuild()
    history = received(
        A, opened - timedelta(minutes=1), opened, channel="phone", department="Ward 3", tier="minor"
    )
    for seq, event in enumerate(history, start=1):
        rebuild.add(RecordMessage(seq, event.subject, headers_for(event, f"x:{seq}"), encode_event(event)))
    found = rebuild.timelines()
    figures_now = report_json(found)["summary"]["duties_on_time"]
    assert figures_now["supervisor_acknowledgement"] == figures(owed=1, not_yet_due=1, share=None)
    table = io.StringIO()
    print_table(found, {"since": None, "until": None}, table)
    assert (
        f"  {'first_response':<28}" + "".join(f"{n:>13}" for n in (1, 0, 0, 0, 0, 1)) + "  - (none due yet)"
        in table.getvalue()
    )
    assert "5 not yet due" in table.getvalue()

    # The apology call's deadline passes undone: overdue, against the case; a reporting duty's: missed.
    later = opened + timedelta(hours=3)
    for seq, event in enumerate(
        [
            on(A, DeadlinePassed, later, duty="first_response", due_at=opened + timedelta(hours=1)),
            missed(A, "first_hearer_report", "n-001", later),
        ],
        start=len(history) + 1,
    ):
        rebuild.add(RecordMessage(seq, event.subject, headers_for(event, f"x:{seq}"), encode_event(event)))
    statuses = rebuild.timelines()[0].statuses()
    assert (statuses["first_response"], statuses["first_hearer_report"]) == ("overdue", "missed")
    assert statuses["supervisor_acknowledgement"] == "missed"  # due 10 min after opening: passed by now
    assert statuses["patient_feedback"] == "not_yet_due"


@pytest.mark.parametrize(
    ("seconds", "read"),
    [
        (None, "-"),
        (40, "40 s"),
        (47 * 60 + 10, "47 min"),
        (3 * 3600 + 10 * 60, "3 h 10 min"),
        (2 * 3600, "2 h"),
        (13838.3 * 60, "9.6 days"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float | None, read: str) -> None:
    assert duration(seconds) == read


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_plain_text() -> None:
    history = [
        *received(A, T0, T0, channel="phone", department="=1+1", tier="minor"),
        on(
            A,
            CorrectiveMeasureRecorded,
            T0,
            by="x",
            measure='=HYPERLINK("http://x.example","ok")',
            responsible="@SUM(A1)",
        ),
    ]
    rebuild = Rebuild()
    for seq, event in enumerate(history, start=1):
        rebuild.add(RecordMessage(seq, event.subject, headers_for(event, f"x:{seq}"), encode_event(event)))
    timeline = rebuild.timelines()[0]
    for text in ("+1", "-1", "\tx", "\rx"):
        timeline.responsible = text
        out = io.StringIO()
        print_csv([timeline], out)
        assert next(csv.DictReader(io.StringIO(out.getvalue(), newline="")))["responsible"] == "'" + text
    timeline.responsible = "@SUM(A1)"
    out = io.StringIO()
    print_csv([timeline], out)
    row = next(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert (row["department"], row["corrective_measure"], row["responsible"]) == (
        "'=1+1",
        '\'=HYPERLINK("http://x.example","ok")',
        "'@SUM(A1)",
    )
    assert row["occurred_at"] == "2026-11-02T00:00:00+00:00"  # ordinary cells untouched
    assert row["supervisor_acknowledgement_status"] == "not_yet_due"


def test_a_back_dated_apology_call_shows_when_it_was_recorded_beside_the_time_it_states() -> None:
    stated, recorded = T0 + timedelta(minutes=30), T0 + timedelta(hours=6)
    call = FirstResponseRecorded(event_id=uuid4(), complaint_id=A, occurred_at=stated, recorded_at=recorded,
                                 by="hd-003", patient_reached=True, within_window=True)  # fmt: skip
    rebuild = Rebuild()
    history = [*received(A, T0, T0, channel="phone", department="Ward 3", tier="minor"), call]
    for seq, event in enumerate(history, start=1):
        rebuild.add(RecordMessage(seq, event.subject, headers_for(event, f"x:{seq}"), encode_event(event)))
    [row] = report_json(rebuild.timelines())["complaints"]
    assert (row["first_response_at"], row["first_response_recorded_at"]) == (
        "2026-11-02T00:30:00+00:00",
        "2026-11-02T06:00:00+00:00",
    )
