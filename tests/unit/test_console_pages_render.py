"""The console's new pages render in each language, and the auditor's pages carry no action form. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.console.domain import Duty
from services.console.i18n import LANGUAGES
from services.console.overview import ROLE_LABELS, SHORTFALLS, STATUS_LABELS, TIERS, TRACKS, UNITS, overview
from services.console.record_desk import ChainHead, Verification
from services.console.sessions import Session, Sessions
from services.console.web import Pages
from services.console.work import WorkItem
from shared.directory import load_directory
from shared.duty_status import STATUSES
from shared.settings import load_settings
from tests.unit.test_console_overview import NOW, known_cases

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(load_settings({}).directory_path)
ACTION_FORM = re.compile(r'<form method="post" action="/cases/')


def pages_and_session(staff_id: str, language: str) -> tuple[Pages, Session]:
    sessions = Sessions()
    pages = Pages(sessions, DIRECTORY, "Asia/Tokyo")
    session = sessions.get(sessions.start(staff_id, language))
    assert session is not None
    return pages, session


def text(body: bytes | memoryview) -> str:
    return bytes(body).decode()


def work_page(staff_id: str) -> str:
    pages, session = pages_and_session(staff_id, "en")
    case = known_cases()[2]
    duty: Duty = case.duties["supervisor_report"]
    item = WorkItem(case.complaint_id, case.department, case.tier, duty.kind, duty.owner, duty.due_at,
                    False, False, "report")  # fmt: skip
    return text(pages.render("work.html", "en", session, items=[item], more=0).body)


def test_the_auditor_gets_no_action_form_where_a_supervisor_gets_one() -> None:
    assert ACTION_FORM.search(work_page("sv-003"))
    auditor = work_page("au-001")
    assert not ACTION_FORM.search(auditor)
    assert 'href="/register"' not in auditor
    assert 'href="/record"' in auditor


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_overview_record_and_erasure_pages_render(language: str) -> None:
    pages, session = pages_and_session("q-001", language)
    found = overview(known_cases(), NOW)
    shown = text(pages.render(
        "overview.html", language, session, found=found, tiers=TIERS, tracks=TRACKS, statuses=STATUSES,
        shortfalls=SHORTFALLS, status_labels=STATUS_LABELS, role_labels=ROLE_LABELS, units=UNITS,
        median=(60, "min"), p90=(3.0, "h"),
    ).body)  # fmt: skip
    assert 'src="/overview/duties.svg"' in shown
    assert shown.count("data-complaint=") == 3
    signed = datetime(2026, 11, 24, tzinfo=UTC)
    verified = Verification(signed + timedelta(minutes=1), "au-001", True, "verified: 3 messages", [])
    record = text(pages.render(
        "record.html", language, session, heads=[ChainHead("intake", 7, "ab" * 32, signed, 9)],
        last=verified, whole=True, trouble="",
    ).body)  # fmt: skip
    assert 'data-service="intake"' in record
    assert 'action="/record/verify"' in record
    erase = text(pages.render(
        "erase.html", language, session, complaint_id=known_cases()[0].complaint_id, case=None,
        refusal="", reason="",
    ).body)  # fmt: skip
    assert 'name="reason"' in erase
    assert 'name="confirm"' in erase
