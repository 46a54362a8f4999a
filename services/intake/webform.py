"""The public complaint form, served by intake: no sign-in, a limit per client, one complaint per form."""

# Without `from __future__ import annotations`: FastAPI reads these signatures.
import asyncio
import base64
import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import HTMLResponse

from services.intake.application import IntakeApplication
from services.intake.domain import CLOCK_SKEW, Registration
from services.intake.limits import MAX_FIELD, MAX_SUMMARY, contact_problem
from services.intake.pages import (
    STYLE,
    TEXTS,
    choose_language,
    form_page,
    received_page,
    refused_page,
)
from services.intake.ratelimit import RateLimiter
from shared.policy import WebForm
from shared.timers import now

FORM_ID = re.compile(r"^[0-9a-f]{32}$")
# The pages run no script and load nothing: the browser is told so, and allows only the page's own
# style sheet (by its hash) and posting the form back here.
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def problems(
    values: dict[str, str], web: WebForm, local: ZoneInfo, language: str, at: datetime
) -> dict[str, str]:
    """A message for each field that needs another look, in the page's language."""
    text = TEXTS[language]
    found: dict[str, str] = {}
    if values.get("department") not in web.inboxes:
        found["department"] = text["unknown_department"]
    try:
        occurred = occurred_at(values.get("occurred_at", ""), local)
        if occurred > at + CLOCK_SKEW:
            found["occurred_at"] = text["future"]
    except ValueError:
        found["occurred_at"] = text["bad_time"]
    if not values.get("summary", "").strip():
        found["summary"] = text["required"]
    elif len(values["summary"].strip()) > MAX_SUMMARY:
        found["summary"] = text["too_long"]
    for name in ("name", "contact"):
        if len(values.get(name, "")) > MAX_FIELD:
            found[name] = text["too_long"]
    contact = values.get("contact", "").strip()
    if "contact" not in found and contact and contact_problem(contact) is not None:
        found["contact"] = text["one_contact"]
    return found


def occurred_at(value: str, local: ZoneInfo) -> datetime:
    """A browser's datetime-local value is the hospital's local time."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=local)


def router(store: IntakeApplication, web: WebForm, timezone: str, default_language: str) -> APIRouter:
    api = APIRouter(tags=["web form"])
    local = ZoneInfo(timezone)
    limiter = RateLimiter(web.submissions_per_client, timedelta(seconds=web.period_seconds))
    departments = list(web.inboxes)

    def page(language: str, html: str, status_code: int = status.HTTP_200_OK) -> HTMLResponse:
        headers = {"Content-Language": language, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
        return HTMLResponse(html, status_code, headers=headers)

    @api.get("/form", response_class=HTMLResponse)
    async def form(
        department: Annotated[str | None, Query(max_length=MAX_FIELD)] = None,
        lang: Annotated[str | None, Query(max_length=10)] = None,
        accept_language: Annotated[str | None, Header(max_length=500)] = None,
    ) -> HTMLResponse:
        """The form in the language asked for, or the browser's; the department prefilled from a ward's QR
        code."""
        language = choose_language(lang, accept_language, default_language)
        values = {
            "department": department or "",
            "occurred_at": now().astimezone(local).strftime("%Y-%m-%dT%H:%M"),
        }
        return page(
            language, form_page(language, departments, values, {}, secrets.token_hex(16), MAX_SUMMARY)
        )

    @api.post("/form", response_class=HTMLResponse)
    async def send(
        request: Request, accept_language: Annotated[str | None, Header(max_length=500)] = None
    ) -> HTMLResponse:
        """A complaint from the form; sending the same form twice registers it once."""
        try:
            fields = parse_qs((await request.body()).decode(), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return page(
                default_language,
                refused_page(default_language, "not a form submission"),
                status.HTTP_400_BAD_REQUEST,
            )
        values = {name: given[0] for name, given in fields.items()}
        language = choose_language(values.get("lang"), accept_language, default_language)
        form_id = values.get("form_id", "")
        if not FORM_ID.match(form_id):
            return page(
                language, refused_page(language, "not a form submission"), status.HTTP_400_BAD_REQUEST
            )
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client, now()):
            return page(
                language,
                refused_page(language, TEXTS[language]["too_many"]),
                status.HTTP_429_TOO_MANY_REQUESTS,
            )
        found = problems(values, web, local, language, now())
        if found:
            html = form_page(language, departments, values, found, form_id, MAX_SUMMARY)
            return page(language, html, status.HTTP_422_UNPROCESSABLE_CONTENT)
        department = values["department"]
        registration = Registration(
            channel="web",
            occurred_at=occurred_at(values["occurred_at"], local),
            heard_by=web.inboxes[department],
            department=department,
            summary=values["summary"],
            complainant_name=values.get("name", "").strip() or None,
            complainant_contact=values.get("contact", "").strip() or None,
            category=None,
            tier=None,
            language=language,
        )
        receipt = await asyncio.to_thread(store.receive, f"web:{form_id}", registration, now())
        if receipt.complaint_id is None:  # a rule of registration the checks above do not know
            html = refused_page(language, receipt.reason or "")
            return page(language, html, status.HTTP_422_UNPROCESSABLE_CONTENT)
        return page(language, received_page(language, receipt.complaint_id, department))

    return api
