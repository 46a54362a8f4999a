"""Reading the record as an auditor does: `verify` and `report` over a record of a million events,
read from the stream on a real nats-server and from a bundle exported from it.

The synthetic record is chained and signed as the relays do it and published to a fresh server. Each
reading then runs in a process of its own, so that its peak memory is that reading's alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from uuid import uuid4

from nats.aio.client import Client
from nats.aio.msg import Msg

from bench.stats import embedded_nats, resident_mib
from kizuki import bundle as bundles
from kizuki.audit import RecordMessage, read_messages
from kizuki.bundle import Bundle
from kizuki.report import Rebuild, summary
from kizuki.verify import Verifier
from shared.bus import RECORD_STREAM, RECORD_STREAM_CONFIG, connect
from shared.chain import START, Link, SigningKey, TrustFile, chained, checkpoint_statement, new_seed
from shared.events import (
    CheckpointSigned,
    ComplaintReceived,
    DutyAssigned,
    DutyFulfilled,
    EscalationStarted,
    WireEvent,
    encode_event,
    headers_for,
)
from shared.privacy import PatientData, seal_patient_data
from shared.timers import now

DUTIES = ("supervisor_acknowledgement", "supervisor_report", "first_hearer_report", "first_response",
          "patient_feedback")  # fmt: skip
CHECKPOINT_EVERY = 1000
PUBLISH_CHUNK = 5000  # published without waiting, then one acknowledged publish holds the loader back
STORED_WITHIN_SECONDS = 30.0
SOURCES = ("stream", "bundle")
VERIFY_GOAL_PER_SECOND = 100_000  # the goal the issue sets for `verify`


def complaint_events() -> Iterator[WireEvent]:
    """One complaint's events: registered, a case with five duties, each done (12 events)."""
    complaint_id, at = uuid4(), now()
    ids: dict[str, Any] = {"complaint_id": complaint_id, "occurred_at": at, "recorded_at": at}
    sealed = seal_patient_data(
        bytes(32), complaint_id, PatientData(summary="Waited three hours for pain medication.")
    )
    yield ComplaintReceived(event_id=uuid4(), **ids, channel="phone", heard_by="n-001", department="Ward 3",
                            patient_data=sealed, language="ja")  # fmt: skip
    yield EscalationStarted(event_id=uuid4(), **ids, policy_version="bench", tier="complex", tier_reason="x")
    for duty in DUTIES:
        yield DutyAssigned(event_id=uuid4(), **ids, duty=duty, owner="sv-003",
                           due_at=at + timedelta(hours=1), late_on_arrival=False)  # fmt: skip
    for duty in DUTIES:
        yield DutyFulfilled(event_id=uuid4(), **ids, duty=duty, by="sv-003", how="done")


def synthetic_record(events: int, key: SigningKey, every: int = CHECKPOINT_EVERY) -> Iterator[RecordMessage]:
    """About ``events`` messages: complaints' events chained per service, a checkpoint every N links."""
    heads: dict[str, Link] = {}
    signed: dict[str, int] = {}
    sequence = 0

    def message(wire: WireEvent, service: str, message_id: str) -> RecordMessage:
        nonlocal sequence
        sequence += 1
        payload = encode_event(wire)
        headers = chained(wire.subject, headers_for(wire, message_id), payload, heads.get(service, START))
        heads[service] = Link.of(headers)
        return RecordMessage(sequence, wire.subject, headers, payload)

    while sequence < events:
        for wire in complaint_events():
            service = wire.subject.split(".")[1]
            yield message(wire, service, f"{service}:{sequence}")
            head = heads[service]
            if head.index - signed.get(service, 0) >= every:
                yield message(checkpoint_of(service, head, key), service, f"{service}:{sequence}:checkpoint")
                signed[service] = heads[service].index
    for service, head in list(heads.items()):
        if head.index != signed.get(service):
            yield message(checkpoint_of(service, head, key), service, f"{service}:{sequence}:checkpoint")


def checkpoint_of(service: str, head: Link, key: SigningKey) -> CheckpointSigned:
    return CheckpointSigned(event_id=uuid4(), occurred_at=now(), recorded_at=now(), signed_by=service,
                            head_index=head.index, head_hash=head.hash, public_key=key.public_key,
                            signature=key.sign(checkpoint_statement(service, head)))  # fmt: skip


