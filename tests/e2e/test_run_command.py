"""`kizuki run` (what `make run` starts): up, used, stopped with SIGTERM, and up again on the same data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from kizuki.processes import free_ports
from shared.settings import SERVICES
from tests.e2e.conftest import FLOW_COUNTS, KIZUKI, complaint, system_env, write_policy
from tests.polling import until

pytestmark = pytest.mark.e2e


class Launcher:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [KIZUKI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "ready" in line:
                self.ready.set()

    def wait_ready(self) -> None:
        if not self.ready.wait(60):
            raise AssertionError("kizuki run did not become ready:\n" + "".join(self.lines))

    def children(self) -> list[int]:
        pid = self.process.pid
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def stop(self, how: signal.Signals) -> int:
        self.process.send_signal(how)
        return self.process.wait(60)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def replay(env: dict[str, str], complaint_id: str) -> Counter[str]:
    output = subprocess.run(
        [KIZUKI, "audit", "replay", "--json", "--complaint", complaint_id],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return Counter(json.loads(line)["event_type"] for line in output.splitlines())


def wait_for_whole_flow(env: dict[str, str], complaint_id: str) -> Counter[str]:
    def complete() -> Counter[str]:
        events = replay(env, complaint_id)
        return events if events >= FLOW_COUNTS else Counter()

    return until(complete, within=60, what="the whole flow, as `kizuki audit replay` shows it")


def test_run_starts_everything_stops_cleanly_and_resumes_with_the_same_data(tmp_path: Path) -> None:
    env = system_env(tmp_path / "var", write_policy(tmp_path / "policy.toml"))
    intake = f"http://127.0.0.1:{env['KIZUKI_INTAKE_PORT']}"

    first = Launcher(env)
    try:
        first.wait_ready()
        output = "".join(first.lines)
        for service in SERVICES:
            assert f"http://127.0.0.1:{env[f'KIZUKI_{service.upper()}_PORT']}" in output
        children = first.children()
        assert len(children) == 1 + len(SERVICES)  # nats-server and each service
        # As the README's walkthrough does it: a token from `kizuki token`, then curl.
        token = subprocess.run(
            [KIZUKI, "token", "n-001"], env=env, capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
        nurse = {"Authorization": f"Bearer {token}"}
        response = httpx.post(f"{intake}/v1/complaints", json=complaint(), headers=nurse, timeout=10)
        assert response.status_code == 201
        complaint_id = response.json()["complaint_id"]
        assert wait_for_whole_flow(env, complaint_id) == FLOW_COUNTS
    finally:
        exit_code = first.stop(signal.SIGTERM)
    assert exit_code == 0
    assert "kizuki: stopped" in "".join(first.lines)
    assert [pid for pid in children if alive(pid)] == []

    second = Launcher(env)
    try:
        second.wait_ready()
        assert (
            httpx.get(f"{intake}/v1/complaints/{complaint_id}", headers=nurse, timeout=10).status_code == 200
        )
        data = Path(env["KIZUKI_DATA_DIR"])
        assert (data / "token-issuer" / "token-signing.pem").stat().st_mode & 0o077 == 0  # owner-only
        assert (data / "token-issuer").stat().st_mode & 0o077 == 0
        assert not (data / "secrets" / "token-signing.pem").exists()  # not where the services read
        assert replay(env, complaint_id) == FLOW_COUNTS
    finally:
        assert second.stop(signal.SIGINT) == 0  # what Ctrl-C sends


def nats_server_of(launcher: Launcher) -> int:
    (pid,) = [
        pid for pid in launcher.children() if b"nats-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return pid


def health(url: str) -> int:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code
    except httpx.TransportError:
        return 0


def test_run_starts_nats_server_again_and_nothing_posted_meanwhile_is_lost(tmp_path: Path) -> None:
    env = system_env(tmp_path / "var", write_policy(tmp_path / "policy.toml"))
    urls = {service: f"http://127.0.0.1:{env[f'KIZUKI_{service.upper()}_PORT']}" for service in SERVICES}
    launcher = Launcher(env)
    try:
        launcher.wait_ready()
        token = subprocess.run(
            [KIZUKI, "token", "n-001"], env=env, capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
        nurse = {"Authorization": f"Bearer {token}"}

        def every_health(status: int, within: float) -> None:
            what = f"every /health {status}"
            until(lambda: all(health(url) == status for url in urls.values()), within, what)

        # Every service says the bus is gone; intake still takes complaints into its own store. The
        # launcher starts the server again a second later: on a busy machine that may come before the
        # answer, and the complaint was not taken while the bus was down; then the bus goes again.
        for attempt in range(3):
            killed = nats_server_of(launcher)
            os.kill(killed, signal.SIGKILL)
            every_health(503, within=10)
            someone = {"name": f"Sato Hanako {attempt}", "contact": f"sato{attempt}@example.org"}
            response = httpx.post(
                f"{urls['intake']}/v1/complaints",
                json=complaint(complainant=someone),
                headers=nurse,
                timeout=10,
            )
            assert response.status_code == 201, response.text
            if health(urls["intake"]) == 503:  # so it was taken while the bus was down
                break
            every_health(200, within=60)
        else:
            pytest.fail("the bus was back each time before intake answered")
        while_down = response.json()["complaint_id"]

        every_health(200, within=60)
        output = "".join(launcher.lines)
        assert "kizuki: nats-server exited with -9; starting it again" in output
        assert "kizuki: nats-server started again" in output
        assert nats_server_of(launcher) != killed
        another = complaint(
            summary="The call bell was not answered at night.",
            complainant={"name": "Ito Ken", "contact": "ito@example.org"},
        )
        response = httpx.post(f"{urls['intake']}/v1/complaints", json=another, headers=nurse, timeout=10)
        assert response.status_code == 201, response.text
        after = response.json()["complaint_id"]
        assert wait_for_whole_flow(env, after) == FLOW_COUNTS
        assert wait_for_whole_flow(env, while_down) == FLOW_COUNTS
    finally:
        assert launcher.stop(signal.SIGTERM) == 0


def test_run_with_a_three_node_cluster_goes_on_while_a_node_is_killed(tmp_path: Path) -> None:
    env = system_env(tmp_path / "var", write_policy(tmp_path / "policy.toml"))
    env |= {"KIZUKI_NATS_CLUSTER": "3", "KIZUKI_NATS_PORT": str(free_ports(3)),
            "KIZUKI_NATS_ROUTE_PORT": str(free_ports(3))}  # fmt: skip
    intake = f"http://127.0.0.1:{env['KIZUKI_INTAKE_PORT']}"
    launcher = Launcher(env)
    try:
        launcher.wait_ready()
        output = "".join(launcher.lines)
        assert "a JetStream cluster of 3 nats-servers" in output
        assert "(3 replicas of each stream)" in output
        nodes = [
            pid for pid in launcher.children() if b"nats-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(nodes) == 3
        token = subprocess.run(
            [KIZUKI, "token", "n-001"], env=env, capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
        nurse = {"Authorization": f"Bearer {token}"}
        first = httpx.post(f"{intake}/v1/complaints", json=complaint(), headers=nurse, timeout=10)
        assert first.status_code == 201, first.text
        assert wait_for_whole_flow(env, first.json()["complaint_id"]) == FLOW_COUNTS

        # The first node, where every process was given its first URL: they go on with the other two.
        killed = next(pid for pid in nodes if b"kizuki-1" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(killed, signal.SIGKILL)
        another = complaint(
            summary="The call bell was not answered at night.",
            complainant={"name": "Ito Ken", "contact": "ito@example.org"},
        )
        second = httpx.post(f"{intake}/v1/complaints", json=another, headers=nurse, timeout=10)
        assert second.status_code == 201, second.text

        def whole_flow() -> Counter[str]:
            # While the streams elect new leaders (a few seconds), a read times out: `kizuki audit
            # replay` then exits 2, and is asked again.
            try:
                events = replay(env, second.json()["complaint_id"])
            except subprocess.CalledProcessError:
                return Counter()
            return events if events >= FLOW_COUNTS else Counter()

        assert until(whole_flow, within=60, what="the whole flow with a node killed") == FLOW_COUNTS
        until(
            lambda: "kizuki: nats-server kizuki-1 started again" in "".join(launcher.lines),
            within=30, what="the killed node started again",
        )  # fmt: skip
    finally:
        assert launcher.stop(signal.SIGTERM) == 0
