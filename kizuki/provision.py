"""Provisioning: the one step, with admin rights, that declares streams and every durable consumer."""

from __future__ import annotations

from services.escalation.handlers import SUBSCRIPTIONS as ESCALATION
from services.followup.handlers import SUBSCRIPTIONS as FOLLOWUP
from services.notifier.handlers import SUBSCRIPTIONS as NOTIFIER
from shared.bus import BusUser, Subscription, connect, provision

# Each service's durable consumers; what it may consume on the bus is derived from these.
SUBSCRIPTIONS: dict[str, list[Subscription]] = {
    "intake": [],
    "escalation": ESCALATION,
    "notifier": NOTIFIER,
    "followup": FOLLOWUP,
}
ALL_SUBSCRIPTIONS = [subscription for declared in SUBSCRIPTIONS.values() for subscription in declared]


async def provision_bus(url: str, administrator: BusUser | None = None) -> None:
    nc = await connect(url, name="kizuki-provision", user=administrator)
    try:
        await provision(nc.jetstream(), ALL_SUBSCRIPTIONS)
    finally:
        await nc.close()
