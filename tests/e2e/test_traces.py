"""Traces and logs of a running system: one trace per complaint through every service, received by a real
OTLP/HTTP receiver; logs as JSON lines that say which complaint, event and trace, and nothing private."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.settings import SERVICES
from shared.timers import now
from tests.e2e.conftest import REGIME, System, complaint, write_policy
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

NAME = "Hoshino Kaede"
PHONE = "+81-90-5555-0199"
STORY = "the call bell was unplugged all night"
# The apology call's deadline, set as a timer when the case starts: its fire joins the trace.
FIRST_RESPONSE_SECONDS = 4


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def traced(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> AsyncIterator[tuple[System, str, str]]:
    """A system exporting its traces to the receiver (in batches a tenth of a second apart), and one
    complaint through it, posted within the test's own trace: (system, complaint id, trace id)."""
    env = {"KIZUKI_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    root = tmp_path_factory.mktemp("traced")
    policy = write_policy(root / "policy.toml", duty_seconds={"first_response": FIRST_RESPONSE_SECONDS})
    system = System(root, policy, env=env)
    try:
        await system.start()
        trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
        headers = system.signed_in("n-001") | {"traceparent": f"00-{trace_id}-{parent}-01"}
        body = complaint(
            summary=STORY, complainant={"name": NAME, "contact": PHONE}, occurred_at=now().isoformat()
        )
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(system.url("intake", "/v1/complaints"), json=body, headers=headers)
        assert response.status_code == 201, response.text
        complaint_id = str(response.json()["complaint_id"])
        await system.wait_for_flow([complaint_id])
        yield system, complaint_id, trace_id
    finally:
        await system.stop()


async def test_one_trace_links_the_post_through_intake_escalation_notifier_and_followup(
    traced: tuple[System, str, str], receiver: OtlpReceiver
) -> None:
    system, complaint_id, trace_id = traced

    async def of_the_trace() -> list[ReceivedSpan]:
        spans = [span for span in receiver.received() if span.trace_id == trace_id]
        everyone = {span.service for span in spans} >= set(REGIME)
        return spans if everyone and any(span.name == "escalation handles a timer" for span in spans) else []

    spans = await eventually(of_the_trace, within=30, what="spans of every service in the complaint's trace")
    [post] = [span for span in spans if span.service == "intake" and span.parent_span_id]
    assert post.name == "intake POST /v1/complaints"
    assert post.attributes["http.response.status_code"] == "201"
    ids = {span.span_id for span in spans}
    # Every span hangs from the test's own span (the POST) or from another span of the same trace.
    assert all(span.parent_span_id in ids or span is post for span in spans)
    by_id = {span.span_id: span for span in spans}
    received = [span for span in spans if span.name.endswith("handles ComplaintReceived")]
    assert {span.service for span in received} == {"escalation", "notifier", "followup"}
    assert all(by_id[span.parent_span_id] is post for span in received)
    alerts = [span for span in spans if span.name == "notifier handles DutyAssigned"]
    assert alerts
    assert all(by_id[span.parent_span_id].service == "escalation" for span in alerts)
    # Each delivery attempt hangs from the handling of the event that asked for it.
    deliveries = [span for span in spans if span.name.startswith("notifier delivers by ")]
    assert {by_id[span.parent_span_id].name for span in deliveries} == {
        "notifier handles ComplaintReceived",  # the complainant's receipt
        "notifier handles DutyAssigned",  # each duty's first alert, sent with its assignment
    }
    assert all(
        span.attributes["kizuki.complaint_id"] == complaint_id for span in received + alerts + deliveries
    )
    # The deadline's timer, set as the case started, fires within the trace.
    # (Twice if it came a moment early and was put back.)
    fires = [span for span in spans if span.name == "escalation handles a timer"]
    assert {by_id[span.parent_span_id].name for span in fires} == {"escalation handles ComplaintReceived"}
    # The trace rides beside the record's chain: the record still verifies.
    verified = await system.kizuki("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_logs_are_json_lines_with_complaint_event_and_trace_and_nothing_private(
    traced: tuple[System, str, str],
) -> None:
    system, complaint_id, trace_id = traced
    lines: list[dict[str, Any]] = []
    for service in system.service_names:
        for text in (system.logs / f"{service}.log").read_text(encoding="utf-8").splitlines():
            line = json.loads(text)
            assert line["service"] == service
            lines.append(line)
    about = [line for line in lines if line.get("complaint_id") == complaint_id]
    assert about, "no log line names the complaint"
    assert all(line["trace_id"] == trace_id and line["event"] for line in about)
    logged = "\n".join(
        (system.logs / f"{service}.log").read_text(encoding="utf-8") for service in system.service_names
    )
    for private in (NAME, PHONE, STORY, *secret_lines(system)):
        assert private not in logged


def secret_lines(system: System) -> list[str]:
    """Every line of every secret the system keeps (keys, passwords, the services' signing seeds)."""
    files = [path for path in (system.settings.data_dir / "secrets").rglob("*") if path.is_file()]
    files += [system.settings.signing_key_file(service) for service in SERVICES]
    found = [
        line.strip()
        for path in files
        if path.exists()
        for line in path.read_bytes().decode("latin-1").splitlines()
        if len(line.strip()) >= 16 and not line.startswith("-----")
    ]
    assert found, "no secrets found to search for"
    return found
