"""The record proves itself: the relay's chain and checkpoints on a real nats-server, checked by
`kizuki audit verify` on the stream and on exported bundles, clean and tampered with."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from kizuki import bundle as bundles
from kizuki.audit import RecordMessage, read_messages
from kizuki.bundle import Bundle
from kizuki.cli import main
from kizuki.provision import provision_signing_keys
from kizuki.verify import Verifier
from services.intake.main import open_intake_store
from shared.chain import Link, SigningKey, TrustFile, chained, checkpoint_statement, new_seed
from shared.events import CheckpointSigned
from shared.outbox import Checkpoints, OutboxRelay
from shared.privacy import KeyVault, MasterKey
from shared.service import _supervise
from shared.settings import Settings
from shared.timers import now
from tests.factories import another_patients
from tests.polling import eventually

pytestmark = pytest.mark.integration

Line = dict[str, Any]


async def key_vault(js: JetStreamContext, settings: Settings) -> KeyVault:
    """Where intake's relay puts each complaint's key before the complaint."""
    vault = KeyVault(MasterKey.load(settings.master_key))
    await vault.bind(js)
    return vault


async def relay_complaints(js: JetStreamContext, settings: Settings, count: int, every: int = 3) -> None:
    """Registers complaints and relays them, signing every ``every`` links and at the end."""
    store = open_intake_store(settings)
    try:
        for n in range(count):
            store.register(another_patients(n), None, now())
        relay = OutboxRelay(
            store,
            js,
            Checkpoints(SigningKey.load(settings.signing_key_file("intake")), every),
            await key_vault(js, settings),
        )
        relay.position = await relay.last_relayed()
        await relay.relay_pending()
        await relay.sign_head()
    finally:
        store.close()


@pytest.fixture
async def record(nc: Client, settings: Settings, tmp_path: Path) -> list[Line]:
    """An exported bundle of six complaints signed every three links: seq 4 and 8 are checkpoints."""
    provision_signing_keys(settings)
    js = nc.jetstream()
    await relay_complaints(js, settings, 6)
    out = io.StringIO()
    await bundles.export(read_messages(js), TrustFile.load(settings.trust_file), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def verify(lines: Iterable[Line], tmp_path: Path) -> Verifier:
    path = tmp_path / "bundle.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    bundle = Bundle.open(path)
    verifier = Verifier(bundle.trust, segments=bundle.kind == "proof")
    for message in bundle.messages():
        verifier.check(message)
    verifier.finish()
    return verifier


def named(verifier: Verifier) -> list[tuple[str, int | None]]:
    return [(problem.kind, problem.stream_sequence) for problem in verifier.problems]


def changed(line: Line, change: Callable[[bytes], bytes]) -> Line:
    return line | {"data": base64.b64encode(change(base64.b64decode(line["data"]))).decode()}


async def test_a_clean_record_verifies_on_the_stream_and_in_its_bundle(
    nc: Client, record: list[Line], settings: Settings, tmp_path: Path
) -> None:
    kinds = [line["headers"]["Kizuki-Event-Type"] for line in record[1:]]
    assert kinds == [*["ComplaintReceived"] * 3, "CheckpointSigned"] * 2
    verifier = verify(record, tmp_path)
    assert verifier.holds, verifier.problems
    assert (
        verifier.summary()
        == "verified: 8 messages, 1 chains, 2 trusted checkpoints; every link and signature holds"
    )

    on_the_stream = Verifier(TrustFile.load(settings.trust_file))
    async for message in read_messages(nc.jetstream()):
        on_the_stream.check(message)
    on_the_stream.finish()
    assert on_the_stream.holds, on_the_stream.problems


def _changed_department(data: bytes) -> bytes:
    """One byte of a fact on the record (patient data is sealed, so a fact in clear is changed)."""
    assert b"Ward 3" in data
    return data.replace(b"Ward 3", b"Ward 4", 1)


def test_one_changed_byte_is_named_with_its_sequence(record: list[Line], tmp_path: Path) -> None:
    record[2] = changed(record[2], lambda data: _changed_department(data))
    verifier = verify(record, tmp_path)
    assert not verifier.holds
    assert named(verifier) == [("changed", 2)]
    assert str(verifier.problems[0]) == "seq 2: changed: intake link 2 does not match its hash"


def test_a_changed_event_with_its_hash_recomputed_breaks_the_next_link(
    record: list[Line], tmp_path: Path
) -> None:
    line = changed(record[2], lambda data: _changed_department(data))
    previous = Link(1, line["headers"]["Kizuki-Chain-Previous"])
    line["headers"] = chained(line["subject"], line["headers"], base64.b64decode(line["data"]), previous)
    record[2] = line
    assert named(verify(record, tmp_path)) == [("changed", 3)]


def test_a_dropped_event_is_named_as_missing(record: list[Line], tmp_path: Path) -> None:
    del record[5]  # seq 5, link 5
    verifier = verify(record, tmp_path)
    assert named(verifier) == [("missing", 6)]
    assert "intake link 5 missing" in str(verifier.problems[0])


def test_two_swapped_events_are_named_as_out_of_order(record: list[Line], tmp_path: Path) -> None:
    record[5], record[6] = record[6], record[5]
    verifier = verify(record, tmp_path)
    assert named(verifier) == [("out of order", 5)]
    assert "intake link 5 after link 6" in str(verifier.problems[0])


def test_a_checkpoint_re_signed_with_a_key_not_in_the_trust_file_is_named(
    record: list[Line], tmp_path: Path
) -> None:
    last = record[-1]
    checkpoint = CheckpointSigned.model_validate_json(base64.b64decode(last["data"]))
    stranger = SigningKey(new_seed())
    statement = checkpoint_statement("intake", Link(checkpoint.head_index, checkpoint.head_hash))
    forged = checkpoint.model_copy(
        update={"public_key": stranger.public_key, "signature": stranger.sign(statement)}
    )
    payload = forged.model_dump_json().encode()
    previous = Link(checkpoint.head_index, checkpoint.head_hash)
    headers = {name: value for name, value in last["headers"].items() if not name.startswith("Kizuki-Chain")}
    record[-1] = last | {
        "data": base64.b64encode(payload).decode(),
        "headers": chained(last["subject"], headers, payload, previous),
    }
    verifier = verify(record, tmp_path)
    assert named(verifier) == [("unknown key", 8), ("unsigned", 8)]

    # The same forgery naming the service's own key: the signature is not that key's.
    trusted = checkpoint.public_key
    payload = forged.model_copy(update={"public_key": trusted}).model_dump_json().encode()
    record[-1] = last | {
        "data": base64.b64encode(payload).decode(),
        "headers": chained(last["subject"], headers, payload, previous),
    }
    assert named(verify(record, tmp_path)) == [("wrong key", 8), ("unsigned", 8)]


async def test_the_chain_goes_on_across_restarts_and_duplicate_publishes(
    nc: Client, settings: Settings, tmp_path: Path
) -> None:
    provision_signing_keys(settings)
    js = nc.jetstream()
    await relay_complaints(js, settings, 2, every=100)  # ends on a checkpoint
    store = open_intake_store(settings)
    try:
        store.register(another_patients(100), None, now())
        vault = await key_vault(js, settings)
        relay = OutboxRelay(
            store, js, Checkpoints(SigningKey.load(settings.signing_key_file("intake"))), vault
        )
        relay.position = await relay.last_relayed()
        await relay.relay_pending()  # ends on an event: a crash before the next checkpoint
        again = OutboxRelay(
            store, js, Checkpoints(SigningKey.load(settings.signing_key_file("intake"))), vault
        )
        await again.last_relayed()
        again.position = 1  # as if the ack of 2 and 3 was lost: both are published again, and dropped
        store.register(another_patients(101), None, now())
        await again.relay_pending()
        await again.sign_head()
    finally:
        store.close()
    verifier = Verifier(TrustFile.load(settings.trust_file))
    messages = [message async for message in read_messages(js)]
    for message in messages:
        verifier.check(message)
    verifier.finish()
    assert verifier.holds, verifier.problems
    assert [m.headers["Kizuki-Event-Type"] for m in messages] == [
        "ComplaintReceived", "ComplaintReceived", "CheckpointSigned",
        "ComplaintReceived", "ComplaintReceived", "CheckpointSigned",
    ]  # fmt: skip


def test_verify_exits_0_only_when_all_holds_with_a_summary_either_way(
    record: list[Line], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exported.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in record), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_status:
        main(["audit", "verify", "--bundle", str(path)])
    assert exit_status.value.code == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("verified: 8 messages")

    del record[3]
    path.write_text("".join(json.dumps(line) + "\n" for line in record), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_status:
        main(["audit", "verify", "--bundle", str(path)])
    assert exit_status.value.code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "seq 4: missing: intake link 3 missing before this message"
    assert out[-1].startswith("FAILED: 7 messages")


def test_a_file_that_is_no_bundle_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "not-a-bundle.txt"
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_status:
        main(["audit", "verify", "--bundle", str(path)])
    assert exit_status.value.code == 2
    assert "kizuki:" in capsys.readouterr().err


def test_provisioning_makes_owner_only_keys_and_a_trust_file_that_keeps_old_keys(
    settings: Settings, tmp_path: Path
) -> None:
    first = provision_signing_keys(settings)
    seed_file = settings.signing_key_file("escalation")
    assert seed_file.is_relative_to(settings.data_dir)
    assert seed_file.stat().st_mode & 0o777 == 0o600
    assert provision_signing_keys(settings) == first  # run again: the same keys
    assert sorted(first.keys) == ["console", "escalation", "followup", "intake", "notifier"]

    supplied = tmp_path / "supplied.nk"
    supplied.write_bytes(new_seed())
    rotated = replace(settings, supplied_signing_keys={"escalation": supplied})
    trust = provision_signing_keys(rotated)
    assert trust.keys["escalation"] == [*first.keys["escalation"], SigningKey.load(supplied).public_key]
    assert TrustFile.load(settings.trust_file) == trust


async def test_two_relays_of_one_service_keep_one_chain(nc: Client, settings: Settings) -> None:
    provision_signing_keys(settings)
    js = nc.jetstream()
    key = SigningKey.load(settings.signing_key_file("intake"))
    store = open_intake_store(settings)
    vault = await key_vault(js, settings)
    replicas = [
        OutboxRelay(store, js, Checkpoints(key, every=4, seconds=0.2), vault, poll_interval=0.05)
        for _ in "ab"
    ]
    tasks = [asyncio.create_task(_supervise(f"relay {n}", relay.run)) for n, relay in enumerate(replicas)]
    try:
        for n in range(30):
            store.register(another_patients(n), None, now())

        async def all_relayed_and_signed() -> list[RecordMessage]:
            messages = [message async for message in read_messages(js)]
            ids = {
                m.headers["Nats-Msg-Id"]
                for m in messages
                if m.headers["Kizuki-Event-Type"] != "CheckpointSigned"
            }
            done = len(ids) == 30 and messages[-1].headers["Kizuki-Event-Type"] == "CheckpointSigned"
            return messages if done else []

        messages = await eventually(
            all_relayed_and_signed, within=30, what="every complaint relayed and signed"
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        store.close()
    verifier = Verifier(TrustFile.load(settings.trust_file))
    for message in messages:
        verifier.check(message)
    verifier.finish()
    assert verifier.holds, verifier.problems
