"""Two processes of each service against PostgreSQL: a burst of complaints through both, the replica
holding each service's relay lease killed in the middle of it, and every complaint still gets its
whole flow once, on a chain that verifies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from kizuki.processes import free_port, start_service, stop, wait_healthy
from shared.lease import connection_kwargs
from shared.timers import now
from tests.e2e.conftest import (
    System,
    assert_whole_flows_once_but_attempts_in_doubt,
    complaint,
    of,
    until_record,
)
from tests.e2e.test_stores import postgres_env
from tests.polling import eventually

pytestmark = pytest.mark.e2e

# A killed holder's work waits about this long before the other replica takes it over.
LEASE_SECONDS = 2


class Replicas(System):
    """The system with a second process of each service, on ports of its own (``<service>-2``)."""

    async def start(self) -> None:
        await super().start()  # the first of each service, which makes its tables
        self.urls = {service: self.settings.http_url(service) for service in self.service_names}
        for service in self.service_names:
            env = self.env | {f"KIZUKI_{service.upper()}_PORT": str(free_port())}
            if service == "intake":
                env["KIZUKI_INTAKE_SMTP_PORT"] = str(free_port())
            name = f"{service}-2"
            self.services[name] = start_service(service, env, self.logs / f"{name}.log")
            self.urls[name] = f"http://127.0.0.1:{env[f'KIZUKI_{service.upper()}_PORT']}"
        for service in self.service_names:
            name = f"{service}-2"
            await asyncio.to_thread(wait_healthy, self.urls[name], self.services[name])

    def holder(self, service: str, lease: str = "relay") -> str:
        """The process (its name here) holding one of the service's leases, by the pid the lease names."""
        return self.holders(service).get(lease, "")

    def holders(self, service: str) -> dict[str, str]:
        """Each lease of the service held now, and the process (its name here) holding it."""
        assert self.settings.postgres is not None
        with psycopg.connect(**connection_kwargs(self.settings.postgres)) as connection:
            query = f"SELECT name, holder FROM {service}.leases WHERE expires_at > now()"
            rows = connection.execute(query).fetchall()
        by_pid = {process.pid: name for name, process in self.services.items()}
        return {lease: by_pid.get(int(holder.split(":")[1]), "") for lease, holder in rows}


async def delivered_by(system: Replicas, http: httpx.AsyncClient, replica: str) -> float:
    """How many deliveries one notifier process made, by its own /metrics."""
    metrics = (await http.get(f"{system.urls[replica]}/metrics")).text
    counted = [line.rpartition(" ")[2] for line in metrics.splitlines()]
    return sum(
        float(value)
        for line, value in zip(metrics.splitlines(), counted, strict=True)
        if line.startswith("kizuki_deliveries_total{") and 'outcome="delivered"' in line
    )


def consumer_leases(system: Replicas, service: str) -> dict[str, str]:
    held = system.holders(service)
    return {lease: holder for lease, holder in held.items() if lease.startswith("consumer ")}


