"""A proof of one complaint: its events and their chains up to the next signed checkpoints."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bench.audit import synthetic_record
from kizuki import bundle as bundles
from kizuki.audit import RecordMessage
from kizuki.bundle import message_of
from kizuki.verify import Verifier
from shared.chain import SigningKey, TrustFile, new_seed

pytestmark = pytest.mark.unit

KEY = SigningKey(new_seed())
TRUST = TrustFile({"intake": [KEY.public_key], "escalation": [KEY.public_key]})


async def proof_of(record: list[RecordMessage], complaint_id: str) -> list[RecordMessage]:
    async def messages() -> AsyncIterator[RecordMessage]:
        for message in record:
            yield message

    out = io.StringIO()
    assert await bundles.prove(messages(), complaint_id, TRUST, out) == 12
    return [message_of(json.loads(line)) for line in out.getvalue().splitlines()[1:]]


def verified(messages: list[RecordMessage], complaint: str) -> Verifier:
    verifier = Verifier(TRUST, proof_of=complaint)
    for message in messages:
        verifier.check(message)
    verifier.finish()
    return verifier


@pytest.fixture
def record() -> list[RecordMessage]:
    """Complaints of 12 events (1 by intake, 11 by escalation), a checkpoint every 5 links."""
    return list(synthetic_record(120, KEY, every=5))


async def test_a_proof_verifies_with_other_complaints_shown_by_hash_only(record: list[RecordMessage]) -> None:
    complaint = record[40].headers["Kizuki-Complaint-Id"]
    proof = await proof_of(record, complaint)
    verifier = verified(proof, complaint)
    assert verifier.holds, verifier.problems
    assert verifier.counts == {}
    assert len(proof) < len(record) / 2
    others = [m for m in proof if m.data is None]
    assert others  # escalation's chain runs through other complaints' events to the next checkpoint
    assert all(
        set(m.headers) == {"Kizuki-Chain-Index", "Kizuki-Chain-Previous", "Kizuki-Chain-Hash"} for m in others
    )
    assert all(
        complaint.encode() in m.data for m in proof if m.data is not None and b"Checkpoint" not in m.data
    )


async def test_a_tampered_proof_fails(record: list[RecordMessage]) -> None:
    complaint = record[40].headers["Kizuki-Complaint-Id"]
    proof = await proof_of(record, complaint)
    own = next(i for i, m in enumerate(proof) if m.data is not None and b"DutyFulfilled" in m.data)
    proof[own] = replace(proof[own], data=(proof[own].data or b"").replace(b"sv-003", b"sv-999"))
    assert [problem.kind for problem in verified(proof, complaint).problems] == ["changed"]

    proof = await proof_of(record, complaint)
    hidden = next(i for i, m in enumerate(proof) if m.data is None)
    del proof[hidden]
    assert [problem.kind for problem in verified(proof, complaint).problems] == ["missing"]


async def test_a_proof_is_held_to_what_prove_writes(record: list[RecordMessage]) -> None:
    complaint = record[40].headers["Kizuki-Complaint-Id"]
    proof = await proof_of(record, complaint)
    assert all(a.stream_sequence < b.stream_sequence for a, b in itertools.pairwise(proof))
    assert any(b.stream_sequence - a.stream_sequence > 1 for a, b in itertools.pairwise(proof))

    swapped = proof.copy()
    swapped[0], swapped[1] = swapped[1], swapped[0]  # intake's event and escalation's first
    assert [(p.kind, p.stream_sequence) for p in verified(swapped, complaint).problems] == [
        ("out of order", proof[0].stream_sequence)
    ]

    # One of the complaint's events shown as another's: the segment it opens is not the complaint's.
    hidden = proof.copy()
    hidden[1] = bundles.redacted(hidden[1])
    problems = verified(hidden, complaint).problems
    assert [p.kind for p in problems] == ["stray"]
    assert str(problems[0]).endswith(f"is neither an event of complaint {complaint} nor in a chain after one")

    # Sequence numbers closed up: the links left out before each chain's segment no longer fit.
    closed_up = [replace(message, stream_sequence=n) for n, message in enumerate(proof, start=1)]
    assert {p.kind for p in verified(closed_up, complaint).problems} == {"missing"}
