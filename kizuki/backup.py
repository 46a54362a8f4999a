"""`kizuki backup DIR`: a consistent copy of the whole system, taken while it runs.

Consistent means: restored, the system is in a state it could have been in after a crash at one
moment. Each service's store holds every event of its own that is on the record copy (a store ahead
of the record publishes the rest again when it starts: its relay resumes after its last message on the
record), and no store has processed a message the record copy lacks. The order makes it so:

1. every durable consumer is paused (until a deadline, so that a backup that dies cannot stall the
   system): from then on no store takes in a message, while the relays go on publishing;
2. the record is snapshotted (the server's own snapshot: sequences, headers, timestamps and the
   consumers' positions exactly), then each service's timer stream (every schedule a published event
   set is there, pending or fired), then the patient-key bucket;
3. each store is copied (SQLite's online backup, or ``pg_dump`` of its schema: intake's with the
   complaints' keys), then intake's trace files, the secrets and the trust file; a store holds every
   event of its own that the record copy has, since a relay publishes only what is stored;
4. the consumers are resumed, and the record copy is exported as a verifiable bundle.

A consumer's position in a snapshot is never ahead of its store: a message is acknowledged only after
the store has committed it. A message delivered and not acknowledged comes again after a restore and
is recognised by the store's tracking record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from kizuki import bundle as bundles
from kizuki.audit import RecordMessage, read_messages
from kizuki.backup_files import (
    OWNER_ONLY_DIR,
    BackupRefused,
    live_files,
    write_manifest,
    write_owner_only,
)
from kizuki.permissions import ADMINISTRATOR
from kizuki.provision import ALL_SUBSCRIPTIONS
from kizuki.snapshots import snapshot
from kizuki.store_copies import copy_store
from shared.bus import KEY_STREAM, RECORD_STREAM, connect, services_with_timers, timer_stream
from shared.chain import TrustFile
from shared.settings import SERVICES, Settings

# Long enough for the streams and stores of a large installation; a backup that takes longer fails.
PAUSE = timedelta(minutes=10)
CONNECT_SECONDS = 10.0


def streams_in_order() -> list[str]:
    """The record first, then what the record's events set (timers, keys): see the module's docstring."""
    return [RECORD_STREAM, *(timer_stream(s) for s in services_with_timers(ALL_SUBSCRIPTIONS)), KEY_STREAM]


async def connect_as_administrator(settings: Settings) -> Client:
    """The administrator's connection, or a clear error when no server answers (rather than waiting
    for one forever, as the services do)."""
    try:
        return await asyncio.wait_for(
            connect(settings.bus_url, name="kizuki-backup", user=settings.bus_user(ADMINISTRATOR)),
            CONNECT_SECONDS,
        )
    except TimeoutError:
        raise BackupRefused(f"no NATS server answers at {settings.bus_url}: is the system running?") from None


async def _pause_consumers(js: JetStreamContext, until: datetime) -> list[tuple[str, str]]:
    """The services' durable consumers; the short-lived ones of readers (a relay finding its place, an
    audit) are not services' positions and come and go."""
    paused = []
    for stream in streams_in_order():
        for consumer in await js.consumers_info(stream):
            if consumer.config.durable_name:
                await js.pause_consumer(stream, consumer.name, until.strftime("%Y-%m-%dT%H:%M:%SZ"))
                paused.append((stream, consumer.name))
    return paused


async def _export_record(
    js: JetStreamContext, last: int, trust: TrustFile, out: Path, seconds: float
) -> None:
    """The bundle of the record copy: the record up to its snapshot's last sequence."""

    async def up_to_snapshot() -> AsyncIterator[RecordMessage]:
        if last == 0:
            return
        async for message in read_messages(js):
            yield message
            if message.stream_sequence >= last:
                return

    await asyncio.to_thread(write_owner_only, out, b"")
    with out.open("w", encoding="utf-8") as file:
        await bundles.export(up_to_snapshot(), trust, file, seconds)


def take_backup(settings: Settings, backup: Path) -> dict[str, Any]:
    """Write the backup into ``backup`` (which must not exist or be empty); returns the manifest's facts."""
    if backup.exists() and any(backup.iterdir()):
        raise BackupRefused(f"{backup} is not empty: a backup goes into a new directory")
    backup.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    backup.chmod(OWNER_ONLY_DIR)
    started = datetime.now(UTC)
    states = asyncio.run(_copy_while_paused(settings, backup, started + PAUSE))
    facts = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "record_last_sequence": states[RECORD_STREAM]["last_seq"],
        "streams": {stream: state["messages"] for stream, state in states.items()},
        "store": settings.store,
    }
    write_manifest(backup, facts)
    return facts


async def _copy_while_paused(settings: Settings, backup: Path, until: datetime) -> dict[str, Any]:
    """Steps 1 to 4 of the module's docstring; returns each stream's state as of its snapshot."""
    nc = await connect_as_administrator(settings)
    try:
        js = nc.jetstream()
        paused = await _pause_consumers(js, until)
        try:
            states: dict[str, Any] = {}
            for stream in streams_in_order():
                data = backup / "streams" / f"{stream}.tar.s2"
                await asyncio.to_thread(write_owner_only, data, b"")
                meta = await snapshot(nc, stream, data)
                about = backup / "streams" / f"{stream}.json"  # what a restore asks the server for
                await asyncio.to_thread(write_owner_only, about, _json(meta))
                states[stream] = meta["state"]
            await asyncio.to_thread(_copy_stores_and_files, settings, backup)
            if datetime.now(UTC) >= until:
                raise BackupRefused(f"the backup took longer than the consumers' pause ({PAUSE}): try again")
        finally:
            for stream, consumer in paused:
                await js.resume_consumer(stream, consumer)
        trust = TrustFile.load(settings.trust_file)
        last = states[RECORD_STREAM]["last_seq"]
        await _export_record(js, last, trust, backup / "record.jsonl", settings.checkpoint_seconds)
    finally:
        await nc.close()
    return states


def _copy_stores_and_files(settings: Settings, backup: Path) -> None:
    for service in SERVICES:
        copy_store(settings, service, backup)
    for name, path in live_files(settings):
        write_owner_only(backup / "files" / name, path.read_bytes())


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()
