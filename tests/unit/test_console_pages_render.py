"""The console's new pages render in each language, and the auditor's pages carry no action form. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from kizuki.analysis_figures import analysis_of
from kizuki.verify import Verification
from services.console.analysis import shown
from services.console.filters import NO_FILTERS, Filters
from services.console.i18n import LANGUAGES
from services.console.live import ChangeFeed
from services.console.overview import ROLE_LABELS, SHORTFALLS, STATUS_LABELS, TIERS, TRACKS, UNITS, overview
from services.console.record_desk import ChainHead
from services.console.sessions import Session, Sessions
from services.console.web import Pages
from services.console.work import WorkItem
from shared.directory import watch_directory
from shared.duty_status import STATUSES
from shared.policy import load_policy
from shared.settings import load_settings
from tests.learning_year import NOTICE_ID, PLANTED_CATEGORY, PLANTED_DEPARTMENT, Year
from tests.unit.test_analysis import record
from tests.unit.test_console_overview import NOW, known_cases

pytestmark = pytest.mark.unit

DIRECTORY = watch_directory(load_settings({}).directory_path)


def pages_and_session(staff_id: str, language: str) -> tuple[Pages, Session]:
    sessions = Sessions()
    pages = Pages(sessions, DIRECTORY, "Asia/Tokyo", ChangeFeed())
    session = sessions.get(sessions.start(staff_id, language))
    assert session is not None
    return pages, session


def text(body: bytes | memoryview) -> str:
    return bytes(body).decode()


def navigation_of(staff_id: str) -> set[str]:
    pages, session = pages_and_session(staff_id, "en")
    page = text(pages.render("message.html", "en", session, message="Nothing here.").body)
    nav = page[page.index("<nav") : page.index("</nav>")]
    return set(re.findall(r'href="([^"]+)"', nav))


def test_each_person_is_offered_the_pages_of_their_roles_and_the_auditor_nothing_to_write() -> None:
    assert navigation_of("n-001") == {"/", "/register"}
    assert navigation_of("ex-001") == {"/", "/register", "/overview", "/analysis"}
    assert navigation_of("q-001") == {"/", "/register", "/overview", "/analysis", "/status"}
    assert navigation_of("au-001") == {"/", "/overview", "/analysis", "/record", "/status"}
    assert navigation_of("dm-001") == {"/", "/register", "/erase", "/status"}


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
        last=verified, whole=True, trouble="", cannot_read_whole="",
    ).body)  # fmt: skip
    assert 'data-service="intake"' in record
    assert 'action="/record/verify"' in record
    erase = text(pages.render(
        "erase.html", language, session, complaint_id=known_cases()[0].complaint_id, case=None,
        refusal="", reason="",
    ).body)  # fmt: skip
    assert 'name="reason"' in erase
    assert 'name="confirm"' in erase


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_analysis_page_renders_a_year_per_quarter(language: str) -> None:
    pages, session = pages_and_session("q-001", language)
    policy = load_policy(load_settings({}).policy_path)
    found = analysis_of(record(Year().events), policy, "quarter")
    page = text(pages.render("analysis.html", language, session, **shown(found)).body)
    assert page.count('<th scope="col">2025-Q') == 4 * (1 + len(shown(found)["counted"]))
    assert f'data-department="{PLANTED_DEPARTMENT}" data-category="{PLANTED_CATEGORY}"' in page
    assert f'data-notice="{NOTICE_ID}"' in page
    assert 'href="/analysis.csv?period=quarter"' in page
    assert '<option value="quarter" selected>' in page


@pytest.mark.parametrize("language", LANGUAGES)
def test_my_work_links_to_the_pages_before_and_after_and_acts_back_to_the_same_page(language: str) -> None:
    pages, session = pages_and_session("sv-003", language)
    case = known_cases()[0]
    duty = "supervisor_acknowledgement"
    item = WorkItem(case.complaint_id, "Ward 3", "minor", duty, "sv-003", NOW, False, True, "acknowledge")
    filters = Filters(tier="minor")
    page = text(pages.render(
        "work.html", language, session, here="/" + filters.query(2), items=[item], more=7, filters=filters,
        earlier="/" + filters.query(1), later="/" + filters.query(3), tiers=[], departments=[],
    ).body)  # fmt: skip
    assert 'href="/?tier=minor" rel="prev"' in page
    assert 'href="/?tier=minor&amp;page=3" rel="next"' in page
    assert 'name="next" value="/?tier=minor&amp;page=2"' in page  # an action comes back to this page
    first = text(pages.render(
        "work.html", language, session, here="/", items=[item], more=0, filters=NO_FILTERS, earlier="",
        later="", tiers=[], departments=[],
    ).body)  # fmt: skip
    assert 'class="pages"' not in first
