"""Registering a complaint heard by phone or at the desk: intake's API with the person's own token, then
the apology-call deadline escalation set for it, as soon as it is on the record."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
import contextlib
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from services.console.application import ConsoleApplication
from services.console.gateway import Gateway
from services.console.refusals import Refusal
from services.console.sessions import Session
from services.console.web import STALE_FORM, Pages, form_of

CHANNELS = ("phone", "walk_in")
# Escalation opens the case within milliseconds; past this the page says the deadline is on its way.
DEADLINE_WAIT_SECONDS = 5.0


def departments(pages: Pages, session: Session) -> list[str]:
    own = pages.directory.staff[session.staff_id].department
    return sorted({own, *pages.directory.departments})


def complaint_body(form: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """Intake's request; a time that is not one is left for intake to refuse with its message."""
    occurred = form.get("occurred_at", "")
    with contextlib.suppress(ValueError):
        occurred = datetime.fromisoformat(occurred).replace(tzinfo=zone).isoformat()
    complainant = {"name": form.get("name") or None, "contact": form.get("contact") or None}
    return {
        "channel": form.get("channel", ""),
        "occurred_at": occurred,
        "department": form.get("department", ""),
        "summary": form.get("summary", ""),
        "complainant": complainant if any(complainant.values()) else None,
        "language": form.get("language") or None,
    }


def router(pages: Pages, store: ConsoleApplication, gateway: Gateway) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    def form_page(
        session: Session, values: dict[str, str], refusal: Refusal | None = None, status: int = 200
    ) -> Response:
        return pages.render(
            "register.html", session.language, session, status, "/register",
            values=values, refusal=refusal, channels=CHANNELS, departments=departments(pages, session),
            form_id=str(uuid.uuid4()),
        )  # fmt: skip

    @api.get("/register", response_class=HTMLResponse)
    async def register_form(request: Request) -> Response:
        session = pages.session(request)
        own = pages.directory.staff[session.staff_id]
        return form_page(session, {"department": own.department, "language": session.language})

    @api.post("/register", response_class=HTMLResponse)
    async def register(request: Request) -> Response:
        session = pages.session(request)
        form = await form_of(request)
        if not session.checks(form.get("csrf")):
            raise HTTPException(403, detail=STALE_FORM)
        body = complaint_body(form, ZoneInfo(pages.timezone))
        # The form's own id: sending the same form twice registers one complaint.
        key = {"Idempotency-Key": f"console:{form.get('form_id', '')}"}
        outcome = await gateway.post("intake", "/v1/complaints", session.staff_id, body, **key)
        if not outcome.ok:
            return form_page(session, form, outcome.refusal, outcome.status)
        complaint_id = UUID(outcome.body["complaint_id"])

        def apology_call_due() -> datetime | None:
            case = store.read(lambda cases: cases.get(complaint_id))
            duty = case.duties.get("first_response") if case is not None else None
            return duty.due_at if duty is not None else None

        await pages.feed.until(lambda: apology_call_due() is not None, DEADLINE_WAIT_SECONDS)
        return pages.render(
            "registered.html", session.language, session, 200, f"/cases/{complaint_id}",
            complaint_id=complaint_id, due_at=apology_call_due(),
        )  # fmt: skip

    return api
