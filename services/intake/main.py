"""Builds the intake service from the settings."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.intake import handlers, imports, webform, webhooks
from services.intake.api import router
from services.intake.application import IntakeApplication
from services.intake.mailbox import SmtpReceiver
from services.intake.matching import MatchIndex
from services.intake.trace_table import TraceTable
from shared.auth import Authenticator
from shared.directory import watch_directory
from shared.key_table import KeyTable, SQLiteKeyTable
from shared.policy import PolicyError, load_policy
from shared.privacy import IntakeKeys, KeyVault, MasterKey, read_key_file
from shared.runtime import ServiceRuntime, open_store
from shared.service import http_app
from shared.settings import Settings


def open_intake_store(settings: Settings) -> IntakeApplication:
    """The register, with intake's own copies of the complaints' keys and their traces beside it."""
    intake_dir = settings.service_dir("intake")
    keys = IntakeKeys(
        # Beside the store: in its PostgreSQL schema, where every replica finds them, or its SQLite file.
        KeyTable(settings.postgres, "intake")
        if settings.postgres is not None
        else SQLiteKeyTable(settings.store_file("intake")),
        MasterKey.load(settings.master_key),
        read_key_file(settings.reporter_key),
        files=intake_dir / "patient-keys",
    )
    policy = load_policy(settings.policy_path).intake
    # No lookup reaches further back than the longer of the two windows: older traces are deleted.
    kept = timedelta(seconds=max(policy.duplicate_window_seconds, policy.append_window_seconds))
    traces = TraceTable(settings.postgres, "intake") if settings.postgres is not None else None
    matches = MatchIndex(intake_dir / "traces", read_key_file(settings.match_key), kept, traces)
    return open_store(IntakeApplication, settings, keys=keys, matches=matches, policy=policy)


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)
    directory = watch_directory(settings.directory_path)
    unknown = policy.intake.inbox_owners() - set(directory.current.staff)
    if unknown:
        raise PolicyError(
            f"[intake] names first hearers not in the staff directory: {', '.join(sorted(unknown))}"
        )
    store = open_intake_store(settings)
    smtp = SmtpReceiver(store, policy.intake, settings.http_host, settings.smtp_port)
    runtime = ServiceRuntime(
        settings,
        store,
        consumers=handlers.consumers(store, policy.intake),
        vault=KeyVault(store.keys.master),
        workers=[smtp],
    )
    app = http_app("kizuki intake", runtime)
    auth = Authenticator.from_settings(settings, directory)
    app.include_router(router(store, policy.intake.default_language, auth, directory))
    app.include_router(
        webhooks.router(
            store,
            policy.intake,
            settings.line_channel_secret,
            settings.wechat_token,
            settings.wechat_aes_key,
            settings.wechat_plaintext,
        )
    )
    app.include_router(imports.router(store, policy.intake.default_language, auth))
    timezone = policy.escalation.calendar.timezone
    app.include_router(webform.router(store, policy.intake.web, timezone, policy.intake.default_language))
    return app
