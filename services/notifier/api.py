"""The one-click acknowledgement pages. Opening the link (GET) only shows what would be acknowledged,
because mail scanners and link previews fetch links nobody clicked; the button on it (POST) records."""

# Without `from __future__ import annotations`: FastAPI reads these signatures.
import asyncio
import html
from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import HTMLResponse

from services.notifier.application import NotifierApplication
from services.notifier.domain import Notification
from services.notifier.links import LinkRefused, LinkSigner
from shared.reference import reference_of
from shared.timers import now

Token = Annotated[str, Path(max_length=200, description="The token of the link, as sent.")]


def page(title: str, text: str, status_code: int = status.HTTP_200_OK, form: bool = False) -> HTMLResponse:
    button = '<form method="post"><button type="submit">Acknowledge</button></form>' if form else ""
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{button}</body></html>"
    )
    # The token is in the URL: keep it out of the Referer of anything the page links to.
    return HTMLResponse(body, status_code=status_code, headers={"Referrer-Policy": "no-referrer"})


def what(alert: Notification) -> str:
    duty = (alert.duty or "").replace("_", " ")
    return f"case {reference_of(alert.complaint_id)}, {duty}, alert {alert.alert_number} to {alert.recipient}"


def router(store: NotifierApplication, signer: LinkSigner) -> APIRouter:
    api = APIRouter(prefix="/ack")

    async def alert_of(token: str) -> Notification | HTMLResponse:
        try:
            delivery_id = signer.verify(token, now())
        except LinkRefused as refusal:
            code = status.HTTP_410_GONE if refusal.expired else status.HTTP_403_FORBIDDEN
            return page("Link refused", str(refusal), code)
        alert = await asyncio.to_thread(store.get_notification, delivery_id)
        if alert is None or alert.duty is None:
            return page("Unknown alert", "this link names no alert", status.HTTP_404_NOT_FOUND)
        return alert

    @api.get("/{token}", response_class=HTMLResponse, summary="What the link acknowledges; records nothing")
    async def confirm(token: Token) -> HTMLResponse:
        alert = await alert_of(token)
        if isinstance(alert, HTMLResponse):
            return alert
        if alert.acknowledged_by is not None:
            return page("Already acknowledged", f"{what(alert)} is acknowledged.")
        return page("Acknowledge this alert?", f"{what(alert)}.", form=True)

    @api.post("/{token}", response_class=HTMLResponse, summary="Acknowledge the alert the link was sent for")
    async def acknowledge(token: Token) -> HTMLResponse:
        alert = await alert_of(token)
        if isinstance(alert, HTMLResponse):
            return alert
        await asyncio.to_thread(store.act_on_notification, alert.id, lambda n: n.acknowledge(now()))
        return page("Acknowledged", f"{what(alert)}: acknowledged. The reminders about it stop.")

    return api
