"""Notifications with the whole system running: the link in an alert stops the chase, and killing the
notifier in the middle of a burst sends nothing twice except under the same idempotency key."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import FLOW_COUNTS, System, of, register, until_record, write_policy
from tests.e2e.test_reporting_regime import ATTEMPTS, INTERVAL, alerts, fire_consumed
from tests.polling import eventually
from tests.providers import Endpoint, http_endpoint

pytestmark = pytest.mark.e2e


@pytest.fixture
async def chasing(tmp_path: Path) -> AsyncIterator[System]:
    running = System(tmp_path, write_policy(tmp_path / "policy.toml", chase=(INTERVAL, ATTEMPTS)))
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def test_the_link_in_an_alert_acknowledges_its_duty_and_stops_the_chase(
    chasing: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await register(chasing, http)
    duty = "supervisor_report"
    record = await until_record(
        chasing,
        "the first alert delivered",
        lambda record: of(record, complaint_id, "NotificationSent", duty),
    )
    delivery_id = of(record, complaint_id, "NotificationSent", duty)[0]["delivery_id"]
    [sent_file] = (chasing.settings.data_dir / "notifier" / "sink").glob(f"alert-sv-003-*-{delivery_id}.json")
    sent = json.loads(sent_file.read_text())
    link = re.findall(r"\S+/ack/\S+", sent["text"])[0]
    assert link.startswith(chasing.url("notifier", "/ack/"))

    opened = await http.get(link)
    assert opened.status_code == 200
    assert '<form method="post">' in opened.text
    confirmed = await http.post(link)
    assert confirmed.status_code == 200, confirmed.text

    record = await until_record(
        chasing, "the acknowledgement", lambda record: of(record, complaint_id, "AlertAcknowledged", duty)
    )
    assert [body["by"] for body in of(record, complaint_id, "NotificationAcknowledged")] == ["sv-003"]
    assert [body["by"] for body in of(record, complaint_id, "AlertAcknowledged", duty)] == ["sv-003"]
    case = await http.get(
        chasing.url("escalation", f"/v1/cases/{complaint_id}"), headers=chasing.signed_in("sv-003")
    )
    acknowledged = next(d for d in case.json()["duties"] if d["duty"] == duty)
    assert acknowledged["acknowledged_by"] == "sv-003"
    sent_before = acknowledged["alerts_sent"]

    await fire_consumed(chasing, complaint_id, duty, sent_before + 1)
    assert len(alerts(await chasing.record(), complaint_id, duty)) == sent_before


@pytest.fixture
def provider() -> Iterator[tuple[str, Endpoint]]:
    with http_endpoint() as endpoint:
        yield endpoint


async def test_a_notifier_killed_in_a_burst_resends_only_what_was_in_doubt_under_the_same_key(
    tmp_path: Path, http: httpx.AsyncClient, provider: tuple[str, Endpoint]
) -> None:
    url, hook = provider
    hook.hanging = {"/hook"}  # every request is held until the notifier has been killed
    channels = tmp_path / "channels.toml"
    channels.write_text(
        f"[delivery]\ntimeout_seconds = 60\nconcurrency_per_channel = 4\n\n"
        f'[channels.email]\nkind = "webhook"\nurl = "{url}/hook"\n',
        encoding="utf-8",
    )
    system = System(tmp_path)
    system.env["KIZUKI_CHANNELS"] = str(channels)
    try:
        await system.start()
        complaints = [await register(system, http) for _ in range(5)]

        async def in_flight() -> bool:
            return len(hook.held) >= 4

        await eventually(in_flight, within=30, what="four deliveries in flight")
        system.kill("notifier")
        hook.release.set()  # the provider took the requests; the notifier never heard
        await system.restart("notifier")

        record = await system.wait_for_flow(complaints, within=90)
        deliveries = len(complaints) * (
            FLOW_COUNTS["NotificationSent"] + FLOW_COUNTS["ComplainantAcknowledged"]
        )
        delivered = [
            entry.body["delivery_id"]
            for entry in record
            if entry.event_type in ("NotificationSent", "ComplainantAcknowledged")
        ]
        assert len(delivered) == len(set(delivered)) == deliveries
        attempts = Counter(
            entry.body["idempotency_key"] for entry in record if entry.event_type == "NotificationAttempted"
        )
        requests = Counter(hook.keys())
        assert len(requests) == deliveries  # the provider's inbox, by key: each delivery once
        resent = {key for key, count in requests.items() if count > 1}
        # Only the attempts the kill left in doubt were sent again, each once, under the same key.
        assert len(resent) == len(hook.held)
        assert all(requests[key] == 2 == attempts[key] for key in resent)
        assert all(requests[key] == 1 == attempts[key] for key in set(requests) - resent)
    finally:
        await system.stop()
