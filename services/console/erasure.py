"""The administrator's erasure of a complaint's patient data: asked for, confirmed with a reason,
then carried out by intake's API with the administrator's own token (intake decides and records it).

Intake's erasure takes no reason: the console asks for one so that nobody erases by a slip, and
keeps it only in the page it shows back."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from services.console import roles
from services.console.application import ConsoleApplication
from services.console.domain import Case
from services.console.gateway import Gateway
from services.console.refusals import Refusal
from services.console.sessions import Session
from services.console.web import NOT_AN_ID, STALE_FORM, Pages, form_of

NO_REASON = "Say why the patient data is erased."
NOT_CONFIRMED = "Tick the box to confirm: the patient data cannot be brought back."


def router(pages: Pages, store: ConsoleApplication, gateway: Gateway) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    def confirmation(
        session: Session,
        complaint_id: UUID | None,
        refusal: Refusal | None = None,
        status: int = 200,
        reason: str = "",
    ) -> Response:
        case: Case | None = None
        if complaint_id is not None:
            case = store.read(lambda cases: _facts(cases.get(complaint_id)))
        return pages.render(
            "erase.html",
            session.language,
            session,
            status,
            "/erase",
            complaint_id=complaint_id,
            case=case,
            refusal=refusal,
            reason=reason,
        )

    @api.get("/erase", response_class=HTMLResponse)
    async def ask(request: Request, complaint: str = "") -> Response:
        session = pages.session_of(request, roles.ERASURE)
        if not complaint:
            return confirmation(session, None)
        try:
            return confirmation(session, UUID(complaint.strip()))
        except ValueError:
            return confirmation(session, None, Refusal(NOT_AN_ID), 422)

    @api.post("/erase/{complaint_id}", response_class=HTMLResponse)
    async def erase(request: Request, complaint_id: UUID) -> Response:
        session = pages.session_of(request, roles.ERASURE)
        form = await form_of(request)
        if not session.checks(form.get("csrf")):
            raise HTTPException(403, detail=STALE_FORM)
        reason = form.get("reason", "").strip()
        if not reason:
            return confirmation(session, complaint_id, Refusal(NO_REASON), 422)
        if form.get("confirm") != "yes":
            return confirmation(session, complaint_id, Refusal(NOT_CONFIRMED), 422, reason)
        outcome = await gateway.post("intake", f"/v1/complaints/{complaint_id}/erase", session.staff_id)
        if not outcome.ok:
            return confirmation(session, complaint_id, outcome.refusal, outcome.status, reason)
        return pages.render(
            "erased.html", session.language, session, 200, "/erase", complaint_id=complaint_id, reason=reason
        )

    return api


def _facts(case: Case | None) -> Case | None:
    """What the confirmation shows of the case, copied out of the read model: no timeline."""
    if case is None:
        return None
    return Case(
        case.complaint_id,
        occurred_at=case.occurred_at,
        department=case.department,
        tier=case.tier,
        erased=case.erased,
        closed_at=case.closed_at,
    )
