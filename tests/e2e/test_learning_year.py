"""Done when (#16), on the real services: a year of synthetic complaints (generated here, several
hundred, across departments, channels and HCAT categories, with one planted recurring cause: safety on
Ward 3, more each month) imported through intake with their occurrence dates in the past, opened as
cases by escalation and coded through its API; a learning notice issued, chased, signed off by Ward 3
and answered "not applicable, because ..." by Outpatients, all on the record. Then `kizuki analysis`
names the planted cause, its department and its trend, shows the notice, and gives the same bytes
again; the board report renders in Japanese, Chinese and English; the FHIR export of the year validates.

One system for the module, the year published once. Its cases keep a policy whose chase waits an hour
(a year of cases chased every few seconds would flood the record); escalation then restarts under a
policy that chases every few seconds, and the notice's case, opened after, keeps that one."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from fhir.resources.adverseevent import AdverseEvent
from fhir.resources.bundle import Bundle
from fhir.resources.communication import Communication
from fhir.resources.task import Task
from pydantic import BaseModel

from kizuki.analysis import CATEGORIES
from kizuki.audit import RecordEntry
from kizuki.processes import stop
from shared.timers import now
from tests.e2e.conftest import System, complaint, until_record, write_policy
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

T = TypeVar("T")
TOKYO = ZoneInfo("Asia/Tokyo")  # the shipped policy's time zone: the analysis's months are Tokyo's
PLANTED_DEPARTMENT, PLANTED_CATEGORY = "Ward 3", "safety"
# Departments and how many complaints each draws; only Ward 3 and Outpatients are in the directory
# (a notice goes to those), the others' complaints go to the first hearer's supervisor.
DEPARTMENTS = {"Ward 3": 2, "Outpatients": 3, "Radiology": 2, "Pharmacy": 2, "Cardiology": 2}
CHANNELS = ("phone", "walk_in", "web", "email", "letter", "survey")
BACKGROUND_PER_MONTH = 28
# The hospital's own category given at intake (the policy maps most onto HCAT as a suggestion).
OWN_CATEGORY = {
    "quality": "treatment",
    "safety": "patient safety",
    "environment": "facilities",
    "institutional_processes": "waiting times",
    "listening": "not listened to",
    "communication": "explanation",
    "respect_and_patient_rights": "staff attitude",
}
STAGES = ("admission", "examination_and_diagnosis", "care_on_the_ward", "discharge_and_transfer", "other")
IMPORTER, CODER, SECOND_CODER = "n-001", "q-001", "ps-001"
BECAUSE = "=Outpatients gives no medication on a ward round"  # a spreadsheet would run it, unless inert
INTERVAL, ATTEMPTS = 2, 2  # the notice's chase, in seconds
HOUR_CHASE = (3600, 3)  # the year's cases: no second alert while the test runs
RESOURCES: dict[str, type[BaseModel]] = {
    "Task": Task,
    "Communication": Communication,
    "AdverseEvent": AdverseEvent,
}


def planted_per_month(month: int) -> int:
    return 1 + month  # 1 in the first month, 12 in the last: rising


@dataclass
class Synthetic:
    """One generated complaint, and what the services made of it."""

    occurred_at: datetime
    department: str
    categories: list[str]
    channel: str
    complaint_id: str = ""
    reference: str = ""


@dataclass
class Year:
    months: list[datetime]  # the first moment of each month, in Tokyo
    complaints: list[Synthetic]
    staff_reports: list[Synthetic]
    since: str = ""
    until: str = ""
    notice: dict[str, Any] = field(default_factory=dict)
    record: Counter[str] = field(default_factory=Counter)
    notice_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def the_year(today: datetime, seed: int = 16) -> Year:
    """The twelve months before this one, in Tokyo: a background of complaints and the planted cause."""
    draw = random.Random(seed)
    this_month = today.astimezone(TOKYO).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    months: list[datetime] = []
    start = this_month
    for _ in range(12):
        start = (start - timedelta(days=1)).replace(day=1)
        months.insert(0, start)

    def moment(month: datetime) -> datetime:
        return month + timedelta(
            days=draw.randrange(27), hours=draw.randrange(8, 20), minutes=draw.randrange(60)
        )

    complaints, staff_reports = [], []
    for index, month in enumerate(months):
        for _ in range(BACKGROUND_PER_MONTH):
            department = draw.choices(list(DEPARTMENTS), weights=list(DEPARTMENTS.values()))[0]
            categories = list(map(str, draw.sample(CATEGORIES, draw.choice((1, 1, 2)))))
            complaints.append(Synthetic(moment(month), department, categories, draw.choice(CHANNELS)))
        for _ in range(planted_per_month(index)):
            planted = [PLANTED_CATEGORY]
            complaints.append(Synthetic(moment(month), PLANTED_DEPARTMENT, planted, draw.choice(CHANNELS)))
        staff_reports.append(Synthetic(moment(month), PLANTED_DEPARTMENT, [], "staff_report"))
    complaints.sort(key=lambda c: c.occurred_at)
    return Year(months, complaints, staff_reports, since=months[0].isoformat(), until=this_month.isoformat())


class Staff:
    """Request headers per member of staff (a token each), and at most a few requests at a time."""

    def __init__(self, system: System, http: httpx.AsyncClient) -> None:
        self.system, self.http = system, http
        self.headers: dict[str, dict[str, str]] = {}
        self.limit = asyncio.Semaphore(6)

    def of(self, staff_id: str) -> dict[str, str]:
        if staff_id not in self.headers:
            self.headers[staff_id] = self.system.signed_in(staff_id)
        return self.headers[staff_id]

    async def post(
        self, staff_id: str, service: str, path: str, body: dict[str, Any], expect: int = 200
    ) -> Any:
        async with self.limit:
            response = await self.http.post(
                self.system.url(service, path), json=body, headers=self.of(staff_id)
            )
        assert response.status_code == expect, f"{path}: {response.status_code} {response.text}"
        return response.json()

    async def code(self, complaint_id: str, coding: dict[str, Any]) -> dict[str, Any]:
        """The quality officer's coding, once escalation has opened the case (404 until then, nothing
        recorded); answers with the case."""

        async def coded() -> dict[str, Any] | None:
            async with self.limit:
                response = await self.http.post(
                    self.system.url("escalation", f"/v1/cases/{complaint_id}/coding"),
                    json=coding,
                    headers=self.of(CODER),
                )
            assert response.status_code in (200, 404), response.text
            return response.json() if response.status_code == 200 else None

        case = await eventually(coded, within=120, what=f"the case of {complaint_id} coded")
        assert case is not None
        return case

    async def case(self, complaint_id: str) -> dict[str, Any]:
        """The case as the quality officer sees it, once escalation has opened it."""

        async def opened() -> dict[str, Any] | None:
            response = await self.http.get(
                self.system.url("escalation", f"/v1/cases/{complaint_id}"), headers=self.of(CODER)
            )
            return response.json() if response.status_code == 200 else None

        found = await eventually(opened, within=120, what=f"the case of {complaint_id} opened")
        assert found is not None
        return found


async def each(items: list[T], action: Callable[[T], Awaitable[object]]) -> None:
    await asyncio.gather(*(action(item) for item in items))


async def import_year(staff: Staff, year: Year) -> None:
    """Every complaint through intake's import, one batch a channel, as `kizuki import` sends a file."""
    for channel in CHANNELS:
        of_channel = [c for c in year.complaints if c.channel == channel]
        rows = [
            {
                "line": line,
                "values": {
                    "occurred_at": c.occurred_at.isoformat(),
                    "department": c.department,
                    "summary": f"Synthetic complaint {line} by {channel}: {', '.join(c.categories)}.",
                    "category": OWN_CATEGORY[c.categories[0]],
                },
            }
            for line, c in enumerate(of_channel, start=2)
        ]
        digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
        batch = {"channel": channel, "file_digest": digest, "rows": rows}
        results = await staff.post(IMPORTER, "intake", "/v1/imports", batch)
        assert [r["outcome"] for r in results] == ["registered"] * len(rows), results
        for c, result in zip(of_channel, results, strict=True):
            c.complaint_id = result["complaint_id"]


