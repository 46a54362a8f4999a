"""The console's actions, carried out by the owning service's API with the signed-in person's own
token, so that the rules of who may do what stay in that service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from services.console.refusals import Refusal, not_answering, refused
from shared.auth import issue_token
from shared.directory import Directory
from shared.live_file import LiveFile
from shared.settings import Settings
from shared.tracing import traceparent_header

# Long enough for one request; the console mints a new one for each action.
TOKEN_LIFETIME = timedelta(minutes=2)


@dataclass(frozen=True)
class Outcome:
    """What the service answered: the body on success, or its refusal as the person is told it."""

    ok: bool
    status: int
    body: dict[str, Any]
    refusal: Refusal | None = None


class Gateway:
    def __init__(self, settings: Settings, directory: LiveFile[Directory], client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.directory = directory
        self.client = client

    async def post(
        self, service: str, path: str, staff_id: str, body: dict[str, Any] | None = None, **headers: str
    ) -> Outcome:
        return await self._send("POST", service, path, staff_id, body, headers)

    async def get(self, service: str, path: str, staff_id: str) -> Outcome:
        """A read the service decides on for this person (e.g. intake's patient data)."""
        return await self._send("GET", service, path, staff_id, None, {})

    async def _send(
        self,
        method: str,
        service: str,
        path: str,
        staff_id: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
    ) -> Outcome:
        token = issue_token(self.settings.token_signing_key, staff_id, self.directory.current, TOKEN_LIFETIME)
        try:
            response = await self.client.request(
                method,
                self.settings.http_url(service) + path,
                json=body,
                headers={"Authorization": f"Bearer {token}", **traceparent_header(), **headers},
            )
        except httpx.TransportError:
            # The person is told, and may send the form again once the service is back.
            return Outcome(False, 503, {}, not_answering(service))
        if response.is_success:
            return Outcome(True, response.status_code, response.json())
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return Outcome(False, response.status_code, {}, refused(service, response.status_code, answer))
