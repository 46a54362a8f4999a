"""Patient data on the running system: nowhere on disk in clear, and unreadable everywhere once erased."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from nats.js.errors import KeyNotFoundError

from kizuki.processes import stop
from services.escalation.application import EscalationApplication
from shared.bus import KEY_BUCKET
from shared.privacy import KeyVault, MasterKey
from shared.runtime import open_store
from tests.e2e.conftest import System, complaint, of, until_record
from tests.polling import eventually

pytestmark = pytest.mark.e2e

NAME = "Kitagawa Sumire"
PHONE = "+81-90-5555-0142"
PHRASE = "left alone in the corridor for forty minutes"
NOTE = "frightened of the night shift"
COMMENT = "still cannot sleep with the door open"
# On the record in clear, as it should be: proves the search below reads what the services wrote.
CATEGORY = "corridor-care-7781"


def files_holding(root: Path, needle: str | bytes, sink_too: bool = False) -> list[Path]:
    """Every file under root whose bytes contain the needle (a store's write-ahead log and journal
    too), except the local delivery channel's files unless ``sink_too``: those are the messages
    delivered to the complainant (their own receipt), not a store."""
    sink = root / "var" / "notifier" / "sink"
    wanted = needle.encode() if isinstance(needle, str) else needle
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and (sink_too or sink not in path.parents) and wanted in path.read_bytes()
    ]


async def first_response_notes(system: System, vault: KeyVault, complaint_id: UUID) -> str | None:
    """The apology call's notes as escalation keeps them (sealed), opened with the complaint's key."""
    store = open_store(EscalationApplication, system.settings)
    [sealed] = [event.notes for event in store.events.get(complaint_id) if hasattr(event, "notes")]
    store.close()
    return await vault.open_text(complaint_id, "first-response-notes", sealed)


def report_line(report: subprocess.CompletedProcess[str], complaint_id: str) -> dict[str, Any]:
    assert report.returncode == 0, report.stderr
    [line] = [row for row in json.loads(report.stdout)["complaints"] if row["complaint_id"] == complaint_id]
    return dict(line)


def case_facts(case: dict[str, Any]) -> dict[str, Any]:
    """What the compliance figures of a case are made of: everything but statuses computed from now."""
    return {**case, "duties": [{k: v for k, v in duty.items() if k != "status"} for duty in case["duties"]]}


async def test_patient_data_is_nowhere_in_clear_and_erasure_makes_it_unreadable_everywhere(
    system: System, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    body = complaint(
        summary=f"The patient was injured after being {PHRASE}.",
        complainant={"name": NAME, "contact": PHONE},
        category=CATEGORY,
    )
    response = await http.post(
        system.url("intake", "/v1/complaints"), json=body, headers=system.signed_in("n-001")
    )
    assert response.status_code == 201, response.text
    complaint_id = response.json()["complaint_id"]
    record = await system.wait_for_flow([complaint_id])
    # The services that need the clear text opened it: escalation classified by a word of the story,
    # the notifier sent the receipt to the phone number.
    [started] = of(record, complaint_id, "EscalationStarted")
    assert (started["tier"], started["tier_reason"]) == ("major", "keyword 'injured'")
    assert of(record, complaint_id, "ComplainantAcknowledged")

    # What the handler types about the patient after the apology call is kept sealed too.
    response = await http.post(
        system.url("escalation", f"/v1/cases/{complaint_id}/first-response"),
        json={"patient_reached": True, "notes": f"She told me she was {NOTE}."},
        headers=system.signed_in("hd-003"),
    )
    assert response.status_code == 200, response.text
    # The callback after the apology call falls due (in seconds, in this policy): the patient's words.
    record = await until_record(
        system, "the callback to fall due", lambda record: of(record, complaint_id, "CallbackDue")
    )
    [callback] = of(record, complaint_id, "CallbackScheduled")
    callback_url = system.url("followup", f"/v1/callbacks/{callback['callback_id']}")
    response = await http.post(
        f"{callback_url}/outcome",
        json={"satisfaction": 2, "resolved": False, "comments": f"She says she {COMMENT}."},
        headers=system.signed_in(callback["assignee"]),
    )
    assert response.status_code == 200, response.text
    # Not resolved: escalation opens the case again. The case is compared before and after erasure once
    # that is on the record, so that only the erasure could make them differ.
    await until_record(
        system, "the case reopened by the callback", lambda record: of(record, complaint_id, "CaseReopened")
    )

    holding_category = {path.relative_to(tmp_path).parts[:2] for path in files_holding(tmp_path, CATEGORY)}
    assert {("var", "nats"), ("var", "intake")} <= holding_category  # the record's and intake's files
    for secret in (NAME, PHONE, PHRASE, NOTE, COMMENT):
        assert files_holding(tmp_path, secret) == [], secret
    # The receipt "sent" by the local channel is the complainant's own, and only its owner reads it.
    sink = system.settings.service_dir("notifier") / "sink"
    [receipt] = files_holding(sink, PHONE, sink_too=True)
    assert receipt.name.startswith("receipt-")
    assert stat.S_IMODE(receipt.stat().st_mode) == 0o600
    assert stat.S_IMODE(sink.stat().st_mode) == 0o700
    # The complaint's wrapped key, in intake's store and in the key bucket's files on the NATS server.
    with contextlib.closing(sqlite3.connect(system.settings.store_file("intake"))) as store:
        [(wrapped,)] = store.execute(
            "SELECT wrapped FROM patient_keys WHERE complaint_id = ?", (complaint_id,)
        )
    assert files_holding(tmp_path / "var" / "nats", wrapped) != []

    quality = system.signed_in("q-001")
    complaint_url = system.url("intake", f"/v1/complaints/{complaint_id}")
    case_url = system.url("escalation", f"/v1/cases/{complaint_id}")
    assert (await http.get(complaint_url, headers=quality)).json()["complainant"]["name"] == NAME
    assert system.nc is not None
    js = system.nc.jetstream()
    vault = KeyVault(MasterKey.load(system.settings.master_key))
    await vault.bind(js)
    assert await first_response_notes(system, vault, UUID(complaint_id)) == f"She told me she was {NOTE}."
    callback_view = (await http.get(callback_url, headers=quality)).json()
    assert callback_view["comments"] == f"She says she {COMMENT}."
    case_before = case_facts((await http.get(case_url, headers=quality)).json())

    report_before = report_line(await system.kizuki("audit", "report", "--json"), complaint_id)
    erased = await system.kizuki("erase", complaint_id, "--by", "dm-001")
    assert erased.returncode == 0, erased.stderr
    refused = await system.kizuki("erase", complaint_id, "--by", "n-001")
    assert refused.returncode != 0
    assert "takes the role administrator" in refused.stderr

    record = await until_record(
        system, "the erasure on the record", lambda record: of(record, complaint_id, "ComplaintErased")
    )
    [erasure] = of(record, complaint_id, "ComplaintErased")
    assert erasure["by"] == "dm-001"
    # The sealed text is still on the record, as it was, and no longer opens: its key is gone.
    [received] = of(record, complaint_id, "ComplaintReceived")
    assert await vault.data_key(UUID(complaint_id)) is None
    with pytest.raises(KeyNotFoundError):
        await (await js.key_value(KEY_BUCKET)).get(complaint_id)
    assert received["patient_data"]

    after = (await http.get(complaint_url, headers=quality)).json()
    assert (after["summary"], after["complainant"], after["erased_by"]) == (None, None, "dm-001")
    assert await first_response_notes(system, vault, UUID(complaint_id)) is None
    assert (await http.get(callback_url, headers=quality)).json()["comments"] is None
    # Nothing the system wrote holds the wrapped key any more (the server overwrote its message), and
    # the local channel's copy of the receipt went with the complaint.
    assert files_holding(tmp_path, wrapped, sink_too=True) == []

    async def receipt_erased() -> bool:
        return not files_holding(sink, PHONE, sink_too=True)

    await eventually(receipt_erased, what="the sink's receipt erased")
    # The case, and so every compliance figure built from it, is exactly what it was, and the record
    # still proves itself.
    assert case_facts((await http.get(case_url, headers=quality)).json()) == case_before
    assert report_line(await system.kizuki("audit", "report", "--json"), complaint_id) == report_before
    for process in system.services.values():
        stop(process)  # a clean shutdown: each service signs its chain's head
    verified = await system.kizuki("audit", "verify")
    assert verified.returncode == 0, verified.stdout
