import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from kizuki.audit import RecordMessage, with_progress
from kizuki.replay import replay
from shared.events import (
    AlertAcknowledged,
    AlertWithAssignment,
    CaseCoded,
    DutyAssigned,
    FirstResponseRecorded,
    LearningNoticeAnswered,
    LearningNoticeIssued,
    LearningNoticeOverdue,
    MessageRejected,
    NotificationSent,
    WireEvent,
    encode_event,
    headers_for,
)
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

A, B = UUID(int=1), UUID(int=2)
AT = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo
TOKYO = ZoneInfo("Asia/Tokyo")
SECRET = "Sato Hanako waited three hours"


def on(complaint: UUID | None, kind: type[WireEvent], **fields: object) -> WireEvent:
    return kind(event_id=uuid4(), complaint_id=complaint, occurred_at=AT, recorded_at=AT, **fields)


RECORD: list[WireEvent] = [
    complaint_received(
        SECRET,
        "Sato Hanako",
        "sato@example.org",
        complaint_id=A,
        occurred_at=AT,
        recorded_at=AT,
        channel="walk_in",
        heard_by="n-001",
        department="Ward 3",
    ),
    on(B, DutyAssigned, duty="first_response", owner="hd-003", due_at=AT, late_on_arrival=False),
    on(A, AlertAcknowledged, duty="supervisor_acknowledgement", by="sv-003"),
    on(
        A,
        NotificationSent,
        delivery_id=uuid4(),
        recipient="n-001",
        channel="email",
        duty="first_hearer_report",
        alert_number=1,
    ),
    on(A, FirstResponseRecorded, by="hd-003", patient_reached=True, within_window=True),
    on(
        None,
        MessageRejected,
        rejected_by="notifier",
        stream="EVENTS",
        stream_sequence=3,
        message_subject="events.x.Y",
        reason="not JSON",
    ),
]


def messages(record: list[WireEvent]) -> list[RecordMessage]:
    return [
        RecordMessage(seq, event.subject, headers_for(event, f"x:{seq}"), encode_event(event))
        for seq, event in enumerate(record, start=1)
    ]


async def replayed(complaint: UUID | None = None, as_json: bool = False) -> list[str]:
    async def read() -> AsyncIterator[RecordMessage]:
        for message in messages(RECORD):
            yield message

    out = io.StringIO()
    await replay(read(), out, TOKYO, str(complaint) if complaint else None, as_json)
    return out.getvalue().splitlines()


async def test_each_event_says_when_in_the_hospitals_time_who_acted_and_what_happened() -> None:
    lines = await replayed()
    assert lines == [
        "2026-11-23 09:30:00 JST  n-001        registered a complaint (walk_in, Ward 3)"
        f"  (complaint {A}, seq 1)",
        "2026-11-23 09:30:00 JST  escalation   the apology call: owed by hd-003, due 2026-11-23 09:30:00 JST"
        f"  (complaint {B}, seq 2)",
        "2026-11-23 09:30:00 JST  sv-003       acknowledged the alert about the supervisor's acknowledgement"
        f"  (complaint {A}, seq 3)",
        "2026-11-23 09:30:00 JST  notifier     alert to n-001 about the first hearer's report to an executive"
        f" by email: sent  (complaint {A}, seq 4)",
        "2026-11-23 09:30:00 JST  hd-003       called the patient: reached, within the window"
        f"  (complaint {A}, seq 5)",
        "2026-11-23 09:30:00 JST  notifier     set aside events.x.Y (seq 3): not JSON  (seq 6)",
    ]
    assert not any(secret in line for line in lines for secret in (SECRET, "Sato", "sato@", "patient_data"))


async def test_one_complaint_only_and_json_lines_that_keep_the_whole_event() -> None:
    assert [line.split("(complaint ")[1] for line in await replayed(B)] == [f"{B}, seq 2)"]
    first = json.loads((await replayed(as_json=True))[0])
    assert first == {
        "stream_sequence": 1,
        "subject": "events.intake.ComplaintReceived",
        "service": "intake",
        "event_type": "ComplaintReceived",
        "complaint_id": str(A),
        "event": json.loads(encode_event(RECORD[0])),
        "when": "2026-11-23 09:30:00 JST",
        "who": "n-001",
        "what": "registered a complaint (walk_in, Ward 3)",
    }


