"""The record proves itself: the relay's chain and checkpoints on a real nats-server, checked by
`kizuki audit verify` on the stream and on exported bundles, clean and tampered with."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError

from bench.audit import synthetic_record
from kizuki import bundle as bundles
from kizuki.audit import RecordMessage, read_messages
from kizuki.bundle import Bundle
from kizuki.cli import main
from kizuki.provision import provision_signing_keys
from kizuki.verify import AWAITING_GRACE_SECONDS, Verifier
from services.intake.main import open_intake_store
from shared.bus import RECORD_STREAM_CONFIG, connect
from shared.chain import Link, SigningKey, TrustFile, chained, checkpoint_statement, new_seed
from shared.events import CheckpointSigned
from shared.outbox import ATOMIC_FROM, Checkpoints, OutboxRelay
from shared.privacy import KeyVault, MasterKey
from shared.settings import Settings
from shared.timers import now
from tests.factories import another_patients

pytestmark = pytest.mark.integration

Line = dict[str, Any]

# JetStream's refusal of a publish whose Nats-Expected-Last-Subject-Sequence is no longer the last.
WRONG_LAST_SEQUENCE = 10071


async def key_vault(js: JetStreamContext, settings: Settings) -> KeyVault:
    """Where intake's relay puts each complaint's key before the complaint."""
    vault = KeyVault(MasterKey.load(settings.master_key))
    await vault.bind(js)
    return vault


async def relay_complaints(
    js: JetStreamContext, settings: Settings, count: int, every: int = 3, sign_at_end: bool = True
) -> None:
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
        if sign_at_end:
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
    verifier = Verifier(bundle.trust, proof_of=bundle.complaint_id if bundle.kind == "proof" else None)
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


async def test_a_stretch_of_events_goes_on_the_record_as_one_atomic_batch_or_not_at_all(
    nats_url: str, nc: Client, settings: Settings
) -> None:
    """The relay publishes a long stretch of what is stored as one atomic batch (one round trip); a
    replica whose head is stale has its whole batch refused (none of it is on the record), finds its
    place and goes on."""
    provision_signing_keys(settings)
    key = SigningKey.load(settings.signing_key_file("intake"))
    replica_nc = await connect(nats_url, "replica")
    stores = [open_intake_store(settings), open_intake_store(settings)]
    js = nc.jetstream()
    try:
        first, second = [
            OutboxRelay(
                store, client.jetstream(), Checkpoints(key), await key_vault(client.jetstream(), settings)
            )
            for store, client in zip(stores, (nc, replica_nc), strict=True)
        ]
        for n in range(ATOMIC_FROM):
            stores[0].register(another_patients(n), None, now())
        first.position = await first.last_relayed()
        assert await first.relay_pending() == 2 * ATOMIC_FROM  # each complaint with its index entry
        record = [message async for message in read_messages(js)]
        complaints = [f"intake:{n}" for n in range(1, 2 * ATOMIC_FROM, 2)]
        assert [message.headers["Nats-Msg-Id"] for message in record] == complaints
        assert len({message.headers["Nats-Batch-Id"] for message in record}) == 1

        second.position = await second.last_relayed()
        await first.sign_head()  # the head moves on: the second relay does not know it
        for n in range(ATOMIC_FROM, 2 * ATOMIC_FROM):
            stores[1].register(another_patients(n), None, now())
        with pytest.raises(APIError) as refused:
            await second.relay_pending()
        assert refused.value.err_code == WRONG_LAST_SEQUENCE
        assert len([message async for message in read_messages(js)]) == ATOMIC_FROM + 1  # a checkpoint

        second.position = await second.last_relayed()
        assert await second.relay_pending() == 2 * ATOMIC_FROM
        await second.sign_head()
    finally:
        await replica_nc.close()
        for store in stores:
            store.close()
    record = [message async for message in read_messages(js)]
    assert [message.headers["Kizuki-Event-Type"] for message in record] == [
        *["ComplaintReceived"] * ATOMIC_FROM,
        "CheckpointSigned",
        *["ComplaintReceived"] * ATOMIC_FROM,
        "CheckpointSigned",
    ]
    assert len({message.headers.get("Nats-Batch-Id") for message in record}) == 3  # None: checkpoints
    verifier = Verifier(TrustFile.load(settings.trust_file))
    for message in record:
        verifier.check(message)
    verifier.finish()
    assert verifier.holds, verifier.problems


async def test_a_record_stream_that_takes_no_atomic_batches_gets_the_events_one_by_one(
    nc: Client, settings: Settings
) -> None:
    """A record stream declared by an earlier version (until provisioning runs again) refuses batches:
    the relay publishes the same events one at a time."""
    js = nc.jetstream()
    await js.update_stream(replace(RECORD_STREAM_CONFIG, allow_atomic=False))
    provision_signing_keys(settings)
    await relay_complaints(js, settings, ATOMIC_FROM, every=100)
    record = [message async for message in read_messages(js)]
    assert [message.headers["Kizuki-Event-Type"] for message in record] == [
        *["ComplaintReceived"] * ATOMIC_FROM,
        "CheckpointSigned",
    ]
    assert not any("Nats-Batch-Id" in message.headers for message in record)


async def test_two_relays_of_one_service_keep_one_chain(
    nats_url: str, nc: Client, settings: Settings
) -> None:
    """Two replicas of intake, each with its own connection and its own handle on the store: one signs
    its head while the other, not knowing it, publishes the next event on the head it last saw. The
    server refuses that publish; without the expectation the chain would fork there."""
    provision_signing_keys(settings)
    key = SigningKey.load(settings.signing_key_file("intake"))
    replica_nc = await connect(nats_url, "replica")
    stores = [open_intake_store(settings), open_intake_store(settings)]
    try:
        first, second = [
            OutboxRelay(
                store, client.jetstream(), Checkpoints(key), await key_vault(client.jetstream(), settings)
            )
            for store, client in zip(stores, (nc, replica_nc), strict=True)
        ]
        for n in range(3):
            stores[0].register(another_patients(n), None, now())
        first.position = await first.last_relayed()
        await first.relay_pending()
        second.position = await second.last_relayed()
        # Each registration stores the complaint and its reference's index entry (which stays
        # inside): the complaints are notifications 1, 3 and 5.
        assert (second.position, second.head) == (5, first.head)

        await first.sign_head()  # the head moves on: the second relay does not know it
        stores[1].register(another_patients(3), None, now())
        with pytest.raises(APIError) as refused:
            await second.relay_pending()
        assert refused.value.err_code == WRONG_LAST_SEQUENCE

        # The one that lost starts again from the record (as its run does after a failure); then the
        # other is behind the record in turn, is refused in turn, and finds its place there.
        second.position = await second.last_relayed()
        assert await second.relay_pending() == 2  # the complaint (7) and its index entry (8)
        with pytest.raises(APIError) as refused_in_turn:
            await first.relay_pending()
        assert refused_in_turn.value.err_code == WRONG_LAST_SEQUENCE
        first.position = await first.last_relayed()
        assert (first.position, await first.relay_pending()) == (7, 1)  # 8 stays inside
        await first.sign_head()
    finally:
        await replica_nc.close()
        for store in stores:
            store.close()
    messages = [message async for message in read_messages(nc.jetstream())]
    # A checkpoint follows the last notification its relay passed, index entries included.
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        "intake:1",
        "intake:3",
        "intake:5",
        "intake:6:checkpoint",
        "intake:7",
        "intake:8:checkpoint",
    ]
    assert [int(m.headers["Kizuki-Chain-Index"]) for m in messages] == [1, 2, 3, 4, 5, 6]
    verifier = Verifier(TrustFile.load(settings.trust_file))
    for message in messages:
        verifier.check(message)
    verifier.finish()
    assert verifier.holds, verifier.problems


def kizuki(settings: Settings, nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `kizuki` command, as an auditor runs it against this server and data directory."""
    env = os.environ | {"KIZUKI_DATA_DIR": str(settings.data_dir), "NATS_URL": nats_url}
    command = [sys.executable, "-m", "kizuki.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_the_last_links_awaiting_their_checkpoint_are_said_so_and_fail_only_when_strict(
    nc: Client, nats_url: str, settings: Settings, tmp_path: Path
) -> None:
    provision_signing_keys(settings)
    await relay_complaints(nc.jetstream(), settings, 5, every=3, sign_at_end=False)  # links 5, 6 unsigned

    live = await asyncio.to_thread(kizuki, settings, nats_url, "audit", "verify")
    assert live.returncode == 0, live.stdout + live.stderr
    assert live.stdout.splitlines() == [
        "verified: 6 messages, 1 chains, 1 trusted checkpoints; every link and signature holds; "
        "2 link(s) awaiting the next checkpoint (≤ 60 s): intake 2"
    ]
    strict = await asyncio.to_thread(kizuki, settings, nats_url, "audit", "verify", "--strict")
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[0] == (
        "seq 6: unsigned: the last 2 link(s) of intake are under no trusted checkpoint"
    )

    # A bundle says when it was written: its tail was awaiting then, and is judged as of then.
    exported = tmp_path / "record.jsonl"
    assert (
        await asyncio.to_thread(kizuki, settings, nats_url, "audit", "export", str(exported))
    ).returncode == 0
    from_bundle = await asyncio.to_thread(
        kizuki, settings, nats_url, "audit", "verify", "--bundle", str(exported)
    )
    assert from_bundle.returncode == 0, from_bundle.stdout
    assert from_bundle.stdout.splitlines()[-1] == live.stdout.splitlines()[-1]

    # Unsigned links that reached the record longer than a checkpoint interval before: a failure.
    lines = exported.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    written = datetime.fromisoformat(header["exported_at"])
    header["exported_at"] = (written + timedelta(seconds=60 + AWAITING_GRACE_SECONDS + 1)).isoformat()
    exported.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    stale = await asyncio.to_thread(kizuki, settings, nats_url, "audit", "verify", "--bundle", str(exported))
    assert stale.returncode == 1
    assert "seq 6: unsigned: the last 2 link(s) of intake" in stale.stdout