async def publish_record(nc: Client, messages: Iterable[RecordMessage]) -> int:
    """The record onto a fresh EVENTS stream, in order; returns how many the stream holds.

    Most messages are published without waiting for the server: a publish with an acknowledgement
    every so often holds the loader back to the server's pace, and at the end the stream must hold
    every message published."""
    js = nc.jetstream()
    await js.add_stream(RECORD_STREAM_CONFIG)
    published = 0
    for message in messages:
        published += 1
        if published % PUBLISH_CHUNK:
            await nc.publish(message.subject, message.data or b"", headers=message.headers)
        else:
            await js.publish(message.subject, message.data or b"", headers=message.headers)
    held, deadline = 0, time.monotonic() + STORED_WITHIN_SECONDS
    while held < published and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        held = (await js.stream_info(RECORD_STREAM)).state.messages
    if held != published:
        raise RuntimeError(f"the stream holds {held} of the {published} messages published")
    return held


async def _from_stream(url: str) -> AsyncIterator[RecordMessage]:
    nc = await connect(url, name="bench-audit")
    try:
        async for message in read_messages(nc.jetstream()):
            yield message
    finally:
        await nc.close()


async def _from_bundle(path: Path) -> AsyncIterator[RecordMessage]:
    for message in Bundle.open(path).messages():
        yield message


async def bare_read(url: str) -> int:
    """The limit of reading here: a plain nats-py ordered consumer, each payload decoded as JSON."""
    nc = await connect(url, name="bench-audit-bare")
    js = nc.jetstream()
    last = (await js.stream_info(RECORD_STREAM)).state.last_seq
    done = asyncio.Event()
    count = 0

    async def arrived(message: Msg) -> None:
        nonlocal count
        json.loads(message.data)
        count += 1
        if count == last:
            done.set()

    subscription = await js.subscribe("events.>", ordered_consumer=True, cb=arrived, pending_msgs_limit=65536)
    try:
        await done.wait()
    finally:
        await subscription.unsubscribe()
        await nc.close()
    return count


async def reading(task: str, source: str, url: str, path: Path, trust: TrustFile) -> dict[str, Any]:
    """One reading, as `kizuki audit verify|report|export` does it: events per second, peak memory."""
    messages = _from_stream(url) if source == "stream" else _from_bundle(path)
    started = time.perf_counter()
    outcome: dict[str, Any] = {}
    if task == "bare":
        count = await bare_read(url)
    elif task == "export":
        with path.open("w", encoding="utf-8") as out:
            count = await bundles.export(messages, trust, out)
            outcome["bundle_mib"] = out.tell() / 2**20
    elif task == "verify":
        verifier = Verifier(trust)
        async for message in messages:
            verifier.check(message)
        verifier.finish()
        count, outcome["holds"] = verifier.messages, verifier.holds
    else:
        rebuild, count = Rebuild(), 0
        async for message in messages:
            rebuild.add(message)
            count += 1
        outcome["complaints"] = summary(rebuild.timelines())["complaints"]
    seconds = time.perf_counter() - started
    peak = resident_mib("self", "VmHWM")
    return {"events": count, "per_second": count / seconds, "peak_memory_mib": peak, **outcome}


def _reading_in_this_process(
    task: str, source: str, url: str, path: Path, trust: dict[str, Any]
) -> dict[str, Any]:
    return asyncio.run(reading(task, source, url, path, TrustFile.from_json(trust)))


def in_own_process(task: str, source: str, url: str, path: Path, trust: TrustFile) -> dict[str, Any]:
    """The reading in a fresh process, so that its peak memory is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_reading_in_this_process, task, source, url, path, trust.to_json()).result()


async def audit_reading(events: int) -> dict[str, Any]:
    key = SigningKey(new_seed())
    trust = TrustFile({service: [key.public_key] for service in ("intake", "escalation")})
    async with embedded_nats() as (url, _, directory):
        nc = await connect(url, name="bench-audit-loader")
        started = time.perf_counter()
        try:
            count = await publish_record(nc, synthetic_record(events, key))
        finally:
            await nc.close()
        results: dict[str, Any] = {
            "events": count,
            "chain_sign_publish_per_second": count / (time.perf_counter() - started),
        }
        path = directory / "record.jsonl"
        results["bare_read"] = await asyncio.to_thread(in_own_process, "bare", "stream", url, path, trust)
        results["export"] = await asyncio.to_thread(in_own_process, "export", "stream", url, path, trust)
        for source in SOURCES:
            for task in ("verify", "report"):
                results[f"{task}_{source}"] = await asyncio.to_thread(
                    in_own_process, task, source, url, path, trust
                )
    return results
