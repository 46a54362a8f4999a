"""Builds the followup service from the settings."""

from __future__ import annotations

from fastapi import FastAPI

from services.followup.api import router
from services.followup.application import FollowupApplication
from services.followup.handlers import consumers
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
    store = open_store(FollowupApplication, settings)
    store.index_earlier_callbacks()
    vault = KeyVault(MasterKey.load(settings.master_key))  # for the patient's words on callbacks
    runtime = ServiceRuntime(
        settings, store, consumers(store, policy, directory, settings.timer_clock_skew), vault=vault
    )
    app = http_app("kizuki followup", runtime)
    auth = Authenticator.from_settings(settings, directory)
    app.include_router(router(store, policy, directory, auth, vault))
    return app
