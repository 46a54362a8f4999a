"""deploy/: the compose file as Compose reads it, the Dockerfiles' base images, the cluster's keys step.

What `make cluster` starts is checked here in seconds, without starting it: the full bring-up (images
built, three NATS nodes, PostgreSQL, twelve service containers) takes minutes and is run by hand.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.settings import DEFAULT_HTTP_PORTS, SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
REPLICAS = (1, 2)
NATS_NODES = ("nats-1", "nats-2", "nats-3")


def _compose_command() -> list[str] | None:
    """Docker Compose v2 (`docker compose`) or v1 (`docker-compose`, Debian's), whichever is here."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    v1 = shutil.which("docker-compose")
    return [v1] if v1 else None


def _rendered(compose: list[str], cluster_dir: Path) -> dict[str, Any]:
    """The compose file as Compose itself resolves it (anchors, merges, variables), as plain data."""
    run = [*compose, "-p", "kizuki-test", "-f", str(COMPOSE_FILE), "config"]
    env = os.environ | {"KIZUKI_CLUSTER_DIR": str(cluster_dir)}
    if compose[-1] == "compose":
        out = subprocess.run([*run, "--format", "json"], capture_output=True, text=True, env=env, check=True)
        rendered: dict[str, Any] = json.loads(out.stdout)
        return rendered
    # v1 prints YAML only; it is a Python program that needs PyYAML, so its own interpreter reads it.
    text = subprocess.run(run, capture_output=True, text=True, env=env, check=True).stdout
    interpreter = Path(compose[0]).read_text(encoding="utf-8").splitlines()[0].removeprefix("#!").split()
    to_json = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    out = subprocess.run([*interpreter, "-c", to_json], input=text, text=True, capture_output=True)
    assert out.returncode == 0, out.stderr
    rendered = json.loads(out.stdout)
    return rendered


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = _compose_command()
    if command is None:
        pytest.skip("no `docker compose` nor `docker-compose` here: deploy/compose.yaml is not checked")
    return command


@pytest.fixture(scope="module")
def config(compose: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _rendered(compose, tmp_path_factory.mktemp("cluster"))


def _published(port: str | dict[str, Any]) -> tuple[str, str]:
    """(host address, host port) of a published port in either of Compose's renderings."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port.get("published", ""))
    parts = port.split("/")[0].split(":")
    return (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])


@pytest.mark.integration
def test_compose_file_is_valid(compose: list[str], tmp_path: Path) -> None:
    checked = subprocess.run(
        [*compose, "-p", "kizuki-test", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True, text=True, env=os.environ | {"KIZUKI_CLUSTER_DIR": str(tmp_path)},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


@pytest.mark.integration
def test_two_replicas_of_every_service_wait_for_provisioning_and_have_health_checks(
    config: dict[str, Any],
) -> None:
    services = config["services"]
    for service in SERVICES:
        images = set()
        for replica in REPLICAS:
            container = services[f"{service}-{replica}"]
            images.add(container["image"])
            assert container["command"] == [service]
            assert container["depends_on"]["provision"]["condition"] == "service_completed_successfully"
            assert container["depends_on"]["postgres"]["condition"] == "service_healthy"
            assert f"http://127.0.0.1:{DEFAULT_HTTP_PORTS[service]}/ready" in " ".join(
                container["healthcheck"]["test"]
            )
            assert container["environment"]["KIZUKI_STORE"] == "postgres"
            assert service in container["networks"]["default"]["aliases"]
        assert len(images) == 1, f"the replicas of {service} run different images: {images}"
    assert services["provision"]["depends_on"].keys() >= set(NATS_NODES)
    for node in (*NATS_NODES, "postgres"):
        assert services[node]["depends_on"]["keys"]["condition"] == "service_completed_successfully"


@pytest.mark.integration
def test_ports_are_published_on_loopback_only(config: dict[str, Any]) -> None:
    published = {
        name: [_published(port) for port in service.get("ports", [])]
        for name, service in config["services"].items()
    }
    assert any(published.values())
    for name, ports in published.items():
        for address, port in ports:
            assert address == "127.0.0.1", f"{name} publishes port {port} on {address or 'every address'}"
    assert not published["postgres"], "PostgreSQL stays on the compose network"


@pytest.mark.integration
def test_each_service_is_handed_its_own_credential_only(config: dict[str, Any]) -> None:
    for service in SERVICES:
        for replica in REPLICAS:
            secrets = config["services"][f"{service}-{replica}"]["secrets"]
            targets = [str(secret.get("target", "")) for secret in secrets]
            bus_users = [target for target in targets if target.startswith("/run/secrets/nats/")]
            assert bus_users == [f"/run/secrets/nats/{service}.nk"]
            assert "token-signing.pem" not in [s["source"] for s in secrets] or service == "console"


@pytest.mark.unit
def test_every_dockerfile_takes_its_base_as_a_build_argument() -> None:
    dockerfiles = sorted(DEPLOY.rglob("Dockerfile"))
    assert len(dockerfiles) >= 5  # services, nats, postgres, and the two Debian-built bases
    for dockerfile in dockerfiles:
        instructions = [
            line.strip() for line in dockerfile.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]  # fmt: skip
        assert re.fullmatch(r"ARG BASE=\S+", instructions[0]), f"{dockerfile}: first ARG BASE=<default>"
        stages: set[str] = set()
        for line in instructions:
            if line.upper().startswith("FROM "):
                words = line.split()
                assert words[1] == "${BASE}" or words[1] in stages, f"{dockerfile}: {line}"
                if len(words) == 4 and words[2].upper() == "AS":
                    stages.add(words[3])


def _keys_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cluster_keys", DEPLOY / "cluster" / "keys.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_the_nodes_get_every_bus_user_and_routes_to_each_other(tmp_path: Path) -> None:
    keys = _keys_module()
    users = keys.nats_users_config(tmp_path / "credentials")
    assert "server_name" not in users  # each node names itself (deploy/nats/cluster.conf)
    for user in (*SERVICES, "auditor", "admin"):
        assert f"# {user}\n" in users
        assert (tmp_path / "credentials" / f"{user}.nk").exists()
    routes = keys.routes_config("secret")
    for node in NATS_NODES:
        assert f"nats-route://route:secret@{node}:6222" in routes
