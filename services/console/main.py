"""Builds the console from the settings."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console import (
    actions,
    analysis,
    auditing,
    callbacks,
    erasure,
    oversight,
    pages,
    register,
    signin,
    status,
)
from services.console.application import ConsoleApplication
from services.console.duty_metrics import duty_figures
from services.console.gateway import Gateway
from services.console.handlers import consumers
from services.console.live import ChangeFeed
from services.console.oidc import SignOn
from services.console.record_desk import RecordDesk
from services.console.replicas import OtherReplicas
from services.console.sessions import Attempts, Sessions
from services.console.web import SESSION_COOKIE, Pages, SignInRequired, security_headers, see_other
from shared.directory import watch_directory
from shared.policy import load_policy
from shared.runtime import ServiceRuntime, Worker, open_store
from shared.service import http_app
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)
    directory = watch_directory(settings.directory_path)
    store = open_store(ConsoleApplication, settings)
    feed = ChangeFeed()
    # With PostgreSQL, other replicas of the console may share the store: what they store is read too.
    workers: list[Worker] = [feed, OtherReplicas(store, feed)] if settings.postgres is not None else [feed]
    runtime = ServiceRuntime(
        settings, store, consumers(store), workers=workers, measures=[duty_figures(store)]
    )
    app = http_app("kizuki console", runtime)
    app.middleware("http")(security_headers)
    view = Pages(Sessions(), directory, policy.escalation.calendar.timezone, feed)
    language = policy.intake.default_language  # of pages shown before anyone is known

    async def to_sign_in(_: Request, __: Exception) -> Response:
        return see_other("/sign-in")

    async def explain(request: Request, error: Exception) -> Response:
        """The console's own refusals as a page, in the person's language."""
        assert isinstance(error, StarletteHTTPException)
        session = view.sessions.get(request.cookies.get(SESSION_COOKIE))
        shown = session.language if session else language
        return view.render("message.html", shown, session, error.status_code, message=str(error.detail))

    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(StarletteHTTPException, explain)
    client = httpx.AsyncClient(timeout=10)
    gateway = Gateway(settings, directory, client)
    sign_on = SignOn(settings.console_oidc, client) if settings.console_oidc else None
    app.include_router(signin.router(view, settings.console_passwords, Attempts(), language, sign_on))
    app.include_router(pages.router(view, store, gateway))
    app.include_router(callbacks.router(view, store))
    app.include_router(actions.router(view, store, gateway))
    app.include_router(register.router(view, store, gateway))
    app.include_router(oversight.router(view, store))
    desk = RecordDesk(settings)
    app.include_router(auditing.router(view, desk))
    app.include_router(analysis.router(view, desk, policy))
    app.include_router(status.router(view, gateway, desk))
    app.include_router(erasure.router(view, store, gateway))
    return app