async def test_each_line_is_printed_as_its_message_is_read() -> None:
    out = io.StringIO()

    async def read() -> AsyncIterator[RecordMessage]:
        for number, message in enumerate(messages(RECORD)):
            assert len(out.getvalue().splitlines()) == number  # everything before is out already
            yield message

    await replay(read(), out, TOKYO)
    assert len(out.getvalue().splitlines()) == len(RECORD)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def counted(out: io.StringIO, count: int, last: int | None = None) -> list[int]:
    async def messages() -> AsyncIterator[RecordMessage]:
        for sequence in range(1, count + 1):
            yield RecordMessage(sequence, "events.intake.ComplaintReceived", {}, b"{}")

    return [message.stream_sequence async for message in with_progress(messages(), out, every=2, last=last)]


async def test_progress_shows_on_a_terminal_and_stays_quiet_when_piped() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    assert await counted(terminal, 5) == [1, 2, 3, 4, 5]
    assert terminal.getvalue().split("\r")[-1] == "           4 messages read (seq 4)\n"
    assert await counted(pipe, 5) == [1, 2, 3, 4, 5]
    assert pipe.getvalue() == ""


async def test_progress_shows_the_share_of_the_record_read_when_its_length_is_known() -> None:
    terminal = Terminal()
    await counted(terminal, 5, last=5)
    assert terminal.getvalue().split("\r")[-1] == "           4 messages read (seq 4 of 5, 80%)\n"


async def test_learning_from_a_case_reads_as_sentences_that_name_no_person_for_an_overdue_notice() -> None:
    notice = UUID(int=7)
    learning: list[WireEvent] = [
        on(
            A,
            CaseCoded,
            coded_by="qo-001",
            blind=False,
            severities={"safety": 2, "communication": 1, "quality": 0},
            harm=2,
            stage="care_on_the_ward",
        ),
        on(
            A,
            LearningNoticeIssued,
            notice_id=notice,
            issued_by="qo-001",
            departments=["Ward 3", "Ward 5"],
            responsible={"Ward 3": "sv-003", "Ward 5": "sv-005"},
            categories=["safety"],
            due_at=AT,
        ),
        on(
            A,
            LearningNoticeAnswered,
            notice_id=notice,
            department="Ward 3",
            answered_by="sv-003",
            answer="action_complete",
        ),
        on(A, LearningNoticeOverdue, notice_id=notice, department="Ward 5", due_at=AT),
    ]

    async def read() -> AsyncIterator[RecordMessage]:
        for message in messages(learning):
            yield message

    out = io.StringIO()
    await replay(read(), out, TOKYO, None, False)
    lines = out.getvalue().splitlines()
    assert (
        "qo-001       recorded a coding (HCAT: communication 1, safety 2; harm 2, care_on_the_ward)"
        in lines[0]
    )
    assert f"issued learning notice {notice} to Ward 3, Ward 5" in lines[1]
    assert f"sv-003       answered learning notice {notice} for Ward 3: action complete" in lines[2]
    assert (
        f"escalation   learning notice {notice}: Ward 5 had not answered by 2026-11-23 09:30:00 JST"
        in lines[3]
    )
    assert "sv-005" not in lines[3]  # an overdue notice is the department's, never a person's


async def test_a_duty_assigned_with_its_alert_says_both_and_an_older_one_only_the_duty() -> None:
    alert = AlertWithAssignment(
        recipient="sv-003", tier="complex", alert_number=1, attempt=1, next_alert_at=None
    )
    duty = {"owner": "sv-003", "due_at": AT, "late_on_arrival": False}
    assigned: list[WireEvent] = [
        on(A, DutyAssigned, duty="supervisor_acknowledgement", **duty, alert=alert),
        on(A, DutyAssigned, duty="supervisor_report", **duty),  # as written before the alert was carried
    ]

    async def read() -> AsyncIterator[RecordMessage]:
        for message in messages(assigned):
            yield message

    out = io.StringIO()
    await replay(read(), out, TOKYO, None, False)
    with_alert, without = out.getvalue().splitlines()
    assert "owed by sv-003, due 2026-11-23 09:30:00 JST; alert 1 requested for sv-003" in with_alert
    assert "alert" not in without.partition("  (complaint")[0]
