"""Every door of intake on its real store: the same limits, a clear 4xx, and nothing recorded (or a
ChannelMessageRejected for a platform's message, which has no one to answer)."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.intake.channels import line_signature
from services.intake.main import create_app
from shared.events import ChannelMessageRejected, WireEvent
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers, stored
from tests.integration.test_intake_api import VALID
from tests.integration.test_web_form import filled

pytestmark = pytest.mark.integration

LINE_SECRET = b"8c570fa6dd201bb328f1c1eac23a96d8"
# Words of a patient that must never reach a log line.
SECRET_STORY = "主治医の山田先生に薬を取り違えられた"


@pytest.fixture
def client(settings: Settings) -> TestClient:
    settings.line_channel_secret.write_bytes(LINE_SECRET)
    return TestClient(create_app(settings))


def recorded(client: TestClient) -> list[WireEvent | None]:
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    notifications = store.process_recorder.select_notifications(1, 1000)
    return [store.wire_event(store.mapper.to_domain_event(n)) for n in notifications]


def post_line(client: TestClient, *texts: str, user: str = "Upatient") -> Any:
    events = [
        {
            "type": "message",
            "timestamp": int((now() - timedelta(minutes=1)).timestamp() * 1000),
            "source": {"type": "user", "userId": user},
            "message": {"id": f"{user}-{number}-{len(text)}", "type": "text", "text": text},
        }
        for number, text in enumerate(texts)
    ]
    body = json.dumps({"events": events}).encode()
    return client.post(
        "/v1/channels/line", content=body, headers={"X-Line-Signature": line_signature(LINE_SECRET, body)}
    )


def test_the_same_idempotency_key_from_two_people_is_two_complaints(
    client: TestClient, signed_in: Headers
) -> None:
    key = {"Idempotency-Key": "desk-2026-0001"}
    first = client.post("/v1/complaints", json=VALID, headers=signed_in("n-001") | key)
    second = client.post("/v1/complaints", json=VALID, headers=signed_in("n-002") | key)
    assert first.status_code == second.status_code == 201
    assert first.json()["complaint_id"] != second.json()["complaint_id"]
    assert "Idempotent-Replayed" not in second.headers
    other_body = client.post(
        "/v1/complaints", json=VALID | {"summary": "Another story."}, headers=signed_in("n-002") | key
    )
    assert other_body.status_code == 409
    assert [type(event).__name__ for event in recorded(client)].count("ComplaintReceived") == 2


def test_a_contact_that_is_a_list_is_refused_at_the_api_and_the_form(
    client: TestClient, signed_in: Headers
) -> None:
    listed = VALID | {"complainant": {"contact": "a@example.org, b@example.net"}}
    response = client.post("/v1/complaints", json=listed, headers=signed_in("n-001"))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("complainant_contact: must be exactly one e-mail address")
    page = client.get("/form").text
    form = client.post("/form", data=filled(page, contact="a@example.org; b@example.net"))
    assert form.status_code == 422
    assert '<p class="error" id="contact-error">電話番号かメールアドレスを一つだけ' in form.text
    assert stored(client) == 0


def test_a_chat_message_over_the_limit_is_rejected_with_the_limit_and_never_added(client: TestClient) -> None:
    assert post_line(client, "夜中に何度も起こされました").status_code == 200
    before = stored(client)
    assert post_line(client, "あ" * 4001, "い" * 5000).status_code == 200
    rejected = [event for event in recorded(client) if isinstance(event, ChannelMessageRejected)]
    assert [event.reason for event in rejected] == [
        "summary: is 4,001 characters long; at most 4,000 are taken",
        "summary: is 5,000 characters long; at most 4,000 are taken",
    ]
    assert stored(client) == before + 2  # the two rejections, nothing appended to the complaint


def test_an_import_row_with_a_contact_list_is_rejected_with_the_reason(
    client: TestClient, signed_in: Headers
) -> None:
    row = {
        "occurred_at": "2026-11-20T10:00:00+09:00",
        "department": "Outpatients",
        "summary": "受付で長時間待たされた",
        "complainant_contact": "a@example.org,b@example.net",
    }
    batch = {"channel": "phone", "file_digest": "b" * 64, "rows": [{"line": 2, "values": row}]}
    [result] = client.post("/v1/imports", json=batch, headers=signed_in("n-002")).json()
    assert result["outcome"] == "rejected"
    assert result["reason"].startswith("complainant_contact: must be exactly one e-mail address")


@pytest.mark.parametrize(
    "query",
    [
        {"signature": "署名", "timestamp": "1763863200", "nonce": "1"},
        {"signature": "a" * 40, "timestamp": "١٧٦٣٨٦٣٢٠٠", "nonce": "ノンス"},
        {"signature": "\u00e9" * 40, "timestamp": "²", "nonce": "1", "msg_signature": "é"},
    ],
)
def test_non_ascii_query_parameters_of_a_wechat_push_are_refused_not_an_error(
    client: TestClient, settings: Settings, query: dict[str, str]
) -> None:
    settings.wechat_token.write_text("kizuki-wechat")
    response = client.post("/v1/channels/wechat", params=query, content=b"<xml/>")
    assert response.status_code == 401
    line = client.post(
        "/v1/channels/line", content=b"{}", headers={"X-Line-Signature": "ÿ".encode("latin-1") * 44}
    )
    assert line.status_code == 401
    assert stored(client) == 0


def test_the_web_form_runs_no_script_and_tells_the_browser_so(client: TestClient) -> None:
    page = client.get("/form")
    sent = client.post("/form", data=filled(page.text))
    needs_another_look = client.post("/form", data=filled(page.text, summary=""))
    not_a_form = client.post("/form", data={"summary": "x"})
    for response in (page, sent, needs_another_look, not_a_form):
        assert "<script" not in response.text.lower()
        assert not re.search(r"\son[a-z]+\s*=", response.text)  # no inline event handler either
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy  # so none is allowed
        assert "'unsafe-inline'" not in policy
        assert "form-action 'self'" in policy


def test_a_refusal_is_logged_with_who_and_where_never_the_body(
    client: TestClient, signed_in: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    body = VALID | {"summary": SECRET_STORY, "complainant": {"contact": "yamada-patient@example.org"}}
    with caplog.at_level(logging.DEBUG):
        unsigned = client.post("/v1/complaints", json=body)
        auditor = client.post("/v1/complaints", json=body, headers=signed_in("au-001"))
        created = client.post("/v1/complaints", json=body, headers=signed_in("n-001")).json()
        outside = client.get(f"/v1/complaints/{created['complaint_id']}", headers=signed_in("n-002"))
        line = client.post("/v1/channels/line", json={"events": [], "story": SECRET_STORY})
    assert (unsigned.status_code, auditor.status_code, outside.status_code, line.status_code) == (
        401,
        403,
        403,
        401,
    )
    refusals = [record.getMessage() for record in caplog.records if "refused" in record.getMessage()]
    assert len(refusals) == 4
    assert "refused POST /v1/complaints for au-001: au-001 may not do this" in refusals[1]
    assert f"refused GET /v1/complaints/{created['complaint_id']} for n-002" in refusals[2]
    for record in caplog.records:
        assert SECRET_STORY not in record.getMessage()
        assert "yamada-patient" not in record.getMessage()
