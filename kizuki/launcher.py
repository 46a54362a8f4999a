"""`kizuki run`: the whole system on one machine, as separate processes, until Ctrl-C or SIGTERM.

Every process is supervised: the embedded nats-server and each service are started again when they die
(same configuration, same data), and the services reconnect to the bus by themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from types import FrameType

from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import Supervised, start_nats, start_service, stop, wait_healthy
from kizuki.provision import provision_bus, provision_secrets
from kizuki.server_config import channels_with_credentials, write_server_configs
from shared.settings import SERVICES, NatsNode, Settings, SettingsError

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

    nats: list[Supervised] = []
    services: dict[str, Supervised] = {}
    intake_smtp: list[str] = []
    try:
        provision_secrets(settings)
        if settings.embedded_nats:
            check_store_shape(settings)
            nodes = write_server_configs(settings)
            for node in nodes:
                nats.append(Supervised(_process_name(node, nodes), partial(_start_node, node, nodes, logs)))
            if len(nodes) == 1:
                print(f"kizuki: nats-server (JetStream) on {settings.bus_url}, data in {settings.nats_dir}")
            else:
                print(f"kizuki: a JetStream cluster of {len(nodes)} nats-servers, routes on loopback:")
                for node in nodes:
                    routes = f"routes on {node.route_port}"
                    print(f"kizuki:   {node.name} on {node.url}, {routes}, data in {node.store_dir}")
            print(f"kizuki: each service has its own NATS credential, in {settings.nats_credentials}")
        else:
            print(f"kizuki: using the NATS server(s) at {settings.bus_url}")
        asyncio.run(provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR), settings.nats_replicas))
        copies = f"{settings.nats_replicas} {'replica' if settings.nats_replicas == 1 else 'replicas'}"
        print(
            "kizuki: the record EVENTS, each service's TIMERS_<SERVICE> and the consumers are provisioned"
            f" ({copies} of each stream)"
        )
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
            if nats:
                channels = users_reloaded_for_new_channels(settings, nats, channels)
            for supervised in [*nats, *services.values()]:
                if not stopping.is_set():
                    supervised.check()
    finally:
        for supervised in services.values():  # all at once, then wait for each
            if supervised.process.poll() is None:
                supervised.process.send_signal(signal.SIGTERM)
        for supervised in services.values():
            stop(supervised.process)
        for supervised in nats:
            stop(supervised.process)
        print("kizuki: stopped", flush=True)


def _process_name(node: NatsNode, nodes: list[NatsNode]) -> str:
    return "nats-server" if len(nodes) == 1 else f"nats-server {node.name}"


def _start_node(node: NatsNode, nodes: list[NatsNode], logs: Path) -> subprocess.Popen[bytes]:
    """One embedded nats-server, with the configuration written for it (the same at every restart)."""
    log = logs / ("nats-server.log" if len(nodes) == 1 else f"nats-server-{node.name}.log")
    return start_nats(node.port, node.store_dir, log, node.config, node.name)


def check_store_shape(settings: Settings) -> None:
    """Refuses to start a cluster over a single server's store, or a single server over a cluster's:
    either would start with an empty record beside the one kept (which stays, untouched)."""
    single = settings.nats_dir / "jetstream"
    clustered = sorted(settings.nats_dir.glob("node-*/jetstream"))
    if settings.nats_cluster > 1 and single.exists():
        raise SettingsError(
            f"KIZUKI_NATS_CLUSTER={settings.nats_cluster}, but {single} holds a single server's record: a "
            "cluster would start without it; leave KIZUKI_NATS_CLUSTER at 1, or move the data directory away"
        )
    if settings.nats_cluster == 1 and clustered:
        raise SettingsError(
            f"{clustered[0].parent} holds a cluster node's record: set KIZUKI_NATS_CLUSTER as it was"
        )


def _channels(settings: Settings) -> list[str]:
    credentials = settings.nats_credentials
    return channels_with_credentials(credentials) if credentials is not None else []


def users_reloaded_for_new_channels(
    settings: Settings, nats: list[Supervised], known: list[str]
) -> list[str]:
    """When a channel's credential is made (`kizuki channel-credential`) or its file removed while the
    system runs, each server's configuration is written again and every nats-server reloads it
    (SIGHUP), so the channel may publish within a second, or no longer may, without a restart."""
    channels = _channels(settings)
    if channels != known:
        write_server_configs(settings)
        for node in nats:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGHUP)
        print(
            f"kizuki: nats-server reloaded its users; channels: {', '.join(channels) or 'none'}", flush=True
        )
    return channels
