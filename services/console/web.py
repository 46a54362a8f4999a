"""What every console page shares: templates in the person's language, the session cookie, the CSRF
check, form bodies, and the headers that keep the pages to themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.console import labels, roles
from services.console.i18n import LANGUAGE_NAMES, LANGUAGES, Clock, translations
from services.console.index import OPEN_CALLBACK
from services.console.live import ChangeFeed
from services.console.sessions import Session, Sessions
from services.console.work import ACTION_FOR_DUTY, time_left
from shared.auth import WRITERS
from shared.directory import Directory, Role
from shared.live_file import LiveFile
from shared.reference import reference_of
from shared.timers import now

SESSION_COOKIE = "kizuki_console"
# Nothing from outside, no inline script or style: the console's own files only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


STALE_FORM = "This form is out of date: open the page again."
NOT_AN_ID = "A complaint id looks like 8-4-4-4-12 hexadecimal digits."


class SignInRequired(Exception):
    """No open session: the person is sent to the sign-in page."""


@dataclass(frozen=True)
class Pages:
    """Renders pages for the person signed in (or for no one, on the sign-in page)."""

    sessions: Sessions
    staff_file: LiveFile[Directory]
    timezone: str
    feed: ChangeFeed  # its version is each page's: live updates start from the page's own

    @property
    def directory(self) -> Directory:
        """The directory in force: read again when its file changes, without a restart."""
        return self.staff_file.current

    def session(self, request: Request) -> Session:
        """The person's open session; one whose person has left the directory is no longer one."""
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None or session.staff_id not in self.directory.staff:
            raise SignInRequired
        return session

    def session_of(self, request: Request, allowed: frozenset[Role]) -> Session:
        """The session of a person holding one of the ``allowed`` roles; anyone else gets a 403 page."""
        session = self.session(request)
        member = self.directory.staff.get(session.staff_id)
        if member is None or allowed.isdisjoint(member.roles):
            raise HTTPException(403, detail=roles.NOT_FOR_YOUR_ROLE)
        return session

    def reach(self, session: Session | None) -> dict[str, Any]:
        """What the navigation offers: the pages of the person's roles, and whether they only read."""
        held = set(self.directory.staff[session.staff_id].roles) if session else set()
        return {
            "links": [path for path, allowed in roles.PAGES.items() if not allowed.isdisjoint(held)],
            "read_only": bool(held) and WRITERS.isdisjoint(held),  # the auditor: nothing to register
        }

    def render(
        self,
        template: str,
        language: str,
        session: Session | None,
        status: int = 200,
        here: str = "/",
        **values: Any,
    ) -> HTMLResponse:
        """``here``: the page's path, where switching the language comes back to. ``version``: the
        feed's version before the read model was read (by default now, when nothing was awaited since)."""
        texts = translations(language)
        values.setdefault("version", self.feed.version)
        directory = self.directory
        page = _templates.get_template(template).render(
            _=texts.gettext,
            language=language,
            languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            session=session,
            person=directory.staff.get(session.staff_id) if session else None,
            staff=directory.staff,
            executives=directory.executives,
            action_for_duty=ACTION_FOR_DUTY,
            open_callback=OPEN_CALLBACK,
            labels=labels,
            **self.reach(session),
            clock=Clock(self.timezone, language),
            now=now(),
            here=here,
            time_left=time_left,
            reference=reference_of,
            said=lambda refusal: refusal.said(language),
            **values,
        )
        return HTMLResponse(page, status_code=status)

    def picture(self, template: str, language: str, **values: Any) -> Response:
        """An SVG drawn on the server, its words in the person's language."""
        texts = translations(language)
        drawn = _templates.get_template(template).render(_=texts.gettext, language=language, **values)
        return Response(drawn, media_type="image/svg+xml")


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form body: each field's first value."""
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def local_path(path: str | None, default: str = "/") -> str:
    """Where to go back to after a form: a path on the console itself, never another site."""
    on_this_site = path is not None and path.startswith("/") and not path.startswith(("//", "/\\"))
    return path if path is not None and on_this_site else default


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
