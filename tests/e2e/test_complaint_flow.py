"""One complaint, and then many, through all four services running as real processes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_asyncio
from nats.js.errors import ServerError

from shared.bus import RECORD_STREAM
from shared.reference import reference_of
from tests.e2e.conftest import (
    FLOW_COUNTS,
    System,
    assert_whole_flows_once_but_attempts_in_doubt,
    complaint,
    register,
)
from tests.polling import eventually

pytestmark = pytest.mark.e2e
# The tests that follow complaints of their own and kill nothing share one system, in its loop; each
# from a patient of its own (alike texts from one contact would be flagged as possible duplicates).
in_the_shared_system = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    running = System(tmp_path_factory.mktemp("complaint-flow"))
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@in_the_shared_system
async def test_a_complaint_flows_through_every_service_exactly_once(
    shared_system: System, http: httpx.AsyncClient
) -> None:
    system = shared_system
    nurse = system.signed_in("n-001")
    response = await http.post(system.url("intake", "/v1/complaints"), json=complaint(), headers=nurse)
    assert response.status_code == 201, response.text
    complaint_id = response.json()["complaint_id"]

    record = await system.wait_for_flow([complaint_id])
    assert await system.events_of(complaint_id) == FLOW_COUNTS
    timeline = [entry for entry in record if entry.complaint_id == complaint_id]
    assert timeline[0].service == "intake"
    assert {entry.event_type: entry.service for entry in timeline} == {
        "ComplaintReceived": "intake",
        "EscalationStarted": "escalation",
        "DutyAssigned": "escalation",
        "NotificationAttempted": "notifier",
        "NotificationSent": "notifier",
        "ComplainantAcknowledged": "notifier",
    }
    case = (await http.get(system.url("escalation", f"/v1/cases/{complaint_id}"), headers=nurse)).json()
    assert case["policy_version"] == "e2e-1"
    owners = {duty["duty"]: duty["owner"] for duty in case["duties"]}
    # From the sample hospital: n-001 reports to sv-003; Ward 3's handler is hd-003.
    assert owners == {
        "supervisor_acknowledgement": "sv-003",
        "supervisor_report": "sv-003",
        "first_hearer_report": "n-001",
        "first_response": "hd-003",
        "patient_feedback": "hd-003",
    }
    first_response = next(duty for duty in case["duties"] if duty["duty"] == "first_response")
    occurred = datetime.fromisoformat(case["complaint_occurred_at"])
    assert datetime.fromisoformat(first_response["due_at"]) == occurred + timedelta(hours=2)
    # The receipt went to the complainant's contact through the local file channel.
    messages = [path.read_text() for path in (system.settings.data_dir / "notifier" / "sink").glob("*.json")]
    reference = reference_of(UUID(complaint_id))  # the one the patient quotes, and every API takes
    [receipt] = [message for message in messages if "sato@example.org" in message and reference in message]
    assert f"受付番号は {reference} です" in json.loads(receipt)["text"]
    # Staff alerts carry the case reference, never the patient's name, contact or story.
    alerts = [message for message in messages if f"[kizuki] Case {reference}" in message]
    assert len(alerts) == 5
    for alert in alerts:
        assert "Sato" not in alert
        assert "sato@example.org" not in alert
        assert "pain medication" not in alert


@in_the_shared_system
async def test_retries_and_bad_requests_add_nothing_to_the_record(
    shared_system: System, http: httpx.AsyncClient
) -> None:
    system = shared_system
    earlier = len(await system.record())  # the other tests' complaints, whose flows are complete
    url = system.url("intake", "/v1/complaints")
    nurse = system.signed_in("n-001")
    body = complaint(complainant={"contact": "retried@example.org"})
    first = await http.post(url, json=body, headers={**nurse, "Idempotency-Key": "call-centre-7781"})
    again = await http.post(url, json=body, headers={**nurse, "Idempotency-Key": "call-centre-7781"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()

    bad = await http.post(url, json=complaint(channel="pigeon"), headers=nurse)
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "channel"
    future = await http.post(url, json=complaint(occurred_at="2999-01-01T00:00:00+00:00"), headers=nurse)
    assert future.status_code == 422

    complaint_id = first.json()["complaint_id"]
    record = await system.wait_for_flow([complaint_id])
    assert {entry.complaint_id for entry in record[earlier:]} == {complaint_id}
    assert await system.events_of(complaint_id) == FLOW_COUNTS

    # The record is immutable: the server itself refuses purge and delete.
    assert system.nc is not None
    js = system.nc.jetstream()
    with pytest.raises(ServerError):
        await js.purge_stream(RECORD_STREAM)
    with pytest.raises(ServerError):
        await js.delete_msg(RECORD_STREAM, 1)
    assert len(await system.record()) == len(record)


async def test_services_killed_mid_flight_intake_too_lose_nothing_and_repeat_nothing(
    system: System, http: httpx.AsyncClient
) -> None:
    url = system.url("intake", "/v1/complaints")
    nurse = system.signed_in("n-001")

    # Each from another patient: alike texts from one contact would be flagged as possible duplicates.
    bodies = [
        complaint(summary=f"complaint {n}", complainant={"contact": f"patient-{n}@example.org"})
        for n in range(30)
    ]

    async def post(n: int) -> str | None:
        """The complaint's id; None when the request was cut off (it is sent again, the same with the
        same key)."""
        body = bodies[n]
        try:
            response = await http.post(url, json=body, headers={**nurse, "Idempotency-Key": f"desk-{n}"})
        except httpx.TransportError:
            return None
        assert response.status_code == 201, response.text
        return str(response.json()["complaint_id"])

    first_batch = [await post(n) for n in range(15)]

    async def some_cases_opened() -> bool:
        return any(entry.event_type == "EscalationStarted" for entry in await system.record())

    await eventually(some_cases_opened, what="the first case to open")
    for service in ("escalation", "notifier"):
        system.kill(service)
    second_batch: list[str | None] = []

    async def post_second_batch() -> None:
        for n in range(15, 30):
            second_batch.append(await post(n))

    posting = asyncio.create_task(post_second_batch())
    await eventually(lambda: asyncio.sleep(0, len(second_batch) >= 5), what="some of the second batch posted")
    system.kill("intake")  # mid-flight: a request in progress, its relay publishing the backlog
    await posting
    await asyncio.gather(*(system.restart(service) for service in ("intake", "escalation", "notifier")))
    # What the kill cut off is sent again with its idempotency key: registered once either way.
    cut_off = [n for n, complaint_id in enumerate(second_batch, start=15) if complaint_id is None]
    assert cut_off, "the kill cut off no request: it came too late to test intake mid-flight"
    again = {n: await post(n) for n in cut_off}
    complaint_ids = [
        str(complaint_id) for complaint_id in [*first_batch, *second_batch] if complaint_id is not None
    ]
    complaint_ids += [str(complaint_id) for complaint_id in again.values()]
    assert len(set(complaint_ids)) == 30

    await system.wait_for_flow(complaint_ids, within=120)
    record = await system.wait_until_quiet()
    assert_whole_flows_once_but_attempts_in_doubt(record, complaint_ids)
    # Quiet, every service says so: nothing waiting in its outbox, nothing failing, nothing set aside.
    for service in system.service_names:
        health = (await http.get(system.url(service, "/health"))).json()
        assert (health["relay"]["lag"], health["relay"]["failing"]) == (0, False), health
        assert all(not c["failing"] and c["set_aside"] == 0 for c in health["consumers"].values()), health


async def test_a_restart_of_nats_loses_nothing(system: System, http: httpx.AsyncClient) -> None:
    url = system.url("intake", "/v1/complaints")
    nurse = system.signed_in("n-001")
    before = (await http.post(url, json=complaint(summary="before"), headers=nurse)).json()["complaint_id"]
    await system.wait_for_flow([before])

    await system.stop_nats()
    # Intake keeps registering while the bus is down: the complaint waits in its outbox.
    response = await http.post(url, json=complaint(summary="while the bus is down"), headers=nurse)
    assert response.status_code == 201
    during = response.json()["complaint_id"]
    await system.start_nats_again()
    after = (await http.post(url, json=complaint(summary="after"), headers=nurse)).json()["complaint_id"]

    record = await system.wait_for_flow([before, during, after])
    counts = Counter((entry.complaint_id, entry.event_type) for entry in record)
    assert counts == Counter(
        {
            (complaint_id, kind): n
            for complaint_id in (before, during, after)
            for kind, n in FLOW_COUNTS.items()
        }
    )


@in_the_shared_system
async def test_a_bad_message_is_set_aside_shown_listed_and_stays_aside_while_it_cannot_be_handled(
    shared_system: System, http: httpx.AsyncClient
) -> None:
    system = shared_system
    assert system.nc is not None
    # On a subject escalation takes from followup (whose chain this flow does not reach): published on
    # intake's, it would end intake's chain in a message no relay wrote.
    bad = await system.nc.jetstream().publish(
        "events.followup.CaseReopenRequested", b'{"type": "CaseReopenRequested", "oops": true}'
    )
    good = await register(system, http, complainant={"contact": "set-aside@example.org"})
    await system.wait_for_flow([good])

    async def shown() -> dict[str, Any]:
        consumers = (await http.get(system.url("escalation", "/health"))).json()["consumers"]
        return consumers if consumers["escalation on EVENTS"]["set_aside"] == 1 else {}

    await eventually(shown, what="escalation's /health showing the message set aside")
    listed = await system.kizuki("set-aside", "list", "--service", "escalation", "--by", "dm-001")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.startswith(f"escalation EVENTS {bad.seq} ")]
    assert len(lines) == 1
    assert "not a valid message" in lines[0]

    refused = await system.kizuki(
        "set-aside", "take-up", "escalation", "EVENTS", str(bad.seq), "--by", "dm-001"
    )
    assert refused.returncode == 1
    assert "(409: it still cannot be handled, it stays set aside" in refused.stderr
    nurse = await system.kizuki("set-aside", "list", "--service", "escalation", "--by", "n-001")
    assert nurse.returncode == 1
    assert "refused (403)" in nurse.stderr