@pytest.fixture
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Replicas]:
    running = Replicas(tmp_path, env=postgres_env(request) | {"KIZUKI_LEASE_SECONDS": str(LEASE_SECONDS)})
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def test_two_replicas_of_each_service_lose_and_repeat_nothing_when_the_relay_holders_are_killed(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    system = replicas
    nurse = system.signed_in("n-001")
    holders = {service: system.holder(service) for service in system.service_names}
    assert all(holders.values()), holders  # one holder each, found by its pid
    dispatching = system.holder("notifier", "dispatcher")
    assert dispatching
    # Each consumer is taken from by one replica (its lease's); the other's /health says so.
    consumers = {service: consumer_leases(system, service) for service in system.service_names}
    for service, leases in consumers.items():
        assert leases, service
        assert all(holder in (service, f"{service}-2") for holder in leases.values()), leases
        for lease, holder in leases.items():
            standby = f"{service}-2" if holder == service else service
            report = (await http.get(f"{system.urls[standby]}/health")).json()["consumers"]
            assert report[lease.removeprefix("consumer ")]["lease"] == "another replica's", report
    bodies = [
        complaint(summary=f"complaint {n}", complainant={"contact": f"patient-{n}@example.org"})
        for n in range(30)
    ]
    posted: dict[int, str | None] = {}

    async def post(n: int, to: str) -> str | None:
        """Through one intake replica; None when the kill cut the request off."""
        headers = {**nurse, "Idempotency-Key": f"desk-{n}"}
        try:
            response = await http.post(f"{system.urls[to]}/v1/complaints", json=bodies[n], headers=headers)
        except httpx.TransportError:
            return None
        assert response.status_code == 201, response.text
        return str(response.json()["complaint_id"])

    async def burst() -> None:
        for n in range(30):
            to = "intake" if n % 2 == 0 else "intake-2"
            if system.services[to].poll() is not None:  # killed: the other replica takes it
                to = "intake-2" if to == "intake" else "intake"
            posted[n] = await post(n, to)

    posting = asyncio.create_task(burst())
    await eventually(lambda: asyncio.sleep(0, len(posted) >= 10), what="a third of the burst posted")
    await eventually(lambda: delivered_by(system, http, dispatching), what="some deliveries")
    standby = "notifier-2" if dispatching == "notifier" else "notifier"
    assert await delivered_by(system, http, standby) == 0  # one dispatcher at a time
    for holder in holders.values():
        system.kill(holder)  # mid-burst: its relay publishing, the dispatcher delivering
    killed = now()
    await posting
    # A request the kill cut off is sent again with its key to the replica left, which finds the
    # complaint's key where the killed one kept it: the same complaint either way.
    survivor = "intake-2" if holders["intake"] == "intake" else "intake"
    for n in [n for n, complaint_id in posted.items() if complaint_id is None]:
        posted[n] = await post(n, survivor)
    complaint_ids = [str(complaint_id) for complaint_id in posted.values()]
    assert len(set(complaint_ids)) == 30

    await system.wait_for_flow(complaint_ids, within=60)
    record = await system.wait_until_quiet(quiet_for=2 * LEASE_SECONDS)
    # The replicas left took every lease over.
    for service, dead in holders.items():
        assert system.holder(service) not in ("", dead), service
        taken_over = consumer_leases(system, service)
        assert taken_over.keys() == consumers[service].keys(), taken_over
        assert all(holder not in ("", dead) for holder in taken_over.values()), taken_over
    assert system.holder("notifier", "dispatcher") not in ("", *holders.values())
    assert_whole_flows_once_but_attempts_in_doubt(record, complaint_ids)
    # Attempted again only what the killed dispatcher had attempted, by the replica that took over: no
    # two dispatchers at once (each would attempt what the other did, at any time).
    attempts: dict[str, list[datetime]] = {}
    for entry in record:
        if entry.event_type == "NotificationAttempted":
            attempts.setdefault(entry.body["delivery_id"], []).append(
                datetime.fromisoformat(entry.body["recorded_at"])
            )
    again = {delivery: sorted(times) for delivery, times in attempts.items() if len(times) > 1}
    assert len(attempts) == 6 * 30
    across_the_kill = [len(times) == 2 and times[0] < killed < times[1] for times in again.values()]
    assert all(across_the_kill), again

    # A timer, set by one replica's relay and fired into the durable both replicas share: taken once.
    escalation = "escalation-2" if holders["escalation"] == "escalation" else "escalation"
    first = complaint_ids[0]
    responded = await http.post(
        f"{system.urls[escalation]}/v1/cases/{first}/first-response",
        json={"patient_reached": True, "notes": "apologised"},
        headers=system.signed_in("hd-003"),
    )
    assert responded.status_code == 200, responded.text
    await until_record(system, "the callback due", lambda record: of(record, first, "CallbackDue"))
    record = await system.wait_until_quiet(quiet_for=LEASE_SECONDS)
    assert [len(of(record, first, kind)) for kind in ("CallbackScheduled", "CallbackDue")] == [1, 1]

    for process in system.services.values():
        stop(process)  # a clean shutdown: the holder of each relay lease signs its chain's head
    verified = await system.kizuki("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[-1].startswith("verified: ")
