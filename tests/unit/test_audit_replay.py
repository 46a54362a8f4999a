import io
import json
from collections.abc import AsyncIterator

import pytest

from kizuki.audit import (
    RecordEntry,
    RecordMessage,
    print_json_lines,
    print_timelines,
    timelines,
    with_progress,
)

pytestmark = pytest.mark.unit

A = "5b1c7f9e-0000-4000-8000-000000000001"
B = "5b1c7f9e-0000-4000-8000-000000000002"

RECORD = [
    RecordEntry(
        1, "events.intake.ComplaintReceived", {"complaint_id": A, "occurred_at": "2026-11-23T00:30:00Z"}
    ),
    RecordEntry(
        2, "events.intake.ComplaintReceived", {"complaint_id": B, "occurred_at": "2026-11-23T00:40:00Z"}
    ),
    RecordEntry(
        3, "events.escalation.EscalationStarted", {"complaint_id": A, "occurred_at": "2026-11-23T00:31:00Z"}
    ),
    RecordEntry(4, "events.notifier.MessageRejected", {"complaint_id": None, "reason": "not JSON"}),
]


def test_timelines_group_by_complaint_in_record_order() -> None:
    grouped = timelines(RECORD)
    assert list(grouped) == [A, B, "none"]
    assert [entry.stream_sequence for entry in grouped[A]] == [1, 3]


def test_the_printed_timeline_names_event_time_and_service() -> None:
    out = io.StringIO()
    print_timelines(RECORD, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"complaint {A}"
    assert "ComplaintReceived" in lines[1]
    assert "occurred 2026-11-23T00:30:00Z" in lines[1]
    assert lines[1].endswith("by intake")
    assert lines[2].strip().startswith("#3")
    assert lines[2].endswith("by escalation")


def test_json_lines_carry_the_whole_event() -> None:
    out = io.StringIO()
    print_json_lines(RECORD, out)
    first = json.loads(out.getvalue().splitlines()[0])
    assert first == {
        "stream_sequence": 1,
        "subject": "events.intake.ComplaintReceived",
        "service": "intake",
        "event_type": "ComplaintReceived",
        "complaint_id": A,
        "event": RECORD[0].body,
    }


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
