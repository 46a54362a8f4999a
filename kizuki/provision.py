"""Provisioning: the one step, with admin rights, that declares streams and every durable consumer,
and creates the secrets the embedded setup needs when they are not configured."""

from __future__ import annotations

import asyncio
import json
import os
import time

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError

from kizuki.permissions import KeyUse
from kizuki.timer_migration import migrate_shared_timers
from shared.auth import ensure_token_keys
from shared.bus import BusUser, cluster_forming, connect, jetstream_ready, provision, services_with_timers
from shared.chain import SigningKey, TrustFile, new_seed
from shared.contracts import SUBSCRIPTIONS
from shared.privacy import ensure_key_file
from shared.settings import SERVICES, Settings

# What each service does with the patient data keys (see kizuki/permissions.py).
KEY_USES: dict[str, KeyUse] = {
    "intake": "keeps",
    "escalation": "reads",
    "notifier": "reads",
    "followup": "reads",  # to seal and open the patient's words on callbacks
}
ALL_SUBSCRIPTIONS = [subscription for declared in SUBSCRIPTIONS.values() for subscription in declared]


async def provision_bus(
    url: str, administrator: BusUser | None = None, replicas: int = 1, within: float = 30.0
) -> None:
    """Declare the streams (each with ``replicas`` copies) and the consumers on the server(s) at
    ``url``; a cluster that has just started is given ``within`` seconds to elect its leaders."""
    nc = await connect(url, name="kizuki-provision", user=administrator)
    try:
        js = nc.jetstream()
        await jetstream_ready(js, within)
        deadline = time.monotonic() + within
        while True:
            try:
                await provision(js, ALL_SUBSCRIPTIONS, replicas)
                break
            except (APIError, NatsTimeoutError) as error:
                passing = not isinstance(error, APIError) or cluster_forming(error)
                if not passing or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        # An installation from before each service had its own timer stream: nothing pending is lost.
        await migrate_shared_timers(js, services_with_timers(ALL_SUBSCRIPTIONS))
    finally:
        await nc.close()


def provision_secrets(settings: Settings) -> None:
    """Keys are made once, owner-only; configured ones are left as they are."""
    _move_signing_key_out_of_secrets(settings)
    ensure_token_keys(settings.token_signing_key, settings.token_verify_key)
    ensure_key_file(settings.master_key)
    ensure_key_file(settings.reporter_key)
    ensure_key_file(settings.match_key)
    ensure_key_file(settings.ack_link_secret)  # what the notifier signs acknowledgement links with
    provision_signing_keys(settings)


def _move_signing_key_out_of_secrets(settings: Settings) -> None:
    """Earlier versions kept the token signing key beside the verify key, among the secrets every
    service reads; it moves to its own place, so that the tokens it signed stay valid."""
    left_behind = settings.token_verify_key.parent / "token-signing.pem"
    if left_behind.exists() and left_behind != settings.token_signing_key:
        if settings.token_signing_key.exists():
            left_behind.unlink()
        else:
            settings.token_signing_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            left_behind.rename(settings.token_signing_key)


def provision_signing_keys(settings: Settings) -> TrustFile:
    """Each service's signing key, made (owner-only) where none is supplied, and the trust file of
    their public keys; keys already in the trust file stay, so older checkpoints keep verifying."""
    trust = TrustFile.load(settings.trust_file) if settings.trust_file.exists() else TrustFile({})
    for service in SERVICES:
        seed_file = settings.signing_key_file(service)
        if not seed_file.exists():
            seed_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(seed_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(new_seed())
        trust = trust.with_key(service, SigningKey.load(seed_file).public_key)
    settings.trust_file.parent.mkdir(parents=True, exist_ok=True)
    settings.trust_file.write_text(json.dumps(trust.to_json(), indent=2) + "\n", encoding="utf-8")
    return trust
