"""The forms people post: each is carried out by the owning service's API with their own token, and
the service's refusal is shown in the person's language (see ``refusals``)."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
from typing import Any, get_args
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response

from services.console.application import ConsoleApplication
from services.console.callbacks import callbacks_page
from services.console.gateway import Gateway
from services.console.pages import case_page
from services.console.sessions import Session
from services.console.web import STALE_FORM, Pages, form_of, local_path, see_other
from shared.events import DutyKind

DUTY_KINDS: tuple[str, ...] = get_args(DutyKind)

# The form's path under /cases/<id>/ → escalation's path under /v1/cases/<id>/.
ESCALATION_PATHS = {
    "acknowledge": "duties/{duty}/acknowledge",
    "report": "reports",
    "first-response": "first-response",
    "feedback": "patient-feedback",
    "corrective-measure": "corrective-measure",
    "harassment-assessment": "harassment-assessment",
    "close": "close",
}


def escalation_body(action: str, form: dict[str, str]) -> dict[str, Any] | None:
    if action == "report":
        return {"to": form.get("to", ""), "text": form.get("text", "")}
    if action == "first-response":
        return {"patient_reached": form.get("patient_reached") == "yes", "notes": form.get("notes", "")}
    if action == "harassment-assessment":
        criteria = ("demand_valid", "means_appropriate", "impact_on_staff")
        return {criterion: form.get(criterion) == "yes" for criterion in criteria}
    if action == "corrective-measure":
        return {"measure": form.get("measure", ""), "responsible": form.get("responsible", "")}
    return None


def followup_body(outcome: str, form: dict[str, str]) -> dict[str, Any]:
    if outcome == "outcome":
        return {
            "satisfaction": form.get("satisfaction", ""),
            "resolved": form.get("resolved") == "yes",
            "comments": form.get("comments", ""),
        }
    return {"notes": form.get("notes", "")}


def router(pages: Pages, store: ConsoleApplication, gateway: Gateway) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    async def checked_form(request: Request) -> tuple[Session, dict[str, str]]:
        session = pages.session(request)
        form = await form_of(request)
        if not session.checks(form.get("csrf")):
            raise HTTPException(403, detail=STALE_FORM)
        return session, form

    @api.post("/cases/{complaint_id}/{action}")
    async def act(request: Request, complaint_id: UUID, action: str) -> Response:
        if action not in ESCALATION_PATHS:
            raise HTTPException(404, detail=f"no action {action}")
        session, form = await checked_form(request)
        duty = form.get("duty", "")
        if action == "acknowledge" and duty not in DUTY_KINDS:
            raise HTTPException(422, detail=f"duty: one of {', '.join(DUTY_KINDS)}")
        path = f"/v1/cases/{complaint_id}/" + ESCALATION_PATHS[action].format(duty=duty)
        outcome = await gateway.post("escalation", path, session.staff_id, escalation_body(action, form))
        if not outcome.ok:
            return await case_page(
                pages, store, gateway, session, complaint_id, outcome.refusal, outcome.status
            )
        return see_other(local_path(form.get("next"), f"/cases/{complaint_id}"))

    @api.post("/cases/{complaint_id}/callbacks/{callback_id}/{outcome}")
    async def call_back(request: Request, complaint_id: UUID, callback_id: UUID, outcome: str) -> Response:
        if outcome not in ("outcome", "not-reached"):
            raise HTTPException(404, detail=f"no callback action {outcome}")
        session, form = await checked_form(request)
        path = f"/v1/callbacks/{callback_id}/{outcome}"
        answer = await gateway.post("followup", path, session.staff_id, followup_body(outcome, form))
        if not answer.ok and local_path(form.get("next")).startswith("/callbacks"):
            return callbacks_page(pages, store, session, answer.refusal, answer.status)
        if not answer.ok:
            return await case_page(
                pages, store, gateway, session, complaint_id, answer.refusal, answer.status
            )
        return see_other(local_path(form.get("next"), f"/cases/{complaint_id}"))

    return api