async def report_adverse_events(staff: Staff, year: Year) -> None:
    """A nurse's anonymous adverse-event report each month, registered with when it occurred."""

    async def report(event: Synthetic) -> None:
        body = complaint(
            channel="staff_report",
            anonymous=True,
            complainant=None,
            occurred_at=event.occurred_at.isoformat(),
            summary="Medication round started late; a dose was nearly given twice.",
        )
        created = await staff.post("n-002", "intake", "/v1/complaints", body, expect=201)
        event.complaint_id, event.reference = created["complaint_id"], created["reference"]

    await each(year.staff_reports, report)


async def code_and_respond(staff: Staff, year: Year, draw: random.Random) -> None:
    """The quality officer codes each case; a second coder codes a sample blind; the handler's apology
    call is entered with the time it was made; a planted complaint a month is linked to that month's
    adverse-event report."""
    plans = [
        (
            c,
            {c_: draw.randint(1, 3) for c_ in c.categories},
            draw.randint(0, 3),
            draw.choice(STAGES),
            draw.random() < 0.2,
            draw.random() < 0.25,
            timedelta(minutes=draw.randrange(20, 600)),
        )
        for c in year.complaints
    ]

    async def handle(plan: tuple[Synthetic, dict[str, int], int, str, bool, bool, timedelta]) -> None:
        c, severities, harm, stage, blind, disagree, after = plan
        path = f"/v1/cases/{c.complaint_id}"
        coding = {"severities": severities, "harm": harm, "stage": stage}
        opened = await staff.code(c.complaint_id, coding)
        if blind:
            seen = {CATEGORIES[(CATEGORIES.index(c.categories[0]) + 1) % 7]: 1} if disagree else severities
            await staff.post(
                SECOND_CODER, "escalation", f"{path}/coding", coding | {"severities": seen, "blind": True}
            )
        owner = next(d["owner"] for d in opened["duties"] if d["duty"] == "first_response")
        call = {"at": (c.occurred_at + after).isoformat(), "patient_reached": True}
        await staff.post(owner, "escalation", f"{path}/first-response", call)

    imported_last = [c for c in year.complaints if c.channel == CHANNELS[-1]][-1]
    await staff.case(imported_last.complaint_id)  # then nearly every case is open: few codings wait
    await each(plans, handle)
    planted = [c for c in year.complaints if c.categories == [PLANTED_CATEGORY]]
    for report in year.staff_reports:
        month = (report.occurred_at.year, report.occurred_at.month)
        same_month = next(c for c in planted if (c.occurred_at.year, c.occurred_at.month) == month)
        link = {"adverse_event": report.reference}
        await staff.post("ps-001", "escalation", f"/v1/cases/{same_month.complaint_id}/safety-event", link)


