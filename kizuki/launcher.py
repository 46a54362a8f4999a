"""`kizuki run`: the whole system on one machine, as separate processes, until Ctrl-C or SIGTERM.

Every process is supervised: the embedded nats-server and each service are started again when they die
(same configuration, same data), and the services reconnect to the bus by themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Mapping
from functools import partial
from types import FrameType

from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import Supervised, start_nats, start_service, stop, wait_healthy
from kizuki.provision import provision_bus, provision_secrets
from kizuki.server_config import channels_with_credentials, write_server_config
from shared.settings import SERVICES, Settings

# Replica i (from 1) of a service listens on its port (HTTP, and intake's SMTP) plus i times this.
REPLICA_PORT_STEP = 100


class ReplicasRefused(ValueError):
    """Replicas were asked for that this configuration cannot run."""


def check_replicas(settings: Settings) -> None:
    """More than one process of a service shares its store: only PostgreSQL can be shared."""
    several = sorted(service for service, count in settings.replicas.items() if count > 1)
    if several and settings.store != "postgres":
        raise ReplicasRefused(
            f"kizuki: replicas of {', '.join(several)} need PostgreSQL stores: a SQLite store is a file "
            "that one process opens. Set KIZUKI_STORE=postgres and KIZUKI_POSTGRES_HOST, _PORT, _USER, "
            "_PASSWORD, _DBNAME, or run one process of each service."
        )


def replica_env(settings: Settings, env: Mapping[str, str], service: str, replica: int) -> dict[str, str]:
    """The environment of one replica: replica 0 as configured, replica i on ports moved by i x 100."""
    if replica == 0:
        return dict(env)
    shift = REPLICA_PORT_STEP * replica
    moved = {f"KIZUKI_{service.upper()}_PORT": str(settings.http_ports[service] + shift)}
    if service == "intake":
        moved["KIZUKI_INTAKE_SMTP_PORT"] = str(settings.smtp_port + shift)
    return dict(env) | moved


def replica_name(service: str, replica: int) -> str:
    return service if replica == 0 else f"{service}-{replica + 1}"


def run_system(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    env = dict(os.environ if env is None else env)
    check_replicas(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        print(f"\nkizuki: {signal.Signals(signum).name} received, stopping", flush=True)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    nats: Supervised | None = None
    services: dict[str, Supervised] = {}
    intake_smtp: list[str] = []
    try:
        provision_secrets(settings)
        if settings.embedded_nats:
            config = write_server_config(settings)
            nats = Supervised(
                "nats-server",
                partial(start_nats, settings.nats_port, settings.nats_dir, logs / "nats-server.log", config),
            )
            print(f"kizuki: nats-server (JetStream) on {settings.bus_url}, data in {settings.nats_dir}")
            print(f"kizuki: each service has its own NATS credential, in {settings.nats_credentials}")
        else:
            print(f"kizuki: using the NATS server at {settings.bus_url}")
        asyncio.run(provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR)))
        print("kizuki: the record EVENTS, each service's TIMERS_<SERVICE> and the consumers are provisioned")
        print(f"kizuki: every service has its signing key; auditors pin {settings.trust_file}")
        # The first process of each service makes its tables; the other replicas start once it is up.
        for replica in range(max(settings.replicas.values(), default=1)):
            started = []
            for service in SERVICES:
                if replica >= settings.replicas.get(service, 1):
                    continue
                name = replica_name(service, replica)
                replica_env_ = replica_env(settings, env, service, replica)
                services[name] = Supervised(
                    name, partial(start_service, service, replica_env_, logs / f"{name}.log")
                )
                shift = REPLICA_PORT_STEP * replica
                started.append((name, f"http://{settings.http_host}:{settings.http_ports[service] + shift}"))
                if service == "intake":
                    intake_smtp.append(f"{settings.http_host}:{settings.smtp_port + shift}")
            for name, url in started:
                wait_healthy(url, services[name].process)
                print(f"kizuki: {name:<10} {url}  (log: {logs / name}.log)")
        print(f"kizuki: intake SMTP receiver on {', '.join(intake_smtp)}")
        print(f"kizuki: staff sign in at {settings.http_url('console')} (kizuki password STAFF_ID sets one)")
        print("kizuki: ready. Ctrl-C stops everything.", flush=True)
        channels = _channels(settings)
        while not stopping.wait(0.5):
            if nats is not None:
                channels = users_reloaded_for_new_channels(settings, nats, channels)
            for supervised in [nats, *services.values()]:
                if supervised is not None and not stopping.is_set():
                    supervised.check()
    finally:
        for supervised in services.values():  # all at once, then wait for each
            if supervised.process.poll() is None:
                supervised.process.send_signal(signal.SIGTERM)
        for supervised in services.values():
            stop(supervised.process)
        if nats is not None:
            stop(nats.process)
        print("kizuki: stopped", flush=True)


def _channels(settings: Settings) -> list[str]:
    credentials = settings.nats_credentials
    return channels_with_credentials(credentials) if credentials is not None else []


def users_reloaded_for_new_channels(settings: Settings, nats: Supervised, known: list[str]) -> list[str]:
    """When a channel's credential is made (`kizuki channel-credential`) or its file removed while the
    system runs, the server's configuration is written again and nats-server reloads it (SIGHUP), so
    the channel may publish within a second, or no longer may, without a restart."""
    channels = _channels(settings)
    if channels != known:
        write_server_config(settings)
        nats.process.send_signal(signal.SIGHUP)
        print(
            f"kizuki: nats-server reloaded its users; channels: {', '.join(channels) or 'none'}", flush=True
        )
    return channels
