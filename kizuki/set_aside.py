"""`kizuki set-aside`: what the services set aside, and taking a message up again once its cause is
fixed. Each service answers for its own consumers (an administrator's endpoint); what a relay set
aside is read from the record (EventSetAside), where it explains a link that holds no event."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import httpx
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from kizuki.permissions import AUDITOR
from shared.bus import RECORD_STREAM, connect
from shared.events import EventSetAside
from shared.settings import Settings


def list_set_aside(settings: Settings, token: str, services: Sequence[str], out: TextIO) -> bool:
    """Prints one line per message set aside; False if a service did not answer."""
    answered = True
    for service in services:
        try:
            response = httpx.get(
                f"{settings.http_url(service)}/v1/set-aside", headers=_bearer(token), timeout=30
            )
        except httpx.HTTPError as error:
            print(f"kizuki: {service} does not answer: {error}", file=sys.stderr)
            answered = False
            continue
        if response.status_code != 200:
            print(f"kizuki: {service} refused ({response.status_code}): {_detail(response)}", file=sys.stderr)
            answered = False
            continue
        for item in response.json():
            print(
                f"{service} {item['stream']} {item['stream_sequence']} set aside {item['set_aside_at']}"
                f" ({item['message_subject']}, complaint {item['complaint_id']}): {item['reason']}",
                file=out,
            )
    try:
        relays_set_aside = asyncio.run(_relay_set_asides(settings))
    except Exception as error:
        print(f"kizuki: the record cannot be read for what relays set aside: {error!r}", file=sys.stderr)
        return False
    for event in relays_set_aside:
        if event.set_aside_by in services:
            print(
                f"{event.set_aside_by} relay: notification {event.notification_id} ({event.event_type}, "
                f"{event.size} bytes, complaint {event.complaint_id}) not published: {event.reason}; "
                "it stays in the service's store, the record says so in its place",
                file=out,
            )
    return answered


def take_up(settings: Settings, token: str, service: str, stream: str, sequence: int) -> None:
    response = httpx.post(
        f"{settings.http_url(service)}/v1/set-aside/{stream}/{sequence}/take-up",
        headers=_bearer(token),
        timeout=60,
    )
    if response.status_code != 200:
        refused = f"{response.status_code}: {_detail(response)}"
        sys.exit(f"kizuki: {service} did not take up {stream} #{sequence} ({refused})")
    print(f"kizuki: {service} took up {stream} #{sequence} again; the record says so (MessageTakenUp)")


async def _relay_set_asides(settings: Settings) -> list[EventSetAside]:
    """Every EventSetAside on the record, up to the last one there is now."""
    subjects = f"events.*.{EventSetAside.type_name()}"
    nc = await connect(settings.bus_url, name="kizuki-set-aside", user=settings.bus_user(AUDITOR))
    try:
        js = nc.jetstream()
        try:
            last = (await js.get_last_msg(RECORD_STREAM, subjects)).seq
        except NotFoundError:
            return []
        found: list[EventSetAside] = []
        read_all = asyncio.Event()

        async def collect(message: Msg) -> None:
            found.append(EventSetAside.model_validate_json(message.data))
            if message.metadata.sequence.stream >= (last or 0):
                read_all.set()

        await js.subscribe(
            subjects,
            stream=RECORD_STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            cb=collect,
        )
        await asyncio.wait_for(read_all.wait(), timeout=60)
        return found
    finally:
        await nc.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except ValueError:
        return response.text
