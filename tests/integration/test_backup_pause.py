"""While a backup copies the stores, no consumer is given a message (so no store can take in one the
record copy lacks), and once it is done they all go on."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout

from kizuki import backup as backups
from kizuki.provision import provision_bus, provision_secrets
from kizuki.snapshots import snapshot
from shared.bus import RECORD_STREAM, connect
from shared.settings import SERVICES, load_settings

SUBJECT = "events.intake.ComplaintReceived"  # one that escalation consumes


async def delivered_to_escalation(nc: Client) -> bool:
    consumer = await nc.jetstream().pull_subscribe_bind("escalation", stream=RECORD_STREAM)
    try:
        (message,) = await consumer.fetch(1, timeout=1)
    except NatsTimeout:
        return False
    finally:
        await consumer.unsubscribe()
    await message.ack_sync()
    return True


def test_the_consumers_are_paused_while_the_backup_copies_and_resumed_after(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings({"KIZUKI_DATA_DIR": str(tmp_path / "var"), "NATS_URL": nats_url})
    provision_secrets(settings)
    asyncio.run(provision_bus(nats_url))
    for service in SERVICES:
        sqlite3.connect(settings.service_dir(service) / "store.sqlite").close()
    seen: dict[str, bool] = {}

    async def snapshot_then_publish_and_fetch(nc: Client, stream: str, out: Path) -> dict[str, Any]:
        meta = await snapshot(nc, stream, out)
        if stream == RECORD_STREAM:  # the record is copied: a relay publishes, escalation asks for it
            await nc.jetstream().publish(SUBJECT, b"{}", headers={"Nats-Msg-Id": "intake:1"})
            seen["during"] = await delivered_to_escalation(nc)
        return meta

    monkeypatch.setattr(backups, "snapshot", snapshot_then_publish_and_fetch)
    backups.take_backup(settings, tmp_path / "backup")

    async def after() -> bool:
        nc = await connect(nats_url, "test")
        try:
            return await delivered_to_escalation(nc)
        finally:
            await nc.close()

    assert seen == {"during": False}
    assert asyncio.run(after())
