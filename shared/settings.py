"""One settings object, read from the environment, for every process of the system."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from shared.bus import BusUser, server_urls
from shared.timers import DEFAULT_CLOCK_SKEW, MAX_CLOCK_SKEW

# The console is a service too: it keeps its own read model and records the messages it sets aside.
SERVICES = ("intake", "escalation", "notifier", "followup", "console")
DEFAULT_HTTP_PORTS = {"intake": 8001, "escalation": 8002, "notifier": 8003, "followup": 8004, "console": 8005}


class SettingsError(ValueError):
    """A setting in the environment has a value that cannot be used."""


# The embedded nats-server's name; each node of an embedded cluster adds its number (kizuki-1, ...).
NATS_SERVER_NAME = "kizuki"
CLUSTER_SIZES = (1, 3)
MAX_REPLICAS = 5  # JetStream's own limit


@dataclass(frozen=True)
class NatsNode:
    """One embedded nats-server: its name, its client and route ports on loopback, and its store."""

    name: str
    port: int
    route_port: int | None  # None: a single server, in no cluster
    store_dir: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        """Its configuration, written by kizuki at every start (see kizuki/server_config.py)."""
        return self.store_dir / "server.conf"


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    user: str
    password: str
    dbname: str


@dataclass(frozen=True)
class OidcSettings:
    """The hospital's OpenID Connect sign-on, for the console (authorization code with PKCE)."""

    issuer: str  # its discovery document is at <issuer>/.well-known/openid-configuration
    client_id: str
    client_secret_file: Path
    redirect_url: str  # the console's /sign-in/oidc/callback as the browser reaches it
    staff_claim: str  # the ID token's claim that carries the staff id


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    nats_port: int
    nats_url: str | None
    http_host: str
    http_ports: dict[str, int]
    smtp_port: int
    policy_path: Path
    directory_path: Path
    token_signing_key: Path
    token_verify_key: Path
    revoked_tokens_path: Path
    api_keys_path: Path
    master_key: Path
    reporter_key: Path
    channels_path: Path
    ack_link_secret: Path
    match_key: Path
    line_channel_secret: Path
    wechat_token: Path
    wechat_aes_key: Path
    console_passwords: Path
    # WeChat's plaintext mode signs the query but not the body: taken only when asked for.
    wechat_plaintext: bool = False
    notifier_public_url: str | None = None
    store: Literal["sqlite", "postgres"] = "sqlite"
    postgres: PostgresSettings | None = None
    nats_credentials: Path | None = None
    supplied_signing_keys: dict[str, Path] = field(default_factory=dict)
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 60.0
    timer_clock_skew: timedelta = DEFAULT_CLOCK_SKEW
    token_max_lifetime: timedelta = timedelta(hours=12)
    console_oidc: OidcSettings | None = None
    # /metrics and the timing of HTTP requests (KIZUKI_METRICS=off, e.g. to measure what they cost).
    metrics: bool = True
    # Where traces go (an OTLP/HTTP collector, http://host:4318); none: no traces.
    otlp_endpoint: str | None = None
    # How many embedded nats-servers run as one JetStream cluster (KIZUKI_NATS_CLUSTER), their client
    # ports from nats_port and their route ports from nats_route_port on; and how many copies of each
    # stream provisioning asks for (KIZUKI_NATS_REPLICAS; by default one on every embedded node).
    nats_cluster: int = 1
    nats_route_port: int = 6222
    nats_replicas: int = 1
    # How long a replica holds a lease (the relay's, the dispatcher's) without renewing it: a dead
    # holder's work waits about this long before another replica takes it over.
    lease_seconds: float = 5.0
    # `kizuki run`: how many processes of each service (1 unless named); more than one needs PostgreSQL.
    replicas: dict[str, int] = field(default_factory=dict)

    @property
    def bus_url(self) -> str:
        """Where the services connect: existing servers, or the embedded ones; several URLs are
        separated by commas (``server_urls`` in shared/bus.py makes the list a client takes)."""
        return self.nats_url or ",".join(node.url for node in self.nats_nodes)

    @property
    def bus_servers(self) -> list[str]:
        """Every server the processes may connect to: the nodes of a cluster, or the one server."""
        return server_urls(self.bus_url)

    @property
    def nats_nodes(self) -> list[NatsNode]:
        """The embedded nats-servers: one in the NATS directory, or each node of a cluster in its own."""
        if self.nats_cluster == 1:
            return [NatsNode(NATS_SERVER_NAME, self.nats_port, None, self.nats_dir)]
        return [
            NatsNode(
                f"{NATS_SERVER_NAME}-{number}",
                self.nats_port + number - 1,
                self.nats_route_port + number - 1,
                self.nats_dir / f"node-{number}",
            )
            for number in range(1, self.nats_cluster + 1)
        ]

    @property
    def embedded_nats(self) -> bool:
        return self.nats_url is None

    @property
    def nats_dir(self) -> Path:
        """The embedded nats-server's directory: its JetStream store and its generated configuration."""
        return self.data_dir / "nats"

    def bus_user(self, name: str) -> BusUser | None:
        """The credential a process uses on the bus; None for a server that asks for none."""
        if self.nats_credentials is None:
            return None
        return BusUser.in_directory(self.nats_credentials, name)

    def service_dir(self, service: str) -> Path:
        return self.data_dir / service

    def store_file(self, service: str) -> Path:
        """The service's SQLite store (and, for intake, its complaints' keys beside the store)."""
        return self.service_dir(service) / "store.sqlite"

    def signing_key_file(self, service: str) -> Path:
        """The service's nkey seed: supplied by setting, or the one provisioning made in its data dir."""
        return self.supplied_signing_keys.get(service, self.service_dir(service) / "signing.nk")

    @property
    def trust_file(self) -> Path:
        """The services' public keys, written by provisioning, for auditors to pin."""
        return self.data_dir / "trust.json"

    def http_url(self, service: str) -> str:
        return f"http://{self.http_host}:{self.http_ports[service]}"

    def public_url(self, service: str) -> str:
        """Where people reach the service from their devices, e.g. to open an acknowledgement link."""
        if service == "notifier" and self.notifier_public_url:
            return self.notifier_public_url.rstrip("/")
        return self.http_url(service)

    def store_env(self, service: str) -> dict[str, str]:
        """The eventsourcing environment of one service's store."""
        # Multi-row tracking: JetStream redelivery can reorder, and a high-water mark would then
        # take an older, unprocessed sequence for a processed one.
        env = {"SINGLE_ROW_TRACKING": "n"}
        if self.store == "postgres":
            assert self.postgres is not None
            env |= {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_HOST": self.postgres.host,
                "POSTGRES_PORT": str(self.postgres.port),
                "POSTGRES_USER": self.postgres.user,
                "POSTGRES_PASSWORD": self.postgres.password,
                "POSTGRES_DBNAME": self.postgres.dbname,
                "POSTGRES_SCHEMA": service,
            }
        else:
            env |= {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.store_file(service)),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return env


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a port number, not {raw!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{name} must be between 1 and 65535, not {port}")
    return port


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit() or int(raw) == 0:
        raise SettingsError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def _nats_cluster(
    env: Mapping[str, str], nats_url: str | None, port: int, route_port: int
) -> tuple[int, int]:
    """The embedded cluster's size and the streams' replicas, each checked against the other settings."""
    raw = env.get("KIZUKI_NATS_CLUSTER") or "1"
    if raw not in [str(size) for size in CLUSTER_SIZES]:
        raise SettingsError(f"KIZUKI_NATS_CLUSTER must be 1 or 3 (embedded nats-servers), not {raw!r}")
    cluster = int(raw)
    if cluster > 1 and nats_url is not None:
        raise SettingsError(
            "KIZUKI_NATS_CLUSTER starts embedded nats-servers; with NATS_URL, set KIZUKI_NATS_REPLICAS"
        )
    if max(port, route_port) + cluster - 1 > 65535:
        raise SettingsError(f"KIZUKI_NATS_PORT and KIZUKI_NATS_ROUTE_PORT leave no room for {cluster} nodes")
    raw = env.get("KIZUKI_NATS_REPLICAS") or str(cluster)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPLICAS:
        raise SettingsError(f"KIZUKI_NATS_REPLICAS must be between 1 and {MAX_REPLICAS}, not {raw!r}")
    replicas = int(raw)
    if nats_url is None and replicas > cluster:
        raise SettingsError(
            f"KIZUKI_NATS_REPLICAS is {replicas}, more than the {cluster} embedded nats-server(s)"
        )
    return cluster, replicas


def _clock_skew(env: Mapping[str, str]) -> timedelta:
    raw = env.get("KIZUKI_TIMER_CLOCK_SKEW") or ""
    if raw == "":
        return DEFAULT_CLOCK_SKEW
    try:
        skew = timedelta(seconds=float(raw))
    except (ValueError, OverflowError):
        raise SettingsError(f"KIZUKI_TIMER_CLOCK_SKEW must be a number of seconds, not {raw!r}") from None
    if not timedelta(0) <= skew <= MAX_CLOCK_SKEW:
        limit = MAX_CLOCK_SKEW.total_seconds()
        raise SettingsError(f"KIZUKI_TIMER_CLOCK_SKEW must be between 0 and {limit:g} seconds, not {raw}")
    return skew


def _hours(env: Mapping[str, str], name: str, default: float) -> timedelta:
    raw = env.get(name) or str(default)
    try:
        hours = float(raw)
    except ValueError:
        hours = 0.0
    if not 0 < hours < 24 * 366:
        raise SettingsError(f"{name} must be a positive number of hours, not {raw!r}")
    return timedelta(hours=hours)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.5 <= seconds <= 300:
        raise SettingsError(f"{name} must be a number of seconds between 0.5 and 300, not {raw!r}")
    return seconds


def parse_replicas(entries: list[str]) -> dict[str, int]:
    """``SERVICE=N`` entries (``KIZUKI_REPLICAS`` holds them comma-separated), as a count per service."""
    replicas: dict[str, int] = {}
    for entry in entries:
        service, _, count = entry.strip().partition("=")
        if service not in SERVICES:
            names = ", ".join(SERVICES)
            raise SettingsError(f"replicas: {entry!r} names no service; write SERVICE=N (SERVICE: {names})")
        if not count.isdigit() or int(count) == 0:
            raise SettingsError(f"replicas: {entry!r} needs a positive whole number of processes after '='")
        replicas[service] = int(count)
    return replicas


def _yes(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name) or "no"
    if raw not in ("yes", "no"):
        raise SettingsError(f"{name} must be 'yes' or 'no', not {raw!r}")
    return raw == "yes"


def _metrics(env: Mapping[str, str]) -> bool:
    raw = env.get("KIZUKI_METRICS") or "on"
    if raw not in ("on", "off"):
        raise SettingsError(f"KIZUKI_METRICS must be 'on' or 'off', not {raw!r}")
    return raw == "on"


def _otlp_endpoint(env: Mapping[str, str]) -> str | None:
    name = "KIZUKI_OTLP_ENDPOINT" if env.get("KIZUKI_OTLP_ENDPOINT") else "OTEL_EXPORTER_OTLP_ENDPOINT"
    raw = env.get(name) or None
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http:// or https:// URL (OTLP over HTTP), not {raw!r}")
    return raw


def _oidc(env: Mapping[str, str], secrets: Path) -> OidcSettings | None:
    issuer = env.get("KIZUKI_CONSOLE_OIDC_ISSUER")
    if not issuer:
        return None
    needed = ("KIZUKI_CONSOLE_OIDC_CLIENT_ID", "KIZUKI_CONSOLE_OIDC_REDIRECT_URL")
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise SettingsError(f"KIZUKI_CONSOLE_OIDC_ISSUER is set: set {' and '.join(missing)} too")
    return OidcSettings(
        issuer=issuer,
        client_id=env["KIZUKI_CONSOLE_OIDC_CLIENT_ID"],
        client_secret_file=Path(
            env.get("KIZUKI_CONSOLE_OIDC_CLIENT_SECRET_FILE") or secrets / "console-oidc-client-secret"
        ),
        redirect_url=env["KIZUKI_CONSOLE_OIDC_REDIRECT_URL"],
        staff_claim=env.get("KIZUKI_CONSOLE_OIDC_STAFF_CLAIM") or "staff_id",
    )


def _postgres_password(env: Mapping[str, str]) -> str:
    """KIZUKI_POSTGRES_PASSWORD_FILE, a file holding the password (a container's secret), so that the
    password is in no process's environment; else KIZUKI_POSTGRES_PASSWORD."""
    path = env.get("KIZUKI_POSTGRES_PASSWORD_FILE")
    if not path:
        return env.get("KIZUKI_POSTGRES_PASSWORD", "")
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as error:
        raise SettingsError(f"KIZUKI_POSTGRES_PASSWORD_FILE: cannot read {path} ({error.strerror})") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("KIZUKI_DATA_DIR") or "var").resolve()
    http_ports = {
        service: _port(env, f"KIZUKI_{service.upper()}_PORT", default)
        for service, default in DEFAULT_HTTP_PORTS.items()
    }
    store: Literal["sqlite", "postgres"]
    match env.get("KIZUKI_STORE", "sqlite"):
        case "sqlite":
            store = "sqlite"
        case "postgres":
            store = "postgres"
        case other:
            raise SettingsError(f"KIZUKI_STORE must be 'sqlite' or 'postgres', not {other!r}")
    postgres = None
    if store == "postgres":
        postgres = PostgresSettings(
            host=env.get("KIZUKI_POSTGRES_HOST", "127.0.0.1"),
            port=_port(env, "KIZUKI_POSTGRES_PORT", 5432),
            user=env.get("KIZUKI_POSTGRES_USER", "kizuki"),
            password=_postgres_password(env),
            dbname=env.get("KIZUKI_POSTGRES_DBNAME", "kizuki"),
        )
    nats_url = env.get("NATS_URL") or None
    if nats_url is not None:
        try:
            server_urls(nats_url)
        except ValueError as error:
            raise SettingsError(f"NATS_URL: {error}") from None
    nats_port = _port(env, "KIZUKI_NATS_PORT", 4222)
    nats_route_port = _port(env, "KIZUKI_NATS_ROUTE_PORT", 6222)
    nats_cluster, nats_replicas = _nats_cluster(env, nats_url, nats_port, nats_route_port)
    # The embedded server's credentials are generated in its directory; a server you run asks for
    # the ones you were given, or for none.
    credentials = env.get("KIZUKI_NATS_CREDENTIALS")
    nats_credentials = None
    if credentials:
        nats_credentials = Path(credentials).resolve()
    elif nats_url is None:
        nats_credentials = data_dir / "nats" / "credentials"
    deploy = Path(__file__).resolve().parent.parent / "deploy"
    secrets = data_dir / "secrets"
    # Never in the secrets every service reads: whoever holds this key can sign in as anyone.
    issuer = data_dir / "token-issuer"
    return Settings(
        data_dir=data_dir,
        nats_port=nats_port,
        nats_url=nats_url,
        nats_cluster=nats_cluster,
        nats_route_port=nats_route_port,
        nats_replicas=nats_replicas,
        http_host=env.get("KIZUKI_HTTP_HOST", "127.0.0.1"),
        http_ports=http_ports,
        smtp_port=_port(env, "KIZUKI_INTAKE_SMTP_PORT", 8025),
        policy_path=Path(env.get("KIZUKI_POLICY") or deploy / "policy.toml"),
        directory_path=Path(env.get("KIZUKI_DIRECTORY") or deploy / "directory.toml"),
        token_signing_key=Path(env.get("KIZUKI_TOKEN_SIGNING_KEY") or issuer / "token-signing.pem"),
        token_verify_key=Path(env.get("KIZUKI_TOKEN_VERIFY_KEY") or secrets / "token-verify.pem"),
        revoked_tokens_path=Path(env.get("KIZUKI_REVOKED_TOKENS") or data_dir / "revoked-tokens.json"),
        token_max_lifetime=_hours(env, "KIZUKI_TOKEN_MAX_HOURS", 12),
        api_keys_path=Path(env.get("KIZUKI_API_KEYS") or secrets / "api-keys.json"),
        master_key=Path(env.get("KIZUKI_MASTER_KEY") or secrets / "master.key"),
        reporter_key=Path(env.get("KIZUKI_REPORTER_KEY") or secrets / "reporter-identity.key"),
        channels_path=Path(env.get("KIZUKI_CHANNELS") or deploy / "channels.toml"),
        ack_link_secret=Path(env.get("KIZUKI_ACK_LINK_SECRET") or secrets / "ack-link.key"),
        notifier_public_url=env.get("KIZUKI_NOTIFIER_PUBLIC_URL") or None,
        match_key=Path(env.get("KIZUKI_MATCH_KEY") or secrets / "intake-match.key"),
        line_channel_secret=Path(env.get("KIZUKI_LINE_CHANNEL_SECRET") or secrets / "line-channel-secret"),
        wechat_token=Path(env.get("KIZUKI_WECHAT_TOKEN") or secrets / "wechat-token"),
        wechat_aes_key=Path(env.get("KIZUKI_WECHAT_AES_KEY") or secrets / "wechat-aes-key"),
        console_passwords=Path(env.get("KIZUKI_CONSOLE_PASSWORDS") or secrets / "console-passwords.json"),
        console_oidc=_oidc(env, secrets),
        wechat_plaintext=_yes(env, "KIZUKI_WECHAT_PLAINTEXT"),
        store=store,
        postgres=postgres,
        nats_credentials=nats_credentials,
        supplied_signing_keys={
            service: Path(env[f"KIZUKI_{service.upper()}_SIGNING_KEY"])
            for service in SERVICES
            if env.get(f"KIZUKI_{service.upper()}_SIGNING_KEY")
        },
        checkpoint_every=_positive(env, "KIZUKI_CHECKPOINT_EVERY", 1000),
        checkpoint_seconds=_positive(env, "KIZUKI_CHECKPOINT_SECONDS", 60),
        timer_clock_skew=_clock_skew(env),
        metrics=_metrics(env),
        otlp_endpoint=_otlp_endpoint(env),
        lease_seconds=_seconds(env, "KIZUKI_LEASE_SECONDS", 5.0),
        replicas=parse_replicas([entry for entry in (env.get("KIZUKI_REPLICAS") or "").split(",") if entry]),
    )
