"""The audit benchmark's readings: a chained record published to a real server, read back whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.audit import SOURCES, publish_record, reading, synthetic_record
from shared.bus import connect
from shared.chain import SigningKey, TrustFile, new_seed

pytestmark = pytest.mark.integration


async def test_every_reading_takes_the_whole_record_from_the_stream_and_from_its_bundle(
    nats_url: str, tmp_path: Path
) -> None:
    key = SigningKey(new_seed())
    trust = TrustFile({"intake": [key.public_key], "escalation": [key.public_key]})
    record = list(synthetic_record(3000, key, every=100))
    complaints = sum(message.subject.endswith(".ComplaintReceived") for message in record)
    nc = await connect(nats_url, "bench-test")
    try:
        published = await publish_record(nc, record)
    finally:
        await nc.close()
    bundle = tmp_path / "record.jsonl"

    bare = await reading("bare", "stream", nats_url, bundle, trust)
    exported = await reading("export", "stream", nats_url, bundle, trust)
    assert bare["events"] == exported["events"] == published == len(record)

    for source in SOURCES:
        verified = await reading("verify", source, nats_url, bundle, trust)
        assert (verified["events"], verified["holds"]) == (published, True), source
        reported = await reading("report", source, nats_url, bundle, trust)
        assert reported["complaints"] == complaints > 200, source

    stranger = TrustFile({"intake": [SigningKey(new_seed()).public_key]})
    assert not (await reading("verify", "stream", nats_url, bundle, stranger))["holds"]
