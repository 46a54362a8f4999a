"""JetStream stream snapshots: the server's own copy of a stream (messages with their sequences,
headers and timestamps, and its consumers with their positions), taken while the stream is in use,
and restored into a server that does not have the stream.

This is the protocol of `nats stream backup` / `restore` (``$JS.API.STREAM.SNAPSHOT.<stream>`` and
``$JS.API.STREAM.RESTORE.<stream>``), which nats-py does not offer: the snapshot arrives in chunks
on an inbox, each answered for flow control, and ends with an empty message; a restore sends the
chunks, each as a request, then an empty one, and the server answers with the stream's info.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

CHUNK_BYTES = 128 * 1024
# A chunk or the final answer that takes longer than this means the server gave up.
WAIT_SECONDS = 30.0
# A server breaks a snapshot off when a consumer it listed is deleted before it reads that consumer's
# state ("couldn't load consumer 'X' state: store is closed"): any reader's ephemeral consumer going
# away at that moment. A snapshot only reads, so it is taken again, from the start.
ATTEMPTS = 10
PAUSE_BETWEEN_ATTEMPTS = 0.2


class SnapshotFailed(RuntimeError):
    """The server refused or broke off a snapshot or a restore; the message says why."""


class SnapshotBrokenOff(SnapshotFailed):
    """The server began a snapshot and ended it with an error instead of its last chunk."""


def _answer(stream: str, what: str, message: Msg) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = json.loads(message.data)
    except ValueError:
        raise SnapshotFailed(f"{what} of {stream}: the server answered {message.data[:200]!r}") from None
    if "error" in answer:
        raise SnapshotFailed(f"{what} of {stream}: {answer['error'].get('description', answer['error'])}")
    return answer


async def snapshot(nc: Client, stream: str, out: Path, attempts: int = ATTEMPTS) -> dict[str, Any]:
    """Write the stream's snapshot (tar, s2-compressed, as the server makes it) to ``out``, its consumers
    included; returns its configuration and state as of the snapshot, which a restore needs. A snapshot
    the server breaks off is taken again, up to ``attempts`` times in all."""
    for _ in range(attempts - 1):
        try:
            return await _snapshot_once(nc, stream, out)
        except SnapshotBrokenOff:
            await asyncio.sleep(PAUSE_BETWEEN_ATTEMPTS)
    try:
        return await _snapshot_once(nc, stream, out)
    except SnapshotBrokenOff as broken:
        raise SnapshotBrokenOff(f"{broken} (broken off {attempts} times in a row)") from None


async def _snapshot_once(nc: Client, stream: str, out: Path) -> dict[str, Any]:
    inbox = nc.new_inbox()
    chunks: asyncio.Queue[Msg] = asyncio.Queue()

    async def arrived(message: Msg) -> None:
        await chunks.put(message)

    subscription = await nc.subscribe(inbox, cb=arrived, pending_msgs_limit=-1, pending_bytes_limit=-1)
    try:
        request = {"deliver_subject": inbox, "no_consumers": False, "chunk_size": CHUNK_BYTES}
        reply = await nc.request(f"$JS.API.STREAM.SNAPSHOT.{stream}", json.dumps(request).encode(), 10)
        meta = _answer(stream, "snapshot", reply)
        with out.open("wb") as file:
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.get(), WAIT_SECONDS)
                except TimeoutError:
                    raise SnapshotFailed(f"snapshot of {stream}: the server stopped sending") from None
                if not chunk.data:
                    status = (chunk.headers or {}).get("Status")
                    if status not in (None, "204"):
                        description = (chunk.headers or {}).get("Description", "")
                        raise SnapshotBrokenOff(f"snapshot of {stream}: {status} {description}".strip())
                    break
                file.write(chunk.data)
                if chunk.reply:
                    await nc.publish(chunk.reply, b"")
        return {"config": meta["config"], "state": meta["state"]}
    finally:
        await subscription.unsubscribe()


async def restore(nc: Client, stream: str, meta: dict[str, Any], data: Path) -> dict[str, Any]:
    """Recreate the stream (which must not exist) from a snapshot; returns its state."""
    reply = await nc.request(f"$JS.API.STREAM.RESTORE.{stream}", json.dumps(meta).encode(), 10)
    deliver = _answer(stream, "restore", reply)["deliver_subject"]
    with data.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            answered = await nc.request(deliver, chunk, WAIT_SECONDS)
            if answered.data:
                _answer(stream, "restore", answered)
    done = _answer(stream, "restore", await nc.request(deliver, b"", 600))
    state: dict[str, Any] = done["state"]
    return state
