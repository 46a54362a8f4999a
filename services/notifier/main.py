"""Builds the notifier service from the settings."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifier.application import NotifierApplication
from services.notifier.handlers import consumers
from services.notifier.sink import FileSink
from shared.directory import load_directory
from shared.privacy import KeyVault, MasterKey
from shared.service import ServiceRuntime, http_app, open_store
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    directory = load_directory(settings.directory_path)
    store = open_store(NotifierApplication, settings)
    sink = FileSink(settings.service_dir("notifier") / "sink")
    vault = KeyVault(MasterKey.load(settings.master_key))
    runtime = ServiceRuntime(settings, store, consumers(store, directory, sink, vault), vault)
    return http_app("kizuki notifier", runtime)
