"""Builds the console from the settings."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request, Response

from services.console import actions, pages, register, signin
from services.console.application import ConsoleApplication
from services.console.gateway import Gateway
from services.console.handlers import consumers
from services.console.live import ChangeFeed
from services.console.sessions import Attempts, Sessions
from services.console.web import Pages, SignInRequired, security_headers, see_other
from shared.directory import load_directory
from shared.policy import load_policy
from shared.service import ServiceRuntime, http_app, open_store
from shared.settings import Settings


def create_app(settings: Settings, sessions: Sessions | None = None) -> FastAPI:
    policy = load_policy(settings.policy_path)
    directory = load_directory(settings.directory_path)
    store = open_store(ConsoleApplication, settings)
    feed = ChangeFeed()
    runtime = ServiceRuntime(settings, store, consumers(store), workers=[feed])
    app = http_app("kizuki console", runtime)
    app.middleware("http")(security_headers)

    async def to_sign_in(_: Request, __: Exception) -> Response:
        return see_other("/sign-in")

    app.add_exception_handler(SignInRequired, to_sign_in)
    view = Pages(sessions or Sessions(), directory, policy.escalation.calendar.timezone, directory.executives)
    gateway = Gateway(settings, directory, httpx.AsyncClient(timeout=10))
    app.include_router(
        signin.router(view, settings.console_passwords, Attempts(), policy.intake.default_language)
    )
    app.include_router(pages.router(view, store, feed))
    app.include_router(actions.router(view, store, gateway))
    app.include_router(register.router(view, store, gateway, feed))
    return app
