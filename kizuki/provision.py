"""Provisioning: the one step, with admin rights, that declares streams and every durable consumer."""

from __future__ import annotations

from services.escalation.handlers import SUBSCRIPTIONS as ESCALATION
from services.followup.handlers import SUBSCRIPTIONS as FOLLOWUP
from services.notifier.handlers import SUBSCRIPTIONS as NOTIFIER
from shared.bus import connect, provision

ALL_SUBSCRIPTIONS = [*ESCALATION, *NOTIFIER, *FOLLOWUP]


async def provision_bus(url: str) -> None:
    nc = await connect(url, name="kizuki-provision")
    try:
        await provision(nc.jetstream(), ALL_SUBSCRIPTIONS)
    finally:
        await nc.close()
