"""Done when: a year of synthetic complaints on a real record; `kizuki analysis` names the planted
recurring cause, its department and its trend, and the learning notice's sign-off; the same record
gives the same bytes; the console's analysis page shows it to quality (not to a nurse) and downloads
the command's own bytes; the board report renders in Japanese, Chinese and English; the FHIR export
validates with the fhir.resources models and carries nothing of the patient."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.adverseevent import AdverseEvent
from fhir.resources.bundle import Bundle
from fhir.resources.communication import Communication
from fhir.resources.task import Task
from pydantic import BaseModel

from kizuki.processes import free_port, start_nats, stop
from kizuki.provision import provision_bus, provision_secrets
from services.console.main import create_app
from shared.bus import connect
from shared.chain import SigningKey
from shared.directory import load_directory
from shared.events import ComplaintReceived
from shared.passwords import set_password
from shared.settings import Settings, load_settings
from tests.e2e.test_console_browser import PASSWORD
from tests.e2e.test_console_sign_in import sign_in
from tests.learning_year import (
    NOTICE_ID,
    PLANTED_CATEGORY,
    PLANTED_DEPARTMENT,
    REASON_NOT_APPLICABLE,
    Year,
    chained_record,
)

pytestmark = pytest.mark.integration

RESOURCES: dict[str, type[BaseModel]] = {
    "Task": Task,
    "Communication": Communication,
    "AdverseEvent": AdverseEvent,
}


def environment(settings: Settings, nats_url: str) -> dict[str, str]:
    """Of the `kizuki` command and the console, against this server and data directory."""
    return os.environ | {"KIZUKI_DATA_DIR": str(settings.data_dir), "NATS_URL": nats_url}


def kizuki(settings: Settings, nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `kizuki` command as the quality officer runs it against this server and data directory."""
    done = subprocess.run(
        [sys.executable, "-m", "kizuki.cli", *args],
        env=environment(settings, nats_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


async def kizuki_at_once(
    settings: Settings, nats_url: str, *runs: tuple[str, ...]
) -> list[subprocess.CompletedProcess[str]]:
    """Several runs of the command at the same time, each a process of its own, on every core."""
    return list(
        await asyncio.gather(*(asyncio.to_thread(kizuki, settings, nats_url, *args) for args in runs))
    )


# The module's tests only read the year: they share one server and data directory, the year published
# onto it once.


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("learning-year-nats")
    port = free_port()
    process = start_nats(port, directory / "nats", directory / "nats-server.log")
    yield f"nats://127.0.0.1:{port}"
    stop(process)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings({"KIZUKI_DATA_DIR": str(tmp_path_factory.mktemp("learning-year") / "var")})
    provision_secrets(settings)
    return settings


@pytest.fixture(scope="module")
def year(nats_url: str, settings: Settings) -> Year:
    """The year published onto the EVENTS stream as the relays publish: chained and signed."""
    synthetic = Year()
    asyncio.run(publish(synthetic, nats_url, settings))
    return synthetic


async def publish(year: Year, nats_url: str, settings: Settings) -> None:
    keys = {
        service: SigningKey.load(settings.signing_key_file(service))
        for service in ("intake", "escalation", "followup")
    }
    await provision_bus(nats_url)
    nc = await connect(nats_url, "test")
    try:
        js = nc.jetstream()
        for message in chained_record(year.events, keys):
            await js.publish(message.subject, message.data or b"", headers=message.headers)
    finally:
        await nc.close()


async def test_a_year_of_complaints_names_the_planted_cause_and_the_notices_sign_off(
    year: Year, settings: Settings, nats_url: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "record.jsonl"
    verified, as_json, table, as_csv, quarterly, _ = await kizuki_at_once(
        settings,
        nats_url,
        ("audit", "verify"),
        ("analysis", "--json"),
        ("analysis",),
        ("analysis", "--csv"),
        ("analysis", "--json", "--period", "quarter"),
        ("audit", "export", str(bundle)),
    )
    assert "every link and signature holds" in verified.stdout
    complaints = sum(isinstance(event, ComplaintReceived) for event in year.events)
    assert complaints > 400

    figures = json.loads(as_json.stdout)
    assert len(figures["periods"]) == 12
    assert sum(figures["complaints"]) == complaints
    [first] = figures["recurring"]  # the planted cause, and no cause the background happens to give
    assert (first["department"], first["category"], first["trend"]) == (
        PLANTED_DEPARTMENT,
        PLANTED_CATEGORY,
        "rising",
    )
    assert first["run"] == {"periods": 12, "first": "2025-01", "last": "2025-12"}
    assert first["ongoing"]
    assert first["later"] > 2 * first["earlier"]
    assert figures["by_category"]["safety"]["trend"] == "rising"
    assert all(figures["agreement"][c]["pairs"] > 20 for c in figures["agreement"])
    assert figures["harassment"]["assessed"] > 0
    assert figures["callbacks"]["completed"] > 0

    (notice,) = figures["notices"]
    assert notice["notice_id"] == str(NOTICE_ID)
    assert notice["categories"] == ["safety"]
    departments = notice["departments"]
    assert departments["Ward 3"]["answer"]["answer"] == "action_complete"
    assert departments["Ward 5"]["answer"] | {"at": None} == {
        "answer": "not_applicable",
        "by": "sv-005",
        "reason": REASON_NOT_APPLICABLE,
        "at": None,
    }
    assert [r["by"] for r in departments["Ward 5"]["read"]] == ["sv-005"]
    assert departments["Cardiology"]["overdue"]
    assert departments["Cardiology"]["answer"] is None
    assert departments["Cardiology"]["read"] == []
    ward_3 = departments["Ward 3"]
    assert notice["periods_compared"] == 3
    assert ward_3["complaints_after"] > ward_3["complaints_before"]
    assert ward_3["afterwards"] == "rose"

    assert (
        "safety in Ward 3: above its baseline 12 periods running (2025-01 to 2025-12, to date), rising"
        in table.stdout
    )
    assert "Cardiology (sv-007): read: not read; no answer, overdue" in table.stdout
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    reasons = [row[3] for row in rows if row[1].endswith("Ward 5/answer/reason")]
    assert reasons == ["'" + REASON_NOT_APPLICABLE]  # inert: a spreadsheet shows it, never runs it

    quarters = json.loads(quarterly.stdout)
    assert quarters["periods"] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert sum(quarters["by_category"]["safety"]["counts"]) == sum(figures["by_category"]["safety"]["counts"])

    forms = ((), ("--csv",), ("--json",), ("--json", "--since", "2025-04-01", "--until", "2025-10-01"))
    from_bundle, *done = [
        run.stdout
        for run in await kizuki_at_once(
            settings,
            nats_url,
            ("analysis", "--json", "--bundle", str(bundle)),  # as exported above
            *(("analysis", *form) for form in forms * 2),
        )
    ]
    assert json.loads(from_bundle) == figures
    for once, twice in zip(done[: len(forms)], done[len(forms) :], strict=True):
        assert once == twice
        assert once


async def test_the_board_report_renders_in_japanese_chinese_and_english(
    year: Year, settings: Settings, nats_url: str, tmp_path: Path
) -> None:
    """The PNGs and PDF pages of all three were looked at (pdftoppm); here: every file is there, the
    PDF embeds the CJK font its language needs and holds a page per chart and table; rendered again,
    every file is the same."""
    fonts = {"ja": b"NotoSansCJKjp", "zh": b"NotoSansCJKsc", "en": b"DejaVuSans"}
    again = tmp_path / "again"
    boards = [(tmp_path / language, language) for language in fonts] + [(again, "zh")]
    await kizuki_at_once(
        settings, nats_url, *(("analysis", "--board", str(out), "--language", lang) for out, lang in boards)
    )
    for language, font in fonts.items():
        out = tmp_path / language
        charts = ("by-domain", "by-department", "recurring", "first-response", "notices")
        for chart in charts:
            assert (out / f"{chart}.{language}.png").read_bytes().startswith(b"\x89PNG")
            assert "<svg" in (out / f"{chart}.{language}.svg").read_text(encoding="utf-8")
        pdf = (out / f"board-report.{language}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF")
        assert font in pdf
        assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") == 2 + len(charts)
    for written in again.iterdir():  # no creation date in any file: the same record, the same bytes
        assert written.read_bytes() == (tmp_path / "zh" / written.name).read_bytes()


async def test_the_fhir_export_of_the_year_validates_and_identifies_no_patient(
    year: Year, settings: Settings, nats_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "fhir.json"
    await kizuki_at_once(settings, nats_url, ("fhir", str(out)), ("fhir", str(tmp_path / "again.json")))
    document = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(document)
    periods = [entry["resource"] for entry in document["entry"]]
    assert [bundle["identifier"]["value"] for bundle in periods] == [f"2025-{m:02d}" for m in range(1, 13)]
    kinds: dict[str, list[dict[str, Any]]] = {}
    for bundle in periods:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            RESOURCES[resource["resourceType"]].model_validate(resource)
            kinds.setdefault(resource["resourceType"], []).append(resource)
    complaints = [e for e in year.events if isinstance(e, ComplaintReceived)]
    staff_reports = [e for e in complaints if e.channel == "staff_report"]
    assert len(kinds["Task"]) == len(complaints) - len(staff_reports)
    assert len(kinds["AdverseEvent"]) == len(staff_reports)
    assert sum(len(a.get("supportingInfo", [])) for a in kinds["AdverseEvent"]) > 0
    planted = [t for t in kinds["Task"] if any(c["code"] == "safety" for c in t["code"].get("coding", []))]
    assert planted
    assert all(
        c["system"] in ("urn:kizuki:hcat", "urn:kizuki:hcat-domain") for c in planted[0]["code"]["coding"]
    )
    text = out.read_text(encoding="utf-8")
    assert all(event.patient_data not in text for event in complaints)
    assert all(set(a["subject"]) == {"type", "display"} for a in kinds["AdverseEvent"])
    assert (tmp_path / "again.json").read_bytes() == out.read_bytes()


async def analysis_printed(settings: Settings, nats_url: str, form: str) -> bytes:
    """`kizuki analysis --csv` or `--json`: the bytes it prints."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kizuki.cli", "analysis", form],
        env=environment(settings, nats_url),
        capture_output=True,
        timeout=120,
        check=True,
    )
    return done.stdout


async def test_the_consoles_analysis_page_shows_the_year_to_quality_and_downloads_the_commands_bytes(
    year: Year, settings: Settings, nats_url: str
) -> None:
    console_settings = load_settings(environment(settings, nats_url))
    directory = load_directory(console_settings.directory_path)
    for staff_id in ("q-001", "n-001"):
        set_password(console_settings.console_passwords, staff_id, PASSWORD, directory)
    app = create_app(console_settings)  # served in the test; it reads the record with its desk
    as_csv, as_json = await asyncio.gather(
        *(analysis_printed(settings, nats_url, form) for form in ("--csv", "--json"))
    )
    figures = json.loads(as_json)

    async with signed_in(app, "q-001") as quality:
        page = await quality.get("/analysis")
        assert page.status_code == 200, page.text
        assert 'href="/analysis"' in page.text  # in the navigation
        shown = page.text
        safety = re.search(r'id="by_category".*?data-key="safety">(.*?)</tr>', shown, re.DOTALL)
        assert safety is not None
        counts = re.findall(r"<td data-label=\"2025-\d\d\">(\d+)</td>", safety.group(1))
        assert counts == [str(count) for count in figures["by_category"]["safety"]["counts"]]
        assert len(counts) == 12
        assert f'data-department="{PLANTED_DEPARTMENT}" data-category="{PLANTED_CATEGORY}"' in shown
        notice = shown[shown.index(f'data-notice="{NOTICE_ID}"') :]
        ward_5 = notice[notice.index('data-department="Ward 5"') :]
        assert 'data-answer="not_applicable"' in ward_5[: ward_5.index("</tr>")]
        assert "sv-005" in ward_5[: ward_5.index("</tr>")]
        assert REASON_NOT_APPLICABLE in ward_5[: ward_5.index("</tr>")]
        ward_3 = notice[notice.index('data-department="Ward 3"') :]
        assert 'data-afterwards="rose"' in ward_3[: ward_3.index("</tr>")]
        cardiology = notice[notice.index('data-department="Cardiology"') :]
        assert 'data-answer="none"' in cardiology[: cardiology.index("</tr>")]

        downloaded = await quality.get("/analysis.csv")
        assert downloaded.headers["content-type"].startswith("text/csv")
        assert downloaded.content == as_csv
        assert (await quality.get("/analysis.json")).content == as_json
        quarterly = await quality.get("/analysis", params={"period": "quarter"})
        assert '<th scope="col">2025-Q4</th>' in quarterly.text
        assert (await quality.get("/analysis", params={"period": "week"})).status_code == 422
        assert (await quality.get("/analysis.xlsx")).status_code == 404

    async with signed_in(app, "n-001") as nurse:
        assert (await nurse.get("/analysis")).status_code == 403
        assert (await nurse.get("/analysis.csv")).status_code == 403
        assert 'href="/analysis"' not in (await nurse.get("/")).text


@asynccontextmanager
async def signed_in(app: FastAPI, staff_id: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8005", timeout=30
    ) as console:
        assert (await sign_in(console, staff_id)).status_code == 303
        yield console