async def chased_notice(staff: Staff, year: Year) -> None:
    """Today's complaint of the planted cause; its measure issued as a notice to Ward 3 and
    Outpatients, chased until Outpatients reads it and answers "not applicable, because ..." and Ward 3
    signs it off (its read recorded with the answer)."""
    body = complaint(department=PLANTED_DEPARTMENT, category="patient safety", summary="A dose given twice.")
    created = await staff.post(IMPORTER, "intake", "/v1/complaints", body, expect=201)
    complaint_id = created["complaint_id"]
    path = f"/v1/cases/{complaint_id}"
    await staff.case(complaint_id)
    await staff.post(
        CODER,
        "escalation",
        f"{path}/coding",
        {"severities": {"safety": 3}, "harm": 2, "stage": "care_on_the_ward"},
    )
    measure = {"measure": "Two nurses check every dose at the bedside.", "responsible": "sv-003"}
    await staff.post("hd-003", "escalation", f"{path}/corrective-measure", measure)
    issued = await staff.post(
        CODER, "escalation", f"{path}/learning-notices", {"departments": ["Ward 3", "Outpatients"]}
    )
    [notice] = issued["learning_notices"]
    notice_path = f"{path}/learning-notices/{notice['notice_id']}"

    async def chased() -> bool:
        case = await staff.case(complaint_id)
        return all(d["alerts_sent"] >= 2 for d in case["learning_notices"][0]["departments"])

    await eventually(chased, within=60, what="each department alerted again")
    await staff.post("sv-010", "escalation", f"{notice_path}/read", {"department": "Outpatients"})
    not_applicable = {"department": "Outpatients", "answer": "not_applicable", "reason": BECAUSE}
    await staff.post("sv-010", "escalation", f"{notice_path}/answer", not_applicable)
    await staff.post(
        "sv-003", "escalation", f"{notice_path}/answer", {"department": "Ward 3", "answer": "action_complete"}
    )
    year.notice = {"complaint_id": complaint_id, "notice_id": notice["notice_id"]}


