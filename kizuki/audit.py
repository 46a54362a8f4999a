"""`kizuki audit`: read the record from its first message, in order, a batch at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from shared.bus import RECORD_STREAM

READ_AHEAD = 65536
PROGRESS_EVERY = 10_000


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


@dataclass(frozen=True)
class RecordMessage:
    """One message of the record exactly as stored: what the chain's hashes are computed over.

    In a proof, another complaint's event is shown by its content hash alone, without its payload.
    ``stored_at`` is when the server stored it (unknown in bundles written before it was kept).
    """

    stream_sequence: int
    subject: str
    headers: dict[str, str]
    data: bytes | None
    content_hash: str | None = None
    stored_at: datetime | None = None


async def read_messages(js: JetStreamContext) -> AsyncIterator[RecordMessage]:
    """Every message of the record, in order, from sequence 1 to the last one there is now.

    Messages arrive through a callback in batches (several times faster than one ``next_msg`` at a
    time); a batch holds at most what the subscription holds pending, so memory stays bounded.
    """
    info = await js.stream_info(RECORD_STREAM)
    last = info.state.last_seq
    if info.state.messages == 0:
        return
    arrived: list[RecordMessage] = []
    more = asyncio.Event()

    async def collect(message: Msg) -> None:
        metadata = message.metadata
        arrived.append(
            RecordMessage(
                metadata.sequence.stream,
                message.subject,
                dict(message.headers or {}),
                message.data,
                stored_at=metadata.timestamp,
            )
        )
        more.set()

    subscription = await js.subscribe(
        "events.>",
        stream=RECORD_STREAM,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        pending_msgs_limit=READ_AHEAD,
        cb=collect,
    )
    try:
        while True:
            await asyncio.wait_for(more.wait(), timeout=10)
            more.clear()
            batch = arrived.copy()
            arrived.clear()
            for message in batch:
                yield message
                if message.stream_sequence >= last:
                    return
    finally:
        await subscription.unsubscribe()


def entry_of(message: RecordMessage) -> RecordEntry:
    try:
        body = json.loads(message.data or b"")
    except ValueError:
        body = {"undecodable": (message.data or b"").decode("utf-8", "replace")}
    return RecordEntry(
        message.stream_sequence, message.subject, body if isinstance(body, dict) else {"value": body}
    )


async def read_record(js: JetStreamContext) -> AsyncIterator[RecordEntry]:
    """Every message of the record, in order, decoded as JSON."""
    async for message in read_messages(js):
        yield entry_of(message)


async def with_progress(
    messages: AsyncIterable[RecordMessage],
    out: TextIO,
    every: int = PROGRESS_EVERY,
    last: int | None = None,
) -> AsyncIterator[RecordMessage]:
    """The same messages, counted on the terminal as they pass, with the share of the record read when
    its ``last`` sequence is known; silent when ``out`` is not a terminal."""
    shown = out.isatty()
    count = 0
    async for message in messages:
        yield message
        count += 1
        if shown and count % every == 0:
            where = f"seq {message.stream_sequence:,}"
            if last:
                where += f" of {last:,}, {message.stream_sequence / last:.0%}"
            print(f"\r{count:>12,} messages read ({where})", end="", file=out, flush=True)
    if shown and count >= every:
        print(file=out)
