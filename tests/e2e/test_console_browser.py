"""The staff console in Debian's Chromium, in each language: a nurse registers a complaint heard by
phone, her supervisor's "My work" shows it without a reload, she acknowledges it with a click, and it
is on the record; a nurse of another department sees none of it, nor the overview; quality reads the
overview, the auditor verifies the record, the administrator erases the patient data. Screenshots of
each page go to var/."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from services.console.i18n import LANGUAGES, translations
from shared.reference import reference_of
from tests.e2e.conftest import KIZUKI, System, of, until_record

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "console"
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
PASSWORD = "correct horse battery staple"
STORY = "点滴の交換が一時間以上遅れ、ナースコールにも応答がなかったとのお電話。"


def set_password(system: System, staff_id: str) -> None:
    """As staff do it: `kizuki password STAFF_ID`, the password on standard input."""
    done = subprocess.run(
        [KIZUKI, "password", staff_id], input=PASSWORD + "\n", env=system.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed: `make test` installs it")
    async with async_playwright() as playwright:
        # As root (CI, containers) Chromium runs only without its sandbox.
        launched = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(
    browser: Browser, system: System, staff_id: str, language: str, phone: bool = False
) -> Page:
    """Signed in, then switched to the language by the switch every page has."""
    context: BrowserContext = await browser.new_context(
        viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone
    )
    page = await context.new_page()
    await page.goto(system.url("console", "/"))
    await page.fill("input[name=staff_id]", staff_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action^='/sign-in'] button")
    await page.wait_for_selector("#work")
    await page.click(f"button[name=language][value={language}]")
    await page.wait_for_selector(f"html[lang={language}]")
    return page


async def shoot(page: Page, name: str) -> None:
    """The page at desktop and at phone width, whatever its own viewport."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    if size is not None:
        await page.set_viewport_size(size)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_phone_complaint_reaches_the_supervisors_work_live_and_she_acknowledges_it(
    system: System, browser: Browser, language: str
) -> None:
    _ = translations(language).gettext  # what the pages say, from the console's own catalogue
    for staff_id in ("n-001", "sv-003", "n-002", "q-001", "au-001", "dm-001"):
        set_password(system, staff_id)
    supervisor = await signed_in(browser, system, "sv-003", language, phone=True)
    await supervisor.evaluate("window.notReloaded = true")
    nurse = await signed_in(browser, system, "n-001", language)
    await nurse.goto(system.url("console", f"/sign-in?lang={language}"))
    await shoot(nurse, f"{language}-sign-in")
    await nurse.goto(system.url("console", "/"))
    await shoot(nurse, f"{language}-work-empty")

    # The nurse registers what she heard on the phone.
    await nurse.click("a[href='/register']")
    await nurse.get_by_label(_("Phone"), exact=True).check()
    await nurse.get_by_label(_("What happened (facts only)")).fill(STORY)
    await nurse.get_by_label(_("Complainant's name (optional)")).fill("佐藤 花子")
    await shoot(nurse, f"{language}-register")
    await nurse.get_by_role("button", name=_("Register"), exact=True).click()
    deadline = nurse.locator("#apology-deadline")
    await deadline.wait_for()
    assert _("The apology call is due by %(time)s.").split("%(time)s")[0] in (
        await deadline.text_content() or ""
    )
    reference = (await nurse.locator("#reference").text_content() or "").strip()
    complaint_id = await nurse.locator("#reference").get_attribute("data-complaint") or ""
    assert reference == reference_of(UUID(complaint_id))
    await shoot(nurse, f"{language}-registered")

    # Her supervisor's open page shows it by itself: no reload, no click.
    item = supervisor.locator(f"[data-complaint='{complaint_id}'][data-duty='supervisor_acknowledgement']")
    await item.wait_for(timeout=10_000)
    assert await supervisor.evaluate("window.notReloaded") is True
    await shoot(supervisor, f"{language}-work")
    await item.get_by_role("button", name=_("Acknowledge")).click()
    record = await until_record(
        system,
        "the supervisor's acknowledgement",
        lambda r: of(r, complaint_id, "AlertAcknowledged", "supervisor_acknowledgement"),
    )
    [acknowledged] = of(record, complaint_id, "AlertAcknowledged", "supervisor_acknowledgement")
    assert acknowledged["by"] == "sv-003"
    [received] = of(record, complaint_id, "ComplaintReceived")
    assert (received["channel"], received["heard_by"]) == ("phone", "n-001")

    # The case page; closing it now is refused by escalation, and the console says why.
    await supervisor.goto(system.url("console", f"/cases/{complaint_id}"))
    await shoot(supervisor, f"{language}-case")
    await supervisor.get_by_role("button", name=_("Close the case")).click()
    refusal = supervisor.locator(".refusal")
    await refusal.wait_for()
    assert "first_response" in (await refusal.text_content() or "")
    await shoot(supervisor, f"{language}-case-refused")
    assert not of(await system.record(), complaint_id, "CaseClosed")

    # The case by the reference read out on the phone; "My work" narrowed, and still so after a case.
    await supervisor.goto(system.url("console", f"/cases/{reference}"))
    assert await supervisor.locator("#reference").text_content() == reference
    await supervisor.locator("#patient").wait_for()  # she is in the first hearer's chain: intake shows her
    await supervisor.click("a[href='/']")
    await supervisor.get_by_label(_("Overdue only")).check()
    await supervisor.get_by_role("button", name=_("Filter"), exact=True).click()
    await supervisor.wait_for_url(re.compile(r"overdue=yes"))
    await shoot(supervisor, f"{language}-work-filtered")
    await supervisor.goto(system.url("console", f"/cases/{reference}"))
    await supervisor.click("a[href='/']")
    assert await supervisor.get_by_label(_("Overdue only")).is_checked()
    assert await supervisor.locator(f"[data-complaint='{complaint_id}']").count() == 0  # nothing overdue

    # Once the apology call is made, its callback is on the callback staff's page.
    async with httpx.AsyncClient(timeout=10) as http:
        made = await http.post(
            system.url("escalation", f"/v1/cases/{complaint_id}/first-response"),
            json={"patient_reached": True, "notes": "Apologised."},
            headers=system.signed_in("hd-003"),
        )
        assert made.status_code == 200, made.text
    record = await until_record(system, "the callback", lambda r: of(r, complaint_id, "CallbackScheduled"))
    [scheduled] = of(record, complaint_id, "CallbackScheduled")
    set_password(system, scheduled["assignee"])
    caller = await signed_in(browser, system, scheduled["assignee"], language)
    await caller.click("a[href='/callbacks']")
    await caller.locator(f"[data-callback='{scheduled['callback_id']}']").wait_for()
    await shoot(caller, f"{language}-callbacks")

    # A nurse of another department sees none of it.
    other = await signed_in(browser, system, "n-002", language)
    assert await other.locator(f"[data-complaint='{complaint_id}']").count() == 0
    answer = await other.goto(system.url("console", f"/cases/{complaint_id}"))
    assert answer is not None
    assert answer.status == 404
    await shoot(other, f"{language}-case-not-hers")
    refused = await other.goto(system.url("console", "/overview"))
    assert refused is not None
    assert refused.status == 403
    await shoot(other, f"{language}-overview-refused")

    # Quality reads the overview; the auditor verifies the record; the administrator erases the data.
    quality = await signed_in(browser, system, "q-001", language)
    await quality.click("a[href='/overview']")
    await quality.locator(f"#tracks [data-complaint='{complaint_id}']").wait_for()
    await shoot(quality, f"{language}-overview")
    auditor = await signed_in(browser, system, "au-001", language)
    await auditor.click("a[href='/record']")
    await auditor.get_by_role("button", name=_("Verify the whole record now")).click()
    await auditor.locator("#verification").wait_for()
    await shoot(auditor, f"{language}-record")
    administrator = await signed_in(browser, system, "dm-001", language)
    await administrator.click("a[href='/erase']")
    await administrator.get_by_label(_("Complaint id"), exact=True).fill(complaint_id)
    await administrator.get_by_role("button", name=_("Continue")).click()
    await administrator.get_by_label(_("Why (for instance: the patient asked, on what date)")).fill("1 Dec")
    await administrator.get_by_label(_("I understand that the patient data cannot be brought back.")).check()
    await shoot(administrator, f"{language}-erase")
    await administrator.get_by_role("button", name=_("Erase the patient data for good")).click()
    await administrator.locator("[role=status]").wait_for()
    await shoot(administrator, f"{language}-erased")
    record = await until_record(system, "the erasure", lambda r: of(r, complaint_id, "ComplaintErased"))
    assert of(record, complaint_id, "ComplaintErased")[0]["by"] == "dm-001"
