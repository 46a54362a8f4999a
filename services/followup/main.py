"""Builds the followup service from the settings."""

from __future__ import annotations

from fastapi import FastAPI

from services.followup.api import router
from services.followup.application import FollowupApplication
from services.followup.handlers import consumers
from shared.auth import Authenticator
from shared.directory import load_directory
from shared.policy import load_policy
from shared.service import ServiceRuntime, http_app, open_store
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)
    directory = load_directory(settings.directory_path)
    store = open_store(FollowupApplication, settings)
    runtime = ServiceRuntime(settings, store, consumers(store, policy, directory))
    app = http_app("kizuki followup", runtime)
    app.include_router(
        router(store, runtime, policy, directory, Authenticator.from_settings(settings, directory))
    )
    return app
