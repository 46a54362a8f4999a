"""`kizuki audit replay`: read the record from its first message and show each complaint's timeline."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TextIO

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from shared.bus import RECORD_STREAM


@dataclass(frozen=True)
class RecordEntry:
    """One message of the record, as the auditor sees it."""

    stream_sequence: int
    subject: str
    body: dict[str, Any]

    @property
    def service(self) -> str:
        return self.subject.split(".")[1]

    @property
    def event_type(self) -> str:
        return self.subject.split(".")[2]

    @property
    def complaint_id(self) -> str | None:
        value = self.body.get("complaint_id")
        return str(value) if value is not None else None


async def read_record(js: JetStreamContext) -> AsyncIterator[RecordEntry]:
    """Every message of the record, in order, from sequence 1 to the last one there is now."""
    info = await js.stream_info(RECORD_STREAM)
    last = info.state.last_seq
    if info.state.messages == 0:
        return
    subscription = await js.subscribe(
        "events.>", stream=RECORD_STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    try:
        while True:
            message = await subscription.next_msg(timeout=10)
            sequence = message.metadata.sequence.stream
            try:
                body = json.loads(message.data)
            except ValueError:
                body = {"undecodable": message.data.decode("utf-8", "replace")}
            yield RecordEntry(sequence, message.subject, body if isinstance(body, dict) else {"value": body})
            if sequence >= last:
                return
    finally:
        await subscription.unsubscribe()


def timelines(entries: list[RecordEntry]) -> dict[str, list[RecordEntry]]:
    """Entries grouped by complaint, in record order; entries naming no complaint under 'none'."""
    grouped: dict[str, list[RecordEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.complaint_id or "none", []).append(entry)
    return grouped


def print_timelines(entries: list[RecordEntry], out: TextIO) -> None:
    for complaint_id, timeline in timelines(entries).items():
        print(f"complaint {complaint_id}", file=out)
        for entry in timeline:
            when = entry.body.get("occurred_at", "?")
            recorded = entry.body.get("recorded_at", "?")
            print(
                f"  #{entry.stream_sequence:<6} {entry.event_type:<28} occurred {when}  "
                f"recorded {recorded}  by {entry.service}",
                file=out,
            )


def print_json_lines(entries: list[RecordEntry], out: TextIO) -> None:
    for entry in entries:
        line = {
            "stream_sequence": entry.stream_sequence,
            "subject": entry.subject,
            "service": entry.service,
            "event_type": entry.event_type,
            "complaint_id": entry.complaint_id,
            "event": entry.body,
        }
        print(json.dumps(line, ensure_ascii=False, sort_keys=True), file=out)
