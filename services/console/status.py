"""The status page for operators: each service's /health (its relay's lag, its consumers' pending and
set-aside messages, what is failing), the messages each service set aside (for an administrator, who
may take them up), and the record's last verification here."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from services.console import roles
from services.console.gateway import Gateway
from services.console.record_desk import RecordDesk
from services.console.refusals import Refusal
from services.console.web import Pages
from shared.settings import SERVICES

HEALTH_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ServiceStatus:
    """What one service says of itself; ``health`` is empty when it does not answer."""

    service: str
    answering: bool
    healthy: bool = False
    health: dict[str, Any] = field(default_factory=dict)
    set_aside: list[dict[str, Any]] = field(default_factory=list)
    set_aside_refusal: Refusal | None = None


async def status_of(gateway: Gateway, service: str, administrator: str | None) -> ServiceStatus:
    """The service's /health, and, read as the ``administrator`` when one is signed in, its set-aside list."""
    try:
        response = await gateway.client.get(
            gateway.settings.http_url(service) + "/health", timeout=HEALTH_TIMEOUT_SECONDS
        )
        health = response.json()
    except (httpx.TransportError, ValueError):
        return ServiceStatus(service, answering=False)
    if administrator is None:
        return ServiceStatus(service, True, response.is_success, health)
    listed = await gateway.get(service, "/v1/set-aside", administrator)
    items: list[dict[str, Any]] = listed.body if listed.ok else []  # type: ignore[assignment]  # a list
    shown = [item | {"set_aside_at": datetime.fromisoformat(item["set_aside_at"])} for item in items]
    return ServiceStatus(service, True, response.is_success, health, shown, listed.refusal)


def router(pages: Pages, gateway: Gateway, desk: RecordDesk) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/status", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        session = pages.session_of(request, roles.STATUS)
        held = pages.directory.staff[session.staff_id].roles
        administrator = session.staff_id if "administrator" in held else None
        services = await asyncio.gather(*(status_of(gateway, name, administrator) for name in SERVICES))
        return pages.render(
            "status.html",
            session.language,
            session,
            here="/status",
            services=services,
            administrator=administrator is not None,
            last=desk.last,
        )

    return api
