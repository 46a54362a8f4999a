"""The system as real processes: nats-server, provisioning and the four services, on free ports."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from nats.aio.client import Client

from kizuki.audit import RecordEntry, read_record
from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import free_port, start_nats, start_service, stop, wait_healthy
from kizuki.provision import provision_bus, provision_secrets
from kizuki.server_config import write_server_config
from shared.auth import issue_token
from shared.bus import RECORD_STREAM, connect
from shared.directory import load_directory
from shared.settings import SERVICES, Settings, load_settings
from shared.timers import now
from tests.polling import eventually

REGIME = tuple(service for service in SERVICES if service != "console")

# The `kizuki` command of this environment.
KIZUKI = str(Path(sys.executable).parent / "kizuki")
# Callbacks in seconds, on any day and at any hour, so that tests do not depend on the calendar.
FOLLOWUP_SECONDS = {
    "after_first_response_seconds": 2,
    "after_closure_seconds": 2,
    "after_discharge_seconds": 2,
    "retry_interval_seconds": 2,
    "max_attempts": 2,
    "complete_within_seconds": 600,
    # [recording]: below after_discharge_seconds + complete_within_seconds, as the policy requires.
    "discharge_within_seconds": 300,
}


def system_env(data_dir: Path, policy: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KIZUKI_", "NATS_"))}
    env |= {
        "KIZUKI_DATA_DIR": str(data_dir),
        "KIZUKI_POLICY": str(policy),
        "KIZUKI_NATS_PORT": str(free_port()),
        "KIZUKI_INTAKE_SMTP_PORT": str(free_port()),
        **{f"KIZUKI_{service.upper()}_PORT": str(free_port()) for service in SERVICES},
        # Heads are signed on clean shutdown (and every 1000 links), not every minute: a test that runs
        # past a minute compares whole records without a CheckpointSigned appearing in between.
        "KIZUKI_CHECKPOINT_SECONDS": "86400",
    }
    return env


def write_policy(
    path: Path,
    version: str = "e2e-1",
    chase: tuple[int, int] | None = None,
    duty_seconds: dict[str, int] | None = None,
    followup: dict[str, int] | None = None,
) -> Path:
    """The shipped policy under another version, without quiet hours or days off, with callbacks in
    seconds (``followup`` changes them), and optionally a chase of (interval seconds, attempts) and
    duties due within given seconds."""
    shipped = (Path(__file__).resolve().parents[2] / "deploy" / "policy.toml").read_text(encoding="utf-8")
    policy = re.sub(r"(?m)^version = .*$", f'version = "{version}"', shipped)
    policy = re.sub(r"(?m)^quiet_hours_(start|end) = .*$", r"quiet_hours_\g<1> = 00:00:00", policy)
    policy = re.sub(r"(?m)^working_days_only = .*$", "working_days_only = false", policy)
    for key, seconds in (FOLLOWUP_SECONDS | (followup or {})).items():
        policy, found = re.subn(rf"(?m)^{key} = .*$", f"{key} = {seconds}", policy)
        assert found == 1, f"no {key} in the shipped policy"
    if chase is not None:
        policy = re.sub(
            r"(?m)^repeat_interval_seconds = .*$", f"repeat_interval_seconds = {chase[0]}", policy
        )
        policy = re.sub(r"(?m)^attempts = .*$", f"attempts = {chase[1]}", policy)
    for duty, seconds in (duty_seconds or {}).items():
        section = re.escape(f"[escalation.duties.{duty}]")
        policy, found = re.subn(rf"({section}[^\[]*?within_seconds = )\d+", rf"\g<1>{seconds}", policy)
        assert found == 1, f"no clock deadline for {duty} in the shipped policy"
    path.write_text(policy, encoding="utf-8")
    return path


class System:
    """Starts, kills and restarts the processes of one system, and reads its record."""

    def __init__(
        self,
        tmp_path: Path,
        policy: Path | None = None,
        env: dict[str, str] | None = None,
        services: tuple[str, ...] = REGIME,
    ) -> None:
        """``env``: settings beyond the test's own ports and directories, e.g. the PostgreSQL stores;
        ``services``: the regime's four unless a test needs the console too (it reads every event,
        and its CPU would slow every other test on a small machine)."""
        self.service_names = services
        policy = policy or write_policy(tmp_path / "policy.toml")
        self.env = system_env(tmp_path / "var", policy) | (env or {})
        self.settings: Settings = load_settings(self.env)
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.nats: subprocess.Popen[bytes] | None = None
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.nc: Client | None = None

    async def start(self) -> None:
        """As `kizuki run` does: every process with its own NATS credential and only its permissions."""
        provision_secrets(self.settings)
        self.nats = self.start_nats_server(write_server_config(self.settings))
        await provision_bus(self.settings.bus_url, self.settings.bus_user(ADMINISTRATOR))
        for service in self.service_names:
            self.services[service] = start_service(service, self.env, self.logs / f"{service}.log")
        for service in self.service_names:
            await asyncio.to_thread(self.wait_healthy, service)
        self.nc = await self.connect_as_administrator()

    def start_nats_server(self, config: Path) -> subprocess.Popen[bytes]:
        return start_nats(self.settings.nats_port, self.settings.nats_dir, self.logs / "nats.log", config)

    async def connect_as_administrator(self) -> Client:
        """The test's own connection, which reads the timers and the consumers as well as the record."""
        return await connect(self.settings.bus_url, "e2e-test", user=self.settings.bus_user(ADMINISTRATOR))

    def wait_healthy(self, service: str) -> None:
        wait_healthy(self.settings.http_url(service), self.services[service])

    def kill(self, service: str) -> None:
        process = self.services[service]
        process.send_signal(signal.SIGKILL)
        process.wait()

    async def restart(self, service: str) -> None:
        self.services[service] = start_service(service, self.env, self.logs / f"{service}.log")
        await asyncio.to_thread(self.wait_healthy, service)

    async def stop_nats(self) -> None:
        if self.nc is not None:
            await self.nc.close()
            self.nc = None
        assert self.nats is not None
        stop(self.nats)

    async def start_nats_again(self) -> None:
        """The same server, port and store directory, as after a crash or an upgrade."""
        self.nats = self.start_nats_server(self.settings.nats_dir / "server.conf")
        self.nc = await self.connect_as_administrator()

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()
        for process in self.services.values():
            stop(process)
        if self.nats is not None:
            stop(self.nats)

    def signed_in(self, staff_id: str) -> dict[str, str]:
        """Request headers of a member of the sample hospital's staff, with a token from this system's key."""
        token = issue_token(
            self.settings.token_signing_key, staff_id, load_directory(self.settings.directory_path)
        )
        return {"Authorization": f"Bearer {token}"}

    async def kizuki(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `kizuki` command, run against this system."""
        command = [KIZUKI, *args]
        return await asyncio.to_thread(
            subprocess.run, command, env=self.env, capture_output=True, text=True, timeout=120
        )

    def url(self, service: str, path: str) -> str:
        return self.settings.http_url(service) + path

    async def record(self) -> list[RecordEntry]:
        assert self.nc is not None
        return [entry async for entry in read_record(self.nc.jetstream())]

    async def events_of(self, complaint_id: UUID | str) -> Counter[str]:
        return Counter(
            entry.event_type for entry in await self.record() if entry.complaint_id == str(complaint_id)
        )

    async def wait_for_flow(self, complaint_ids: list[str], within: float = 60.0) -> list[RecordEntry]:
        """Wait until every complaint has each event of the whole flow, as often as the flow has it;
        returns the record."""

        async def complete() -> list[RecordEntry]:
            record = await self.record()
            seen = Counter((entry.complaint_id, entry.event_type) for entry in record)
            done = all(
                seen[(complaint, kind)] >= count
                for complaint in complaint_ids
                for kind, count in FLOW_COUNTS.items()
            )
            return record if done else []

        return await eventually(
            complete, within=within, what=f"the whole flow for {len(complaint_ids)} complaints"
        )

    async def wait_until_quiet(self, quiet_for: float = 5.0, within: float = 120.0) -> list[RecordEntry]:
        """Wait until nothing new has reached the record for ``quiet_for`` seconds; returns the record.
        Exactly-once is judged then, not the moment the expected counts are first reached."""
        assert self.nc is not None
        js = self.nc.jetstream()
        last: list[tuple[int, float]] = []

        async def quiet() -> bool:
            sequence = (await js.stream_info(RECORD_STREAM)).state.last_seq
            if not last or last[0][0] != sequence:
                last[:] = [(sequence, time.monotonic())]
            return time.monotonic() - last[0][1] >= quiet_for

        await eventually(quiet, within=within, what=f"the record quiet for {quiet_for} s")
        return await self.record()


# Every event of the whole flow, and how many of each one complaint gets.
FLOW_COUNTS = Counter(
    {
        "ComplaintReceived": 1,
        "EscalationStarted": 1,
        "DutyAssigned": 5,  # each with the first alert to the duty's owner
        "NotificationAttempted": 6,  # each alert and the receipt, delivered at the first attempt
        "NotificationSent": 5,
        "ComplainantAcknowledged": 1,
    }
)


def assert_whole_flows_once_but_attempts_in_doubt(
    record: list[RecordEntry], complaint_ids: list[str]
) -> None:
    """Each complaint's whole flow, each event once, after a kill: only a delivery attempt the kill
    left in doubt is attempted again (tests/e2e/test_notifications.py), and no event id is twice."""
    in_doubt = "NotificationAttempted"
    counts = Counter(
        (entry.complaint_id, entry.event_type) for entry in record if entry.event_type != in_doubt
    )
    assert counts == Counter(
        {
            (complaint_id, kind): n
            for complaint_id in complaint_ids
            for kind, n in FLOW_COUNTS.items()
            if kind != in_doubt
        }
    )
    event_ids = [entry.body["event_id"] for entry in record]
    assert len(event_ids) == len(set(event_ids))


@pytest.fixture
async def system(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[System]:
    """The system as processes; the console's tests (``test_console_*``) get the console too."""
    console = request.module.__name__.rpartition(".")[2].startswith("test_console")
    running = System(tmp_path, services=SERVICES if console else REGIME)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def register(system: System, http: httpx.AsyncClient, **changes: Any) -> str:
    response = await http.post(
        system.url("intake", "/v1/complaints"), json=complaint(**changes), headers=system.signed_in("n-001")
    )
    assert response.status_code == 201, response.text
    return str(response.json()["complaint_id"])


def of(
    record: list[RecordEntry], complaint_id: str, event_type: str, duty: str | None = None
) -> list[dict[str, Any]]:
    bodies = [
        entry.body
        for entry in record
        if entry.complaint_id == complaint_id and entry.event_type == event_type
    ]
    return [body for body in bodies if duty is None or body.get("duty") == duty]


def alerts_of(
    record: list[RecordEntry], complaint_id: str | None, duty: str | None = None
) -> list[dict[str, Any]]:
    """Every alert requested about the case (``None``: any case) and the duty, in the order of the
    record: with the duty's assignment (``DutyAssigned``'s alert, given the duty's fields) or by itself
    (``AlertRequested``)."""
    found = []
    for entry in record:
        if complaint_id not in (None, entry.complaint_id):
            continue
        body = entry.body
        if entry.event_type == "AlertRequested":
            alert = body
        elif entry.event_type == "DutyAssigned" and body.get("alert"):
            alert = {**body, **body["alert"]}
        else:
            continue
        if duty in (None, alert.get("duty")):
            found.append(alert)
    return found


async def until_record(system: System, what: str, condition: Any, within: float = 30.0) -> list[RecordEntry]:
    async def probe() -> list[RecordEntry]:
        record = await system.record()
        return record if condition(record) else []

    return await eventually(probe, within=within, what=what)


def complaint(**changes: Any) -> dict[str, Any]:
    return {
        "channel": "phone",
        "occurred_at": (now() - timedelta(minutes=30)).isoformat(),
        "department": "Ward 3",
        "summary": "Waited three hours for pain medication.",
        "complainant": {"name": "Sato Hanako", "contact": "sato@example.org"},
        "language": "ja",
    } | changes
