"""Signing in and out, and choosing the language."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
import asyncio
import logging
import secrets
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from services.console.i18n import LANGUAGES
from services.console.oidc import PENDING_SECONDS, SignOn, SignOnRefused
from services.console.sessions import Attempts
from services.console.web import SESSION_COOKIE, STALE_FORM, Pages, form_of, local_path, see_other
from shared.passwords import check_password

# The sign-in form's CSRF token: the same random value in a cookie and in the form (no session yet).
SIGN_IN_COOKIE = "kizuki_console_sign_in"
WRONG = "The staff id or the password is wrong."
TOO_MANY = "Too many attempts: wait a few minutes and try again."
EXPIRED = "Your sign-in form expired: please try again."
SIGN_ON_FAILED = "The hospital's sign-on did not sign you in: try again, or use your password."
SIGN_ON_COOKIE = "kizuki_console_sign_on"
log = logging.getLogger(__name__)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def open_session(pages: Pages, request: Request, response: Response, staff_id: str, language: str) -> None:
    """The session cookie of a person whose identity is proven (a password, the hospital's sign-on)."""
    session_id = pages.sessions.start(staff_id, language)
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=_secure(request))


def router(
    pages: Pages, passwords: Path, attempts: Attempts, default_language: str, sign_on: SignOn | None = None
) -> APIRouter:
    """``sign_on``: the hospital's OpenID Connect sign-on, offered beside the password."""
    api = APIRouter(include_in_schema=False)

    def language_of(request: Request) -> str:
        """Before anyone is known: the one chosen on the page, else the browser's, else the policy's."""
        asked = request.query_params.get("lang", "")
        if asked in LANGUAGES:
            return asked
        browser = [
            tag.split(";")[0].strip()[:2].lower()
            for tag in request.headers.get("accept-language", "").split(",")
        ]
        return next((tag for tag in browser if tag in LANGUAGES), default_language)

    def sign_in_page(request: Request, message: str = "", status: int = 200, staff_id: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        language = language_of(request)
        page = pages.render(
            "sign_in.html",
            language,
            None,
            status,
            csrf=token,
            message=message,
            staff_id=staff_id,
            sign_on=sign_on is not None,
        )
        page.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request))
        return page

    @api.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_form(request: Request) -> Response:
        return sign_in_page(request)

    @api.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        form = await form_of(request)
        staff_id, password = form.get("staff_id", "").strip(), form.get("password", "")
        expected = request.cookies.get(SIGN_IN_COOKIE)
        if not expected or not secrets.compare_digest(expected, form.get("csrf", "")):
            return sign_in_page(request, EXPIRED, 403, staff_id)
        client = f"client:{request.client.host if request.client else '?'}"
        if attempts.blocked(f"staff:{staff_id}", client):
            return sign_in_page(request, TOO_MANY, 429, staff_id)
        member = pages.directory.staff.get(staff_id)
        if not await asyncio.to_thread(check_password, passwords, staff_id, password) or member is None:
            attempts.failed(f"staff:{staff_id}", client)
            return sign_in_page(request, WRONG, 401, staff_id)
        response = see_other("/")
        open_session(pages, request, response, staff_id, member.language)
        response.delete_cookie(SIGN_IN_COOKIE)
        return response

    @api.get("/sign-in/oidc")
    async def leave_for_sign_on(request: Request) -> Response:
        if sign_on is None:
            raise HTTPException(404, detail="this console has no sign-on: sign in with your password")
        try:
            url, state = await sign_on.start()
        except SignOnRefused as refused:
            log.warning("the hospital's sign-on cannot be used: %s", refused)
            return sign_in_page(request, SIGN_ON_FAILED, 502)
        response = see_other(url)
        # Lax, not Strict: it must come back with the sign-on's redirect, a navigation from its site.
        response.set_cookie(
            SIGN_ON_COOKIE,
            state,
            max_age=PENDING_SECONDS,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        return response

    @api.get("/sign-in/oidc/callback", response_class=HTMLResponse)
    async def back_from_sign_on(request: Request) -> Response:
        if sign_on is None:
            raise HTTPException(404, detail="this console has no sign-on: sign in with your password")
        state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        expected = request.cookies.get(SIGN_ON_COOKIE, "")
        try:
            if not state or not secrets.compare_digest(expected, state):
                raise SignOnRefused("the answer is not for this browser's sign-in (state)")
            staff_id = await sign_on.finish(state, code)
            member = pages.directory.staff.get(staff_id)
            if member is None:
                raise SignOnRefused(f"{staff_id} is not in the staff directory")
        except SignOnRefused as refused:
            log.warning("sign-on refused: %s", refused)
            return sign_in_page(request, SIGN_ON_FAILED, 401)
        # A page of the console's own, not a redirect: the session cookie is SameSite=Strict, and a
        # redirect chain that began on the sign-on's site would not send it.
        response = pages.render("signed_in.html", member.language, None)
        open_session(pages, request, response, staff_id, member.language)
        response.delete_cookie(SIGN_ON_COOKIE)
        return response

    @api.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        form = await form_of(request)
        session = pages.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None and not session.checks(form.get("csrf")):
            raise HTTPException(403, detail=STALE_FORM)
        pages.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = see_other("/sign-in")
        response.delete_cookie(SESSION_COOKIE)
        return response

    @api.post("/language")
    async def choose_language(request: Request) -> Response:
        session = pages.session(request)
        form = await form_of(request)
        if session.checks(form.get("csrf")) and form.get("language") in LANGUAGES:
            session.language = form["language"]
        return see_other(local_path(form.get("next")))

    return api
