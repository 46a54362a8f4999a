"""Builds the intake service from the settings."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.api import router
from services.intake.application import IntakeApplication
from shared.auth import Authenticator
from shared.directory import load_directory
from shared.policy import load_policy
from shared.service import ServiceRuntime, http_app, open_store
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)
    directory = load_directory(settings.directory_path)
    store = open_store(IntakeApplication, settings)
    runtime = ServiceRuntime(settings, store, consumers=[])
    app = http_app("kizuki intake", runtime)
    app.include_router(
        router(
            store,
            runtime,
            policy.intake.default_language,
            Authenticator.from_settings(settings, directory),
            directory,
        )
    )
    return app
