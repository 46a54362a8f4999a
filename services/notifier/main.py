"""Builds the notifier service from the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from uuid import UUID

from fastapi import FastAPI

from services.notifier.api import router
from services.notifier.application import NotifierApplication
from services.notifier.channels import Channel, ChannelError, ChannelsFile, load_channels, secret_from
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import consumers
from services.notifier.links import LinkSigner
from services.notifier.mail import SmtpChannel
from services.notifier.sink import FileSink
from services.notifier.webhooks import HttpChannel, SmsChannel, WebhookChannel, basic_auth
from shared.directory import watch_directory
from shared.lease import open_lease
from shared.policy import load_policy
from shared.privacy import KeyVault, MasterKey
from shared.runtime import REPLICAS_POLL_SECONDS, ServiceRuntime, open_store
from shared.service import http_app
from shared.settings import Settings
from shared.timers import now


def open_channels(config: ChannelsFile, settings: Settings, env: Mapping[str, str]) -> dict[str, Channel]:
    """The configured channels, by name; secrets come from the environment."""
    timeout = config.delivery.timeout_seconds
    opened: dict[str, Channel] = {}
    for name, channel in config.channels.items():
        what = f"channel {name!r}"
        if channel.kind == "file":
            opened[name] = FileSink(channel.directory or settings.service_dir("notifier") / "sink")
        elif channel.kind == "smtp":
            opened[name] = SmtpChannel(channel, secret_from(env, channel.password_env, what), timeout)
        elif channel.kind == "webhook":
            url = channel.url or secret_from(env, channel.url_env, what)
            if url is None:
                raise ChannelError(f"{what} needs url or url_env")
            token = secret_from(env, channel.token_env, what)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            opened[name] = WebhookChannel(HttpChannel(url, headers, timeout), channel.format)
        else:
            password = secret_from(env, channel.password_env, what)
            headers = basic_auth(channel.username, password or "") if channel.username else {}
            opened[name] = SmsChannel(HttpChannel(channel.url, headers, timeout), channel)
    return opened


def create_app(settings: Settings, env: Mapping[str, str] = os.environ) -> FastAPI:
    directory = watch_directory(settings.directory_path)
    policy = load_policy(settings.policy_path)
    config = load_channels(settings.channels_path)
    signer = LinkSigner.from_file(settings.ack_link_secret)
    channels = open_channels(config, settings, env)
    store = open_store(NotifierApplication, settings)
    link_lifetime = timedelta(hours=config.delivery.link_lifetime_hours)

    def acknowledge_link(delivery_id: UUID) -> str:
        token = signer.token(delivery_id, now() + link_lifetime)
        return f"{settings.public_url('notifier')}/ack/{token}"

    vault = KeyVault(MasterKey.load(settings.master_key))
    sinks = [channel for channel in channels.values() if isinstance(channel, FileSink)]

    lease = open_lease(settings.postgres, NotifierApplication.service, "dispatcher", settings.lease_seconds)
    dispatcher = Dispatcher(
        store, channels, config.delivery, vault, lease=lease, in_flight=config.in_flight()
    )
    if settings.postgres is not None:  # another replica's consumer may store what it is to deliver
        dispatcher.poll_interval = REPLICAS_POLL_SECONDS
    runtime = ServiceRuntime(
        settings,
        store,
        consumers(store, policy, directory, channels.keys(), acknowledge_link, vault, sinks),
        vault=vault,
        workers=[dispatcher],
    )
    app = http_app("kizuki notifier", runtime)
    app.include_router(router(store, signer))
    return app