def policy_of(path: Path, version: str, chase: tuple[int, int]) -> Path:
    """The shipped policy, chased as given; apology calls entered up to 420 days after they were made
    (the year's calls are entered now)."""
    write_policy(path, version=version, chase=chase)
    text, found = re.subn(
        r"(?m)^first_response_within_seconds = \d+",
        "first_response_within_seconds = 36288000",
        path.read_text(),
    )
    assert found == 1
    path.write_text(text, encoding="utf-8")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def year(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[System, Year]]:
    root = tmp_path_factory.mktemp("learning-year")
    policy = policy_of(root / "policy.toml", "year-1", HOUR_CHASE)
    system = System(root, policy, services=("intake", "escalation"))
    published = the_year(now())
    await system.start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            staff = Staff(system, http)
            await report_adverse_events(staff, published)
            await import_year(staff, published)
            await code_and_respond(staff, published, random.Random(17))
            stop(system.services["escalation"])
            policy_of(policy, "year-2", (INTERVAL, ATTEMPTS))
            await system.restart("escalation")
            await chased_notice(staff, published)

        def answered(record: list[RecordEntry]) -> bool:
            about = [e for e in record if e.complaint_id == published.notice["complaint_id"]]
            return len([e for e in about if e.event_type == "LearningNoticeAnswered"]) == 2

        # The last answer is stored by escalation; its relay puts it on the record a moment later.
        record = await until_record(system, "both departments' answers on the record", answered)
        published.record = Counter(entry.event_type for entry in record)
        published.notice_events = [
            (entry.event_type, entry.body)
            for entry in record
            if entry.complaint_id == published.notice["complaint_id"]
        ]
        yield system, published
    finally:
        await system.stop()


async def test_the_year_and_the_notice_went_through_the_services_onto_the_record(
    year: tuple[System, Year],
) -> None:
    _, published = year
    counts = published.record
    complaints, reports = len(published.complaints), len(published.staff_reports)
    assert complaints > 400
    assert counts["ComplaintReceived"] == counts["EscalationStarted"] == complaints + reports + 1
    assert counts["FirstResponseRecorded"] == complaints
    assert counts["CaseCoded"] > complaints + 1  # each case, the notice's, and a blind sample
    assert counts["SafetyEventLinked"] == reports
    events = published.notice_events
    [issued] = [body for kind, body in events if kind == "LearningNoticeIssued"]
    assert issued["responsible"] == {"Ward 3": "sv-003", "Outpatients": "sv-010"}
    assert issued["categories"] == [PLANTED_CATEGORY]  # the case's coding
    alerted = Counter(body["recipient"] for kind, body in events if body.get("duty") == "learning_notice")
    assert alerted["sv-003"] >= 2
    assert alerted["sv-010"] >= 2  # chased: alerted again until read or answered
    reads = {body["department"]: body["read_by"] for kind, body in events if kind == "LearningNoticeRead"}
    assert reads == {"Outpatients": "sv-010", "Ward 3": "sv-003"}  # Ward 3's read recorded with its answer
    answers = {
        body["department"]: (body["answer"], body["answered_by"], body["reason"])
        for kind, body in events
        if kind == "LearningNoticeAnswered"
    }
    assert answers == {
        "Ward 3": ("action_complete", "sv-003", None),
        "Outpatients": ("not_applicable", "sv-010", BECAUSE),
    }
    assert not [kind for kind, _ in events if kind == "LearningNoticeOverdue"]


