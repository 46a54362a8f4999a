"""Reading the record as an auditor does: verify and report over a large synthetic bundle.

The bundle is written as a stream (a complaint's worth of events at a time), so the process's peak
memory afterwards is that of verifying and reporting.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from kizuki import bundle as bundles
from kizuki.audit import RecordMessage
from kizuki.bundle import Bundle
from kizuki.report import Rebuild, summary
from kizuki.verify import Verifier
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


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def audit_reading(events: int) -> dict[str, Any]:
    key = SigningKey(new_seed())
    trust = TrustFile({service: [key.public_key] for service in ("intake", "escalation")})
    with tempfile.TemporaryDirectory(prefix="kizuki-bench-audit-") as directory:
        path = Path(directory) / "record.jsonl"
        started = time.perf_counter()
        with path.open("w", encoding="utf-8") as out:
            bundles.write_header(out, "record", trust)
            for written in synthetic_record(events, key):
                bundles.write_message(out, written)
        built = time.perf_counter() - started
        bundle = Bundle.open(path)

        started = time.perf_counter()
        verifier = Verifier(trust)
        for read in bundle.messages():
            verifier.check(read)
        verifier.finish()
        verified = time.perf_counter() - started

        started = time.perf_counter()
        rebuild = Rebuild()
        for read in bundle.messages():
            rebuild.add(read)
        figures = summary(rebuild.timelines())
        reported = time.perf_counter() - started
        size_mib = path.stat().st_size / 2**20
    return {
        "events": verifier.messages,
        "complaints": figures["complaints"],
        "holds": verifier.holds,
        "chain_and_sign_per_second": verifier.messages / built,
        "verify_per_second": verifier.messages / verified,
        "report_per_second": verifier.messages / reported,
        "peak_memory_mib": peak_mib(),
        "bundle_mib": size_mib,
    }
