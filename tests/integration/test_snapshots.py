"""A stream's snapshot, taken while readers come and go, as `kizuki backup` takes the record's."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig

from kizuki.snapshots import restore, snapshot
from shared.bus import connect

STREAM = "SNAPSHOTTED"
MESSAGES = 2_000
SNAPSHOTS = 10


async def readers_coming_and_going(nc: Client, stop: asyncio.Event) -> int:
    """Ephemeral consumers made and deleted in a loop, as every `kizuki` reader of the record makes one;
    returns how many went away."""
    js = nc.jetstream()
    gone = 0
    while not stop.is_set():
        made = [
            await js.add_consumer(STREAM, ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30))
            for _ in range(10)
        ]
        for info in made:
            await js.delete_consumer(STREAM, info.name)
            gone += 1
    return gone


async def snapshots_while_readers_come_and_go(nats_url: str, out: Path) -> tuple[int, int, int]:
    nc = await connect(nats_url, "test")
    try:
        js = nc.jetstream()
        await js.add_stream(name=STREAM, subjects=["snapshotted.>"])
        for _ in range(MESSAGES):  # incompressible, so the server takes a while over each snapshot
            await js.publish("snapshotted.x", os.urandom(2_000))
        await js.add_consumer(STREAM, ConsumerConfig(durable_name="kept", ack_policy=AckPolicy.EXPLICIT))
        stop = asyncio.Event()
        churn = asyncio.create_task(readers_coming_and_going(nc, stop))
        try:
            for _ in range(SNAPSHOTS):  # without taking a broken-off snapshot again, about 1 in 3 fails
                meta = await snapshot(nc, STREAM, out)
        finally:
            stop.set()
            gone = await churn
        await js.delete_stream(STREAM)
        state = await restore(nc, STREAM, meta, out)
        kept = await js.consumer_info(STREAM, "kept")
        return gone, state["messages"], kept.num_pending
    finally:
        await nc.close()


def test_a_snapshot_broken_off_by_a_reader_going_away_is_taken_again_and_restores_whole(
    nats_url: str, tmp_path: Path
) -> None:
    gone, restored, pending_for_kept = asyncio.run(
        snapshots_while_readers_come_and_go(nats_url, tmp_path / "stream.tar.s2")
    )

    assert gone > SNAPSHOTS  # readers did go away during the snapshots
    assert restored == MESSAGES  # the file holds one whole snapshot, not the remains of a broken one
    assert pending_for_kept == MESSAGES
