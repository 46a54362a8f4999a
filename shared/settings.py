"""One settings object, read from the environment, for every process of the system."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SERVICES = ("intake", "escalation", "notifier", "followup")
DEFAULT_HTTP_PORTS = {"intake": 8001, "escalation": 8002, "notifier": 8003, "followup": 8004}


class SettingsError(ValueError):
    """A setting in the environment has a value that cannot be used."""


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    user: str
    password: str
    dbname: str


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
    api_keys_path: Path
    master_key: Path
    reporter_key: Path
    match_key: Path
    line_channel_secret: Path
    wechat_token: Path
    wechat_aes_key: Path
    store: Literal["sqlite", "postgres"] = "sqlite"
    postgres: PostgresSettings | None = None

    @property
    def bus_url(self) -> str:
        """Where the services connect: an existing server, or the embedded one."""
        return self.nats_url or f"nats://127.0.0.1:{self.nats_port}"

    @property
    def embedded_nats(self) -> bool:
        return self.nats_url is None

    def service_dir(self, service: str) -> Path:
        return self.data_dir / service

    def http_url(self, service: str) -> str:
        return f"http://{self.http_host}:{self.http_ports[service]}"

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
                "SQLITE_DBNAME": str(self.service_dir(service) / "store.sqlite"),
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
            password=env.get("KIZUKI_POSTGRES_PASSWORD", ""),
            dbname=env.get("KIZUKI_POSTGRES_DBNAME", "kizuki"),
        )
    deploy = Path(__file__).resolve().parent.parent / "deploy"
    secrets = data_dir / "secrets"
    return Settings(
        data_dir=data_dir,
        nats_port=_port(env, "KIZUKI_NATS_PORT", 4222),
        nats_url=env.get("NATS_URL") or None,
        http_host=env.get("KIZUKI_HTTP_HOST", "127.0.0.1"),
        http_ports=http_ports,
        smtp_port=_port(env, "KIZUKI_INTAKE_SMTP_PORT", 8025),
        policy_path=Path(env.get("KIZUKI_POLICY") or deploy / "policy.toml"),
        directory_path=Path(env.get("KIZUKI_DIRECTORY") or deploy / "directory.toml"),
        token_signing_key=Path(env.get("KIZUKI_TOKEN_SIGNING_KEY") or secrets / "token-signing.pem"),
        token_verify_key=Path(env.get("KIZUKI_TOKEN_VERIFY_KEY") or secrets / "token-verify.pem"),
        api_keys_path=Path(env.get("KIZUKI_API_KEYS") or secrets / "api-keys.json"),
        master_key=Path(env.get("KIZUKI_MASTER_KEY") or secrets / "master.key"),
        reporter_key=Path(env.get("KIZUKI_REPORTER_KEY") or secrets / "reporter-identity.key"),
        match_key=Path(env.get("KIZUKI_MATCH_KEY") or secrets / "intake-match.key"),
        line_channel_secret=Path(env.get("KIZUKI_LINE_CHANNEL_SECRET") or secrets / "line-channel-secret"),
        wechat_token=Path(env.get("KIZUKI_WECHAT_TOKEN") or secrets / "wechat-token"),
        wechat_aes_key=Path(env.get("KIZUKI_WECHAT_AES_KEY") or secrets / "wechat-aes-key"),
        store=store,
        postgres=postgres,
    )