KEY = SigningKey(new_seed())


def two_services(path: Path, change: Callable[[list[RecordMessage]], object] = lambda record: None) -> Path:
    """A bundle of a record of intake's and escalation's chains, changed as the test says."""
    record = list(synthetic_record(60, KEY, every=5))
    change(record)
    with path.open("w", encoding="utf-8") as out:
        bundles.write_header(
            out, "record", TrustFile({"intake": [KEY.public_key], "escalation": [KEY.public_key]})
        )
        for message in record:
            bundles.write_message(out, message)
    return path


def verified_bundle(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int | str | None, list[str]]:
    with pytest.raises(SystemExit) as exit_status:
        main(["audit", "verify", "--bundle", str(path)])
    return exit_status.value.code, capsys.readouterr().out.splitlines()


def test_two_services_messages_swapped_are_named_out_of_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verified_bundle(two_services(tmp_path / "clean.jsonl"), capsys)[0] == 0

    def swap(record: list[RecordMessage]) -> None:
        at = next(
            i
            for i in range(len(record) - 1)
            if record[i].subject.split(".")[1] != record[i + 1].subject.split(".")[1]
        )
        record[at], record[at + 1] = record[at + 1], record[at]

    code, out = verified_bundle(two_services(tmp_path / "swapped.jsonl", swap), capsys)
    assert code == 1
    assert out[:-1] == ["seq 1: out of order: seq 1 after seq 2"]  # each chain on its own holds
    assert out[-1].endswith("1 problem(s): out of order 1")


