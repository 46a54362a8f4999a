"""The console's actions, carried out by the owning service's API with the signed-in person's own
token, so that the rules of who may do what stay in that service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from shared.auth import issue_token
from shared.directory import Directory
from shared.live_file import LiveFile
from shared.settings import Settings
from shared.tracing import traceparent_header

# Long enough for one request; the console mints a new one for each action.
TOKEN_LIFETIME = timedelta(minutes=2)


@dataclass(frozen=True)
class Outcome:
    """What the service answered: the body on success, or its refusal in its own words."""

    ok: bool
    status: int
    body: dict[str, Any]
    refusal: str = ""


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
            return Outcome(False, 503, {}, f"the {service} service is not answering: try again in a moment")
        if response.is_success:
            return Outcome(True, response.status_code, response.json())
        return Outcome(False, response.status_code, {}, refusal_text(response))


def refusal_text(response: httpx.Response) -> str:
    """The service's message: a sentence, the open items of a 409, or each problem of a 422."""
    try:
        answer = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}"
    detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
    if isinstance(detail, dict):
        problems = detail.get("problems") or detail.get("open_duties") or []
        head = str(detail.get("error") or detail.get("message") or "")
        items = [str(p.get("message", p)) if isinstance(p, dict) else str(p) for p in problems]
        return ": ".join(filter(None, [head, ", ".join(items)])) or str(detail)
    return str(detail)
