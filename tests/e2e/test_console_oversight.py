"""The console's overview, the auditor's record page and the administrator's erasure, over HTTP on a
running system: who may open each page (a 403 page in their language for the others), the overview's
figures on known cases, the proof as a download that `kizuki audit verify` accepts, and the erasure
on the record as the administrator who confirmed it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from kizuki.processes import stop
from services.console.i18n import translations
from services.console.refusals import refused as refused_by
from services.console.roles import NOT_FOR_YOUR_ROLE
from shared.directory import load_directory
from shared.timers import now
from tests.e2e.conftest import System, of, register, until_record
from tests.e2e.test_console_browser import set_password
from tests.e2e.test_console_forms import console_of
from tests.e2e.test_console_sign_in import csrf_of
from tests.polling import eventually

pytestmark = pytest.mark.e2e

PAGES = ("/overview", "/overview/duties.svg", "/record", "/erase")
# Who may open which of them: the rest get 403.
MAY_OPEN = {
    "n-001": set(),
    "ex-001": {"/overview", "/overview/duties.svg"},
    "q-001": {"/overview", "/overview/duties.svg"},
    "au-001": {"/overview", "/overview/duties.svg", "/record"},
    "dm-001": {"/erase"},
}
ACTION_FORM = re.compile(r'<form method="post" action="/cases/')


async def test_each_page_opens_for_its_roles_only_and_refuses_the_others_in_their_language(
    system: System,
) -> None:
    directory = load_directory(system.settings.directory_path)
    for staff_id in MAY_OPEN:
        set_password(system, staff_id)
    for staff_id, allowed in MAY_OPEN.items():
        language = directory.staff[staff_id].language
        async with console_of(system, staff_id) as console:
            for path in PAGES:
                page = await console.get(path)
                if path in allowed:
                    assert page.status_code == 200, (staff_id, path, page.text)
                    continue
                assert page.status_code == 403, (staff_id, path)
                assert f'<html lang="{language}">' in page.text
                assert translations(language).gettext(NOT_FOR_YOUR_ROLE) in page.text
            if staff_id == "au-001":  # the auditor reads everything and is offered no action
                for path in ("/", "/overview", "/record"):
                    assert not ACTION_FORM.search((await console.get(path)).text)


async def test_the_overview_shows_known_cases_their_tracks_and_the_first_response_time(
    system: System, http: httpx.AsyncClient
) -> None:
    set_password(system, "q-001")
    occurred = now() - timedelta(minutes=90)
    reached_id = await register(system, http, occurred_at=occurred.isoformat())
    waiting_id = await register(system, http, department="Outpatients")
    await until_record(
        system,
        "both cases' duties",
        lambda r: all(of(r, c, "DutyAssigned") for c in (reached_id, waiting_id)),
    )
    call = await http.post(
        system.url("escalation", f"/v1/cases/{reached_id}/first-response"),
        json={"patient_reached": True, "at": (occurred + timedelta(minutes=75)).isoformat()},
        headers=system.signed_in("hd-003"),
    )
    assert call.status_code == 200, call.text
    await until_record(system, "the apology call", lambda r: of(r, reached_id, "FirstResponseRecorded"))

    language = load_directory(system.settings.directory_path).staff["q-001"].language
    median = translations(language).gettext("%(amount)s min") % {"amount": 75}
    async with console_of(system, "q-001") as console:

        async def shown() -> str:
            page = (await console.get("/overview")).text
            return page if median in page else ""

        page = await eventually(shown, what="the apology call's 75 minutes on the overview")
        assert re.search(r'id="open-cases">2<', page)
        for complaint_id in (reached_id, waiting_id):
            row = page[page.index(f'data-complaint="{complaint_id}"') :]
            row = row[: row.index("</tr>")]
            assert 'data-track="supervisor_report" data-status="not_yet_due"' in row
            assert 'data-track="first_hearer_report" data-status="not_yet_due"' in row
        duties = page[page.index('data-duty="first_response"') :]
        assert 'data-status="on_time">1<' in duties[: duties.index("</tr>")]
        picture = await console.get("/overview/duties.svg")
        assert picture.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in picture.text
        assert "first_response" not in picture.text  # the duty's name in words, not the record's key


async def test_the_auditor_verifies_the_record_sees_the_chain_heads_and_downloads_a_proof_that_holds(
    system: System, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    set_password(system, "au-001")
    complaint_id = await register(system, http)
    await until_record(system, "the case's duties", lambda r: of(r, complaint_id, "DutyAssigned"))
    stop(system.services["intake"])  # a clean stop signs intake's chain head
    await system.restart("intake")
    async with console_of(system, "au-001") as console:
        record = await console.get("/record")
        assert 'data-service="intake"' in record.text
        verified = await console.post("/record/verify", data={"csrf": csrf_of(record)})
        assert verified.status_code == 303
        record = await console.get("/record")
        assert 'class="holds"' in record.text
        assert "verified:" in record.text

        proof = await console.get("/record/proof", params={"complaint": complaint_id})
        assert proof.status_code == 200, proof.text
        assert f'filename="proof-{complaint_id}.jsonl"' in proof.headers["content-disposition"]
        header = json.loads(proof.text.splitlines()[0])
        assert (header["kind"], header["complaint_id"]) == ("proof", complaint_id)
        bundle = tmp_path / "proof.jsonl"
        bundle.write_text(proof.text, encoding="utf-8")
        checked = await system.kizuki(
            "audit", "verify", "--bundle", str(bundle), "--trust", str(system.settings.trust_file)
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

        unknown = await console.get("/record/proof", params={"complaint": str(uuid4())})
        assert unknown.status_code == 404
        whole = await console.get("/record/export")
        header, *lines = [json.loads(line) for line in whole.text.splitlines()]
        assert header["kind"] == "record"
        assert all("data" in line for line in lines)  # every message whole: nothing shown by hash only
        assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))


async def test_the_administrator_erases_patient_data_after_confirming_with_a_reason(
    system: System, http: httpx.AsyncClient
) -> None:
    set_password(system, "dm-001")
    complaint_id = await register(system, http)
    await until_record(system, "the complaint", lambda r: of(r, complaint_id, "ComplaintReceived"))
    async with console_of(system, "dm-001") as console:
        asked = await console.get("/erase", params={"complaint": complaint_id})
        assert asked.status_code == 200
        assert f'action="/erase/{complaint_id}"' in asked.text
        csrf = csrf_of(asked)
        no_reason = await console.post(f"/erase/{complaint_id}", data={"csrf": csrf, "confirm": "yes"})
        assert no_reason.status_code == 422
        unconfirmed = await console.post(f"/erase/{complaint_id}", data={"csrf": csrf, "reason": "Asked."})
        assert unconfirmed.status_code == 422
        record = await system.record()
        assert not of(record, complaint_id, "ComplaintErased")  # nothing was sent to intake yet

        stranger = uuid4()
        refused = await console.post(
            f"/erase/{stranger}", data={"csrf": csrf, "reason": "Asked.", "confirm": "yes"}
        )
        assert refused.status_code == 404
        assert refused_by("intake", 404, None).said("ja") in refused.text  # intake's, in her language

        erased = await console.post(
            f"/erase/{complaint_id}",
            data={"csrf": csrf, "reason": "The patient asked on 1 December.", "confirm": "yes"},
        )
        assert erased.status_code == 200, erased.text
        assert "The patient asked on 1 December." in erased.text
    record = await until_record(system, "the erasure", lambda r: of(r, complaint_id, "ComplaintErased"))
    [erasure] = of(record, complaint_id, "ComplaintErased")
    assert erasure["by"] == "dm-001"