def test_a_gap_in_the_sequence_of_a_full_export_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def skip_two(record: list[RecordMessage]) -> None:
        record[10:] = [
            replace(message, stream_sequence=message.stream_sequence + 2) for message in record[10:]
        ]

    code, out = verified_bundle(two_services(tmp_path / "gap.jsonl", skip_two), capsys)
    assert code == 1
    assert out[:-1] == ["seq 13: missing: seqs 11-12 missing before this message"]

    def start_late(record: list[RecordMessage]) -> None:
        record[:] = [replace(message, stream_sequence=message.stream_sequence + 1) for message in record]

    code, out = verified_bundle(two_services(tmp_path / "late.jsonl", start_late), capsys)
    assert (code, out[:-1]) == (1, ["seq 2: missing: seq 1 missing before this message"])


def test_a_missing_trust_file_or_bundle_is_one_line_saying_how_to_make_one(
    settings: Settings, nats_url: str, tmp_path: Path
) -> None:
    pinned = tmp_path / "my-pinned-trust.json"
    bundle = two_services(tmp_path / "record.jsonl")
    no_trust = kizuki(settings, nats_url, "audit", "verify", "--bundle", str(bundle), "--trust", str(pinned))
    assert no_trust.returncode == 2
    assert no_trust.stderr.splitlines() == [
        f"kizuki: the trust file {pinned} does not exist: make one by copying the data directory's "
        f"(cp {settings.trust_file} {pinned}) and keep it where the system cannot change it"
    ]
    missing = tmp_path / "nowhere.jsonl"
    for command in (("verify",), ("report",)):
        no_bundle = kizuki(settings, nats_url, "audit", *command, "--bundle", str(missing))
        assert no_bundle.returncode == 2
        assert no_bundle.stderr.splitlines() == [
            f"kizuki: the bundle {missing} does not exist: write one with `kizuki audit export {missing}` "
            f"or `kizuki audit prove <complaint_id> {missing}`"
        ]


