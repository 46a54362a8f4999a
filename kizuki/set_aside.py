"""`kizuki set-aside`: what the services set aside, and taking it up again once its cause is fixed,
through each service's administrator's endpoint: messages its consumers could not handle (by stream
and sequence), and events of its own the bus refused (``outbox`` and the notification id)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

import httpx

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
                f" ({item['what']}, complaint {item['complaint_id']}): {item['reason']}",
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
    print(f"kizuki: {service} took up {stream} #{sequence} again")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except ValueError:
        return response.text
