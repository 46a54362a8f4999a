"""A patient's complaint through the web form, in headless Chromium (Debian's), found on the record."""

from __future__ import annotations

import shutil
from datetime import timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import async_playwright

from kizuki.audit import RecordEntry
from kizuki.qr import form_link
from shared.reference import reference_of
from shared.timers import now
from tests.e2e.conftest import System, until_record

pytestmark = pytest.mark.e2e

STORY = "夜間の点滴の交換が一時間以上遅れ、ナースコールにも応答がありませんでした。"


async def test_a_japanese_complaint_sent_from_a_phone_browser_lands_on_the_record(
    system: System, http: httpx.AsyncClient
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed: `make test` installs it")
    async with async_playwright() as playwright:
        # As root (CI, containers) Chromium runs only without its sandbox.
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            phone = await browser.new_context(
                locale="ja-JP", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            )
            page = await phone.new_page()
            # The ward's QR code opens the form in the phone's language with the ward filled in.
            await page.goto(form_link(system.settings.http_url("intake"), "Ward 3"))
            assert await page.locator("html").get_attribute("lang") == "ja"
            assert await page.get_by_label("部署・病棟").input_value() == "Ward 3"
            # The page's own style sheet is the one thing its Content-Security-Policy lets in.
            button = "getComputedStyle(document.querySelector('button')).backgroundColor"
            assert await page.evaluate(button) == "rgb(0, 79, 159)"
            # The hospital's local time (the policy's time zone), as a patient in the ward reads it.
            when = (now() - timedelta(hours=2)).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%dT%H:%M")
            await page.get_by_label("いつのことですか").fill(when)
            await page.get_by_label("どのようなことがありましたか").fill(STORY)
            await page.get_by_label("お名前(任意)").fill("山本 花")
            await page.get_by_label("ご連絡先(電話番号またはメールアドレス、任意)").fill(
                "yamamoto@example.jp"
            )
            # The keyboard alone can send it: from the last field, Tab reaches the button.
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.textContent") == "送信する"
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#reference")
            assert await page.locator("h1").text_content() == "お声をお寄せいただき、ありがとうございました"
            reference = (await page.locator("#reference").text_content() or "").strip()
        finally:
            await browser.close()

    def of_reference(entry: RecordEntry) -> bool:  # the page shows the reference, not the id
        return entry.complaint_id is not None and reference_of(UUID(entry.complaint_id)) == reference

    record = await until_record(
        system, "the form's complaint on the record", lambda r: any(of_reference(e) for e in r)
    )
    [received] = [e.body for e in record if of_reference(e) and e.event_type == "ComplaintReceived"]
    assert (received["channel"], received["heard_by"], received["language"]) == ("web", "n-001", "ja")
    complaint = await http.get(
        system.url("intake", f"/v1/complaints/{reference}"), headers=system.signed_in("n-001")
    )
    assert complaint.json()["summary"] == STORY
    assert complaint.json()["complainant"] == {"name": "山本 花", "contact": "yamamoto@example.jp"}