async def test_replay_reads_the_live_record_as_people_say_it(
    nc: Client, nats_url: str, settings: Settings
) -> None:
    provision_signing_keys(settings)
    await relay_complaints(nc.jetstream(), settings, 2, every=100)
    replayed = await asyncio.to_thread(kizuki, settings, nats_url, "audit", "replay")
    assert replayed.returncode == 0, replayed.stderr
    lines = replayed.stdout.splitlines()
    assert len(lines) == 3
    assert all(" JST  " in line for line in lines)  # the shipped policy's time zone, Asia/Tokyo
    assert "registered a complaint (" in lines[0]
    assert lines[2].endswith("signed its chain up to link 2  (seq 3)")
    as_json = await asyncio.to_thread(kizuki, settings, nats_url, "audit", "replay", "--json")
    assert [json.loads(line)["stream_sequence"] for line in as_json.stdout.splitlines()] == [1, 2, 3]


async def test_a_stretch_keeps_every_complaints_key_and_destroys_an_erased_ones(
    nc: Client, settings: Settings
) -> None:
    """Each stretch keeps the keys of the complaints in it side by side: three registered, then one of
    them erased and a fourth registered; the erased one's key is gone, the others' are there."""
    provision_signing_keys(settings)
    js = nc.jetstream()
    vault = await key_vault(js, settings)
    store = open_intake_store(settings)
    try:
        key = SigningKey.load(settings.signing_key_file("intake"))
        relay = OutboxRelay(store, js, Checkpoints(key), vault)
        complaint_ids = [store.register(another_patients(n), None, now())[0] for n in range(3)]
        await relay.relay_pending()
        assert all([await vault.data_key(complaint_id) is not None for complaint_id in complaint_ids])
        assert store.erase(complaint_ids[1], "dm-001", now()) is not None
        complaint_ids.append(store.register(another_patients(3), None, now())[0])
        await relay.relay_pending()
    finally:
        store.close()
    kept = [await vault.data_key(complaint_id) is not None for complaint_id in complaint_ids]
    assert kept == [True, False, True, True]
