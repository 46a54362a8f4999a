"""The staff console in Debian's Chromium, in each language, one complaint from start to close by
clicking only: a nurse registers a complaint heard by phone; her supervisor's "My work" shows it without
a reload and she acknowledges it; both reports go to an executive; the handler records the apology
call; callback staff record the outcome once the callback is due; an executive records the corrective
measure and closes the case. Each step is asserted on the record. A nurse of another department sees
none of it, nor the overview; the auditor verifies the record; the administrator erases the patient
data. Refusals are said in the person's language. One system serves the three languages; screenshots
of each page, at desktop and phone widths, go to var/screenshots/console/."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from services.console import labels
from services.console.i18n import LANGUAGES, translations
from shared.directory import load_directory
from shared.passwords import set_password as store_password
from shared.reference import reference_of
from shared.settings import SERVICES
from tests.e2e.conftest import KIZUKI, System, of, until_record, write_policy

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "console"
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
PASSWORD = "correct horse battery staple"
# What the nurse heard on the phone, in the language of the run.
STORIES = {
    "ja": "点滴の交換が一時間以上遅れ、ナースコールにも応答がなかったとのお電話。",
    "zh": "家属来电：输液更换晚了一个多小时，呼叫铃也无人应答。",
    "en": "The caller says the drip was changed over an hour late and the call bell went unanswered.",
}
COMPLAINANTS = {"ja": "佐藤 花子", "zh": "王 丽", "en": "Hanako Sato"}
# Everyone who signs in: the Ward 3 chain, callback staff (either may be given the callback), the
# executive who closes, a nurse of Outpatients, the auditor and the administrator.
PEOPLE = ("n-001", "sv-003", "hd-003", "cb-001", "cb-002", "ex-002", "n-002", "au-001", "dm-001")


def set_password(system: System, staff_id: str) -> None:
    """As staff do it: `kizuki password STAFF_ID`, the password on standard input."""
    done = subprocess.run(
        [KIZUKI, "password", staff_id], input=PASSWORD + "\n", env=system.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    """One system with the console for the three languages; callbacks due 2 s after the apology call
    (the e2e policy's), so that callback staff can record an outcome at once."""
    where = tmp_path_factory.mktemp("console-browser")
    system = System(where, write_policy(where / "policy.toml"), services=SERVICES)
    try:
        await system.start()
        # As `kizuki password` sets them (its own test is the sign-in's), without a process for each.
        directory = load_directory(system.settings.directory_path)
        for staff_id in PEOPLE:
            store_password(system.settings.console_passwords, staff_id, PASSWORD, directory)
        yield system
    finally:
        await system.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
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
    browser: Browser, system: System, staff_id: str, language: str, phone: bool = False, shot: str = ""
) -> Page:
    """Signed in from the sign-in page in the language (``shot``: its screenshot's name), then switched
    to the language by the switch every page has (a person's own language is the directory's)."""
    context: BrowserContext = await browser.new_context(
        viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone
    )
    page = await context.new_page()
    await page.goto(system.url("console", "/"))
    await page.click(f"a[href='/sign-in?lang={language}']")
    await page.wait_for_selector(f"html[lang={language}]")
    if shot:
        await shoot(page, shot)
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
async def test_one_phone_complaint_is_carried_from_registration_to_close_by_clicking_only(
    console: System, browser: Browser, language: str
) -> None:
    system = console
    _ = translations(language).gettext  # what the pages say, from the console's own catalogue
    supervisor = await signed_in(browser, system, "sv-003", language, phone=True)
    await supervisor.evaluate("window.notReloaded = true")
    nurse = await signed_in(browser, system, "n-001", language, shot=f"{language}-sign-in")
    await shoot(nurse, f"{language}-work-nurse")

    # The nurse registers what she heard on the phone.
    await nurse.click("a[href='/register']")
    await nurse.get_by_label(_("Phone"), exact=True).check()
    await nurse.get_by_label(_("What happened (facts only)")).fill(STORIES[language])
    await nurse.get_by_label(_("Complainant's name (optional)")).fill(COMPLAINANTS[language])
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
    record = await system.record()
    [received] = of(record, complaint_id, "ComplaintReceived")
    assert (received["channel"], received["heard_by"]) == ("phone", "n-001")

    # Her supervisor's open page shows it by itself: no reload, no click. She acknowledges it there.
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

    # Both reports to an executive, each from the person's own "My work".
    report = supervisor.locator(f"[data-complaint='{complaint_id}'][data-duty='supervisor_report']")
    await report.get_by_label(_("Report (one line is enough)")).fill(STORIES[language])
    await report.locator("select[name=to]").select_option("ex-001")
    await report.get_by_role("button", name=_("File the report")).click()
    await nurse.click("a[href='/']")
    report = nurse.locator(f"[data-complaint='{complaint_id}'][data-duty='first_hearer_report']")
    await report.get_by_label(_("Report (one line is enough)")).fill(STORIES[language])
    await report.locator("select[name=to]").select_option("ex-002")
    await report.get_by_role("button", name=_("File the report")).click()
    record = await until_record(
        system, "both reports", lambda r: len(of(r, complaint_id, "ReportFiled")) == 2
    )
    tracks = {(body["track"], body["by"], body["to"]) for body in of(record, complaint_id, "ReportFiled")}
    assert tracks == {("supervisor_report", "sv-003", "ex-001"), ("first_hearer_report", "n-001", "ex-002")}

    # The case page; closing it now is refused, and she is told why in her language.
    await supervisor.locator(f"[data-complaint='{complaint_id}'] a[href='/cases/{reference}']").first.click()
    await supervisor.locator("#patient").wait_for()  # she is in the first hearer's chain: intake shows her
    await shoot(supervisor, f"{language}-case")
    await supervisor.get_by_role("button", name=_("Close the case")).click()
    refusal = supervisor.locator(".refusal")
    await refusal.wait_for()
    refused = await refusal.text_content() or ""
    assert _(labels.DUTIES["first_response"]) in refused
    assert "first_response" not in refused  # the duty's name on the page, not the record's word
    await shoot(supervisor, f"{language}-case-refused")
    assert not of(await system.record(), complaint_id, "CaseClosed")

    # "My work" narrowed, and still so after a case.
    await supervisor.click("a[href='/']")
    await supervisor.get_by_label(_("Overdue only")).check()
    await supervisor.get_by_role("button", name=_("Filter"), exact=True).click()
    await supervisor.wait_for_url(re.compile(r"overdue=yes"))
    await shoot(supervisor, f"{language}-work-filtered")
    await supervisor.click("a[href='/register']")
    await supervisor.click("a[href='/']")
    assert await supervisor.get_by_label(_("Overdue only")).is_checked()
    assert await supervisor.locator(f"[data-complaint='{complaint_id}']").count() == 0  # nothing overdue

    # The department's handler records the apology call from her "My work".
    handler = await signed_in(browser, system, "hd-003", language)
    call = handler.locator(f"[data-complaint='{complaint_id}'][data-duty='first_response']")
    await call.get_by_label(_("The patient was reached")).check()
    await call.get_by_label(_("Notes")).fill(STORIES[language])
    await shoot(handler, f"{language}-work-handler")
    await call.get_by_role("button", name=_("Record the apology call")).click()
    record = await until_record(
        system, "the apology call", lambda r: of(r, complaint_id, "FirstResponseRecorded")
    )
    [response] = of(record, complaint_id, "FirstResponseRecorded")
    assert (response["by"], response["patient_reached"]) == ("hd-003", True)

    # Callback staff record the outcome once the callback is due.
    record = await until_record(system, "the callback due", lambda r: of(r, complaint_id, "CallbackDue"))
    [scheduled] = of(record, complaint_id, "CallbackScheduled")
    caller = await signed_in(browser, system, scheduled["assignee"], language)
    await caller.click("a[href='/callbacks']")
    callback = caller.locator(f"[data-callback='{scheduled['callback_id']}']")
    await callback.get_by_label(_("Resolved, in the patient's words")).check()
    await callback.get_by_label(_("What the patient said"), exact=True).fill(STORIES[language])
    await callback.locator("select[name=satisfaction]").select_option("4")
    await shoot(caller, f"{language}-callbacks")
    await callback.get_by_role("button", name=_("Record the outcome")).click()
    record = await until_record(
        system,
        "the outcome, fed back to the patient",
        lambda r: of(r, complaint_id, "DutyFulfilled", "patient_feedback"),
    )
    [completed] = of(record, complaint_id, "CallbackCompleted")
    assert (completed["by"], completed["satisfaction"], completed["resolved"]) == (
        scheduled["assignee"],
        4,
        True,
    )

    # A nurse of another department sees none of it.
    other = await signed_in(browser, system, "n-002", language)
    assert await other.locator(f"[data-complaint='{complaint_id}']").count() == 0
    answer = await other.goto(system.url("console", f"/cases/{reference}"))
    assert answer is not None
    assert answer.status == 404
    assert complaint_id not in await other.content()  # not even that the reference names a case
    await shoot(other, f"{language}-case-not-hers")
    answer = await other.goto(system.url("console", "/overview"))
    assert answer is not None
    assert answer.status == 403
    await shoot(other, f"{language}-overview-refused")

    # An executive finds the case on the overview, records the corrective measure and closes it.
    executive = await signed_in(browser, system, "ex-002", language)
    await executive.click("a[href='/overview']")
    row = executive.locator(f"#tracks [data-complaint='{complaint_id}']")
    assert (await row.locator("code").text_content()) == reference
    await shoot(executive, f"{language}-overview")
    await row.get_by_role("link", name=reference).click()
    await executive.get_by_label(_("Measure against recurrence")).fill(STORIES[language])
    await executive.locator("select[name=responsible]").select_option("sv-003")
    await executive.get_by_role("button", name=_("Record the corrective measure")).click()
    record = await until_record(
        system, "the corrective measure", lambda r: of(r, complaint_id, "CorrectiveMeasureRecorded")
    )
    [measure] = of(record, complaint_id, "CorrectiveMeasureRecorded")
    assert (measure["by"], measure["responsible"]) == ("ex-002", "sv-003")
    await executive.get_by_role("button", name=_("Close the case")).click()
    record = await until_record(system, "the case closed", lambda r: of(r, complaint_id, "CaseClosed"))
    assert of(record, complaint_id, "CaseClosed")[0]["by"] == "ex-002"
    await executive.locator("#case dd", has_text=_("closed")).first.wait_for()
    await shoot(executive, f"{language}-case-closed")

    # The auditor verifies the record; the administrator erases the patient data.
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
    for context in browser.contexts:
        await context.close()
