"""Provisioning: the one step, with admin rights, that declares streams and every durable consumer,
and creates the secrets the embedded setup needs when they are not configured."""

from __future__ import annotations

from services.escalation.handlers import SUBSCRIPTIONS as ESCALATION
from services.followup.handlers import SUBSCRIPTIONS as FOLLOWUP
from services.notifier.handlers import SUBSCRIPTIONS as NOTIFIER
from shared.auth import ensure_token_keys
from shared.bus import connect, provision
from shared.privacy import ensure_key_file
from shared.settings import Settings

ALL_SUBSCRIPTIONS = [*ESCALATION, *NOTIFIER, *FOLLOWUP]


async def provision_bus(url: str) -> None:
    nc = await connect(url, name="kizuki-provision")
    try:
        await provision(nc.jetstream(), ALL_SUBSCRIPTIONS)
    finally:
        await nc.close()


def provision_secrets(settings: Settings) -> None:
    """Keys are made once, owner-only, in the secrets directory; configured ones are left as they are."""
    ensure_token_keys(settings.token_signing_key, settings.token_verify_key)
    ensure_key_file(settings.master_key)
    ensure_key_file(settings.reporter_key)
    ensure_key_file(settings.match_key)
