"""Escalation's store lost mid-life, rebuilt from the record alone: the same case views, and the chase of
the open duties goes on, each alert exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from kizuki.audit import RecordEntry
from kizuki.processes import stop
from tests.e2e.conftest import System, alerts_of, of, register, until_record, write_policy

pytestmark = pytest.mark.e2e

INTERVAL = 3  # seconds between alerts to a person who does not answer
ATTEMPTS = 2  # alerts to one person before the next one up the chain


def alerts(record: list[RecordEntry], complaint_id: str | None = None) -> list[tuple[str, str, int]]:
    return [
        (alert["complaint_id"], alert["duty"], alert["alert_number"])
        for alert in alerts_of(record, complaint_id)
    ]


async def act(
    system: System, http: httpx.AsyncClient, case: str, what: str, by: str, body: object = None
) -> None:
    response = await http.post(
        system.url("escalation", f"/v1/cases/{case}/{what}"), json=body, headers=system.signed_in(by)
    )
    assert response.status_code == 200, response.text


async def test_a_lost_store_is_rebuilt_from_the_record_and_the_chase_goes_on(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.toml", version="rebuild-1", chase=(INTERVAL, ATTEMPTS))
    system = System(tmp_path, policy)
    try:
        await system.start()
        async with httpx.AsyncClient(timeout=10) as http:
            await _lose_and_rebuild(system, http)
    finally:
        await system.stop()


async def _lose_and_rebuild(system: System, http: httpx.AsyncClient) -> None:
    # A case that people took through to its close (reports, the apology call, the measure), and one
    # that nobody answers, chased up the chain.
    done, chased = await register(system, http), await register(system, http)
    await until_record(
        system,
        "both cases open",
        lambda record: all(of(record, case, "EscalationStarted") for case in (done, chased)),
    )
    await act(system, http, done, "duties/supervisor_acknowledgement/acknowledge", "sv-003")
    await act(system, http, done, "first-response", "hd-003", {"patient_reached": True, "notes": "Sorry."})
    await act(system, http, done, "patient-feedback", "hd-003")
    await act(system, http, done, "reports", "sv-003", {"to": "ex-002", "text": "Reported."})
    await act(system, http, done, "reports", "n-001", {"to": "ex-002", "text": "Reported."})
    await act(
        system, http, done, "corrective-measure", "sv-003", {"measure": "Rounds.", "responsible": "sv-003"}
    )
    await act(system, http, done, "close", "sv-003")
    record = await until_record(
        system,
        "the open case chased a second time",
        lambda record: any(number >= 2 for _, _, number in alerts(record, chased)),
    )
    reader = system.signed_in("n-001")
    view_url = system.url("escalation", f"/v1/cases/{done}")
    before = (await http.get(view_url, headers=reader)).content

    refused = await system.kizuki("rebuild", "escalation")
    assert refused.returncode != 0
    assert "escalation is running" in refused.stderr
    refused = await system.kizuki("rebuild", "notifier")
    assert refused.returncode != 0
    assert "contact details" in refused.stderr

    stop(system.services["escalation"])
    chased_before = len(alerts(await system.record(), chased))
    store = system.settings.service_dir("escalation")
    for file in store.glob("store.sqlite*"):
        file.unlink()
    (store / "store.sqlite").write_bytes(b"broken " * 1000)
    refused = await system.kizuki("rebuild", "escalation")
    assert refused.returncode != 0
    assert "store cannot be read" in refused.stderr
    (store / "store.sqlite").unlink()
    rebuilt = await system.kizuki("rebuild", "escalation")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "escalation's store rebuilt from the record" in rebuilt.stdout
    again = await system.kizuki("rebuild", "escalation")
    assert again.returncode != 0
    assert "move it away" in again.stderr

    await system.restart("escalation")
    assert (await http.get(view_url, headers=reader)).content == before
    record = await until_record(
        system,
        "the chase going on after the rebuild",
        lambda record: len(alerts(record, chased)) > chased_before,
    )
    record = await until_record(
        system,
        "one more round of the chase",
        lambda record: len(alerts(record, chased)) > chased_before + 1,
    )
    # Each alert of each duty once, numbered without a gap; nothing of the rebuilt store published again.
    numbered = Counter(alerts(record))
    assert [alert for alert, count in numbered.items() if count > 1] == []
    for complaint, duty in {(complaint, duty) for complaint, duty, _ in numbered}:
        numbers = sorted(number for c, d, number in numbered if (c, d) == (complaint, duty))
        assert numbers == list(range(1, len(numbers) + 1)), (duty, numbers)
    event_ids = Counter(entry.body["event_id"] for entry in record if "event_id" in entry.body)
    assert [event for event, count in event_ids.items() if count > 1] == []