async def test_the_analysis_names_the_planted_cause_its_department_and_trend_and_shows_the_notice(
    year: tuple[System, Year],
) -> None:
    system, published = year
    window = ("--since", published.since, "--until", published.until)
    once, again, table = await asyncio.gather(
        system.kizuki("analysis", "--json", *window),
        system.kizuki("analysis", "--json", *window),
        system.kizuki("analysis", *window),
    )
    assert once.returncode == 0, once.stderr
    assert once.stdout == again.stdout  # the same record, the same bytes
    figures = json.loads(once.stdout)
    assert figures["periods"] == [month.strftime("%Y-%m") for month in published.months]
    complaints = len(published.complaints)
    assert sum(figures["complaints"]) == complaints + len(published.staff_reports)
    cause = figures["recurring"][0]
    assert (cause["department"], cause["category"], cause["trend"]) == (
        PLANTED_DEPARTMENT,
        PLANTED_CATEGORY,
        "rising",
    )
    assert cause["ongoing"]
    assert cause["run"]["periods"] >= 3
    assert figures["by_category"][PLANTED_CATEGORY]["trend"] == "rising"
    assert figures["times"]["first_response"]["all"]["count"] == complaints
    assert all(agreement["pairs"] > 20 for agreement in figures["agreement"].values())
    assert sum(figures["safety_events"]["linked"]) == len(published.staff_reports)

    [notice] = figures["notices"]
    assert notice["notice_id"] == published.notice["notice_id"]
    ward_3, outpatients = (notice["departments"][name] for name in ("Ward 3", "Outpatients"))
    assert (ward_3["answer"]["answer"], ward_3["answer"]["by"]) == ("action_complete", "sv-003")
    assert [read["by"] for read in ward_3["read"]] == ["sv-003"]
    assert (outpatients["answer"]["answer"], outpatients["answer"]["reason"]) == ("not_applicable", BECAUSE)
    assert [read["by"] for read in outpatients["read"]] == ["sv-010"]
    # Issued today, after the year: too early to say whether complaints fell.
    assert (ward_3["complaints_before"], ward_3["afterwards"]) == (None, None)
    assert table.returncode == 0, table.stderr
    assert f"safety in Ward 3: above its baseline {cause['run']['periods']} periods running" in table.stdout
    assert "Outpatients (sv-010): read: sv-010 " in table.stdout
    assert f"not applicable by sv-010 ({BECAUSE})" in table.stdout


async def test_the_board_report_renders_in_japanese_chinese_and_english(year: tuple[System, Year]) -> None:
    """Written under the system's data directory (var/board/<language>): the PNGs and the PDF's
    pages were looked at. Here: every file, the CJK font each language needs, a page per chart."""
    system, published = year
    board = system.settings.data_dir / "board"
    fonts = {"ja": b"NotoSansCJKjp", "zh": b"NotoSansCJKsc", "en": b"DejaVuSans"}
    window = ("--since", published.since, "--until", published.until)
    runs = await asyncio.gather(
        *(
            system.kizuki("analysis", *window, "--board", str(board / language), "--language", language)
            for language in fonts
        )
    )
    for run in runs:
        assert run.returncode == 0, run.stderr
    charts = ("by-domain", "by-department", "recurring", "first-response", "notices")
    for language, font in fonts.items():
        for chart in charts:
            assert (board / language / f"{chart}.{language}.png").read_bytes().startswith(b"\x89PNG")
        pdf = (board / language / f"board-report.{language}.pdf").read_bytes()
        assert font in pdf
        assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") == 2 + len(charts)


async def test_the_fhir_export_of_the_year_validates(year: tuple[System, Year]) -> None:
    system, published = year
    out = system.settings.data_dir / "fhir-year.json"
    run = await system.kizuki("fhir", "--since", published.since, "--until", published.until, str(out))
    assert run.returncode == 0, run.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(document)
    periods = [entry["resource"] for entry in document["entry"]]
    assert [p["identifier"]["value"] for p in periods] == [m.strftime("%Y-%m") for m in published.months]
    kinds: Counter[str] = Counter()
    linked = 0
    for period in periods:
        for entry in period["entry"]:
            resource = entry["resource"]
            RESOURCES[resource["resourceType"]].model_validate(resource)
            kinds[resource["resourceType"]] += 1
            linked += len(resource.get("supportingInfo", []))
    assert kinds["Task"] == len(published.complaints)
    assert kinds["Communication"] == len(published.complaints)  # the apology calls; no feedback yet
    assert kinds["AdverseEvent"] == len(published.staff_reports)
    assert linked == len(published.staff_reports)
