"""Builds the escalation service from the settings."""

from __future__ import annotations

from fastapi import FastAPI

from services.escalation.api import router
from services.escalation.application import EscalationApplication
from services.escalation.handlers import consumers
from services.escalation.learning_api import router as learning_router
from shared.auth import Authenticator
from shared.directory import watch_directory
from shared.policy import load_policy
from shared.privacy import KeyVault, MasterKey
from shared.runtime import ServiceRuntime, open_store
from shared.service import http_app
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)
    directory = watch_directory(settings.directory_path)
    store = open_store(EscalationApplication, settings)
    vault = KeyVault(MasterKey.load(settings.master_key))
    runtime = ServiceRuntime(
        settings, store, consumers(store, policy, directory, vault, settings.timer_clock_skew), vault
    )
    app = http_app("kizuki escalation", runtime)
    auth = Authenticator.from_settings(settings, directory)
    app.include_router(router(store, directory, auth, vault, policy))
    app.include_router(learning_router(store, directory, auth, policy))
    return app
