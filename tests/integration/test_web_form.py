"""The public complaint form against intake's real store (the browser itself is in tests/e2e)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import png
import pytest
from fastapi.testclient import TestClient

from kizuki.qr import form_link, write_qr
from services.intake.main import create_app
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers, stored

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings) -> TestClient:
    """A patient's browser: no credential at all."""
    return TestClient(create_app(settings))


def form_id(page: str) -> str:
    found = re.search(r'name="form_id" value="([0-9a-f]{32})"', page)
    assert found is not None
    return found.group(1)


def filled(page: str, **changes: str) -> dict[str, Any]:
    return {
        "lang": "ja",
        "form_id": form_id(page),
        "department": "Outpatients",
        "occurred_at": (now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "summary": "受付で説明もなく二時間待たされました。",
        "name": "",
        "contact": "090-1111-2222",
    } | changes


@pytest.mark.parametrize(
    ("query", "accept_language", "language", "heading"),
    [
        ({}, "ja-JP,ja;q=0.9,en;q=0.8", "ja", "ご意見・苦情の窓口"),
        ({}, "zh-CN,zh;q=0.9", "zh", "意见与投诉"),
        ({}, "fr-FR, en;q=0.5", "en", "Comments and complaints"),
        ({}, "fr-FR", "ja", "ご意見・苦情の窓口"),  # none offered here: the policy's default
        ({"lang": "en"}, "zh-CN", "en", "Comments and complaints"),  # the switch wins
    ],
)
def test_the_form_speaks_the_browsers_language_or_the_one_chosen(
    client: TestClient, query: dict[str, str], accept_language: str, language: str, heading: str
) -> None:
    page = client.get("/form", params=query, headers={"Accept-Language": accept_language})
    assert page.status_code == 200
    assert f'<html lang="{language}">' in page.text
    assert f"<h1>{heading}</h1>" in page.text
    assert page.headers["Content-Language"] == language


def test_a_wards_qr_code_opens_the_form_with_its_department(client: TestClient, tmp_path: Path) -> None:
    link = form_link("http://hospital.example:8001/", "Ward 3")
    assert link == "http://hospital.example:8001/form?department=Ward+3"
    write_qr(link, tmp_path / "ward3.png")
    width, height, _, _ = png.Reader(filename=str(tmp_path / "ward3.png")).read()
    assert width == height > 21  # a QR code's square, with its margin
    page = client.get(link.removeprefix("http://hospital.example:8001")).text
    assert '<option value="Ward 3" selected>Ward 3</option>' in page
    assert '<label for="summary">' in page  # every field has its label


def test_a_complaint_sent_by_the_form_is_registered_once_for_the_departments_inbox(
    client: TestClient, signed_in: Headers
) -> None:
    page = client.get("/form", params={"department": "Outpatients"}).text
    sent = client.post("/form", data=filled(page))
    assert sent.status_code == 200, sent.text
    reference = re.search(r'id="reference">([0-9A-Z]{4}-[0-9A-Z]{4})<', sent.text)
    assert reference is not None
    assert "担当の職員がすでに受け取りました" in sent.text  # what happens next
    again = client.post("/form", data=filled(page))  # the same form, sent twice
    assert reference.group(1) in again.text
    assert stored(client) == 1
    complaint = client.get(f"/v1/complaints/{reference.group(1)}", headers=signed_in("q-001")).json()
    assert (complaint["channel"], complaint["heard_by"], complaint["language"]) == ("web", "n-002", "ja")
    assert complaint["summary"] == "受付で説明もなく二時間待たされました。"
    assert complaint["complainant"] == {"name": None, "contact": "090-1111-2222"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"department": "Kitchen"}, "department", "一覧から選んでください"),
        ({"summary": "   "}, "summary", "入力してください"),
        ({"summary": "x" * 4001}, "summary", "長すぎます"),
        ({"occurred_at": "昨日"}, "occurred_at", "日時が正しくありません"),
        ({"occurred_at": (now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}, "occurred_at", "未来"),
        ({"contact": "9" * 201}, "contact", "長すぎます"),
    ],
)
def test_what_needs_another_look_is_said_by_its_field_and_nothing_is_recorded(
    client: TestClient, change: dict[str, str], field: str, message: str
) -> None:
    page = client.get("/form").text
    response = client.post("/form", data=filled(page, **change))
    assert response.status_code == 422
    assert f'<p class="error" id="{field}-error">{message}' in response.text
    assert 'role="alert"' in response.text
    assert "受付で説明もなく" in response.text or field == "summary"  # what was typed is kept
    assert stored(client) == 0


def test_a_client_sending_too_many_is_told_to_wait(client: TestClient) -> None:
    page = client.get("/form").text
    for _ in range(5):  # the policy's limit, each a new form
        fresh = form_id(client.get("/form").text)
        assert client.post("/form", data=filled(page, form_id=fresh)).status_code == 200
    before = stored(client)
    refused = client.post("/form", data=filled(page, form_id=form_id(client.get("/form").text)))
    assert refused.status_code == 429
    assert "しばらくしてから" in refused.text
    assert stored(client) == before


def test_a_post_that_is_not_the_form_is_refused(client: TestClient) -> None:
    assert client.post("/form", data={"summary": "x"}).status_code == 400
    assert (
        client.post("/form", content=b"\xff\xfe", headers={"content-type": "text/plain"}).status_code == 400
    )
    assert stored(client) == 0
