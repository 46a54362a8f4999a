"""Provisioning: the one step, with admin rights, that declares streams and every durable consumer,
and creates the secrets the embedded setup needs when they are not configured."""

from __future__ import annotations

from kizuki.permissions import KeyUse
from services.escalation.handlers import SUBSCRIPTIONS as ESCALATION
from services.followup.handlers import SUBSCRIPTIONS as FOLLOWUP
from services.notifier.handlers import SUBSCRIPTIONS as NOTIFIER
from shared.auth import ensure_token_keys
from shared.bus import BusUser, Subscription, connect, provision
from shared.privacy import ensure_key_file
from shared.settings import Settings

# Each service's durable consumers; what it may consume on the bus is derived from these.
SUBSCRIPTIONS: dict[str, list[Subscription]] = {
    "intake": [],
    "escalation": ESCALATION,
    "notifier": NOTIFIER,
    "followup": FOLLOWUP,
}
# What each service does with the patient data keys (see kizuki/permissions.py).
KEY_USES: dict[str, KeyUse] = {"intake": "keeps", "escalation": "reads", "notifier": "reads"}
ALL_SUBSCRIPTIONS = [subscription for declared in SUBSCRIPTIONS.values() for subscription in declared]


async def provision_bus(url: str, administrator: BusUser | None = None) -> None:
    nc = await connect(url, name="kizuki-provision", user=administrator)
    try:
        await provision(nc.jetstream(), ALL_SUBSCRIPTIONS)
    finally:
        await nc.close()


def provision_secrets(settings: Settings) -> None:
    """Keys are made once, owner-only, in the secrets directory; configured ones are left as they are."""
    ensure_token_keys(settings.token_signing_key, settings.token_verify_key)
    ensure_key_file(settings.master_key)
    ensure_key_file(settings.reporter_key)
