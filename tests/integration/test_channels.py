"""Intake's channels against its real store: chat webhooks, bulk import, possible duplicates."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.intake.channels import line_signature, wechat_signature
from services.intake.main import create_app
from shared.events import ChannelMessageRejected
from shared.policy import PolicyError
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers, stored
from tests.factories import AES_KEY, wechat_encrypted

pytestmark = pytest.mark.integration

LINE_SECRET = b"8c570fa6dd201bb328f1c1eac23a96d8"
WECHAT_TOKEN = "kizuki-wechat"


@pytest.fixture
def client(settings: Settings, signed_in: Headers) -> TestClient:
    """Intake with its chat accounts set up, signed in as the quality officer q-001 (reads everything)."""
    settings.line_channel_secret.write_bytes(LINE_SECRET)
    settings.wechat_token.write_text(WECHAT_TOKEN)
    return TestClient(create_app(settings), headers=signed_in("q-001"))


def line_event(
    message_id: str, text: str | None, user: str = "Upatient1", minutes_ago: int = 5
) -> dict[str, Any]:
    content = (
        {"id": message_id, "type": "text", "text": text} if text else {"id": message_id, "type": "sticker"}
    )
    return {
        "type": "message",
        "timestamp": int((now() - timedelta(minutes=minutes_ago)).timestamp() * 1000),
        "source": {"type": "user", "userId": user},
        "message": content,
    }


def post_line(client: TestClient, *events: dict[str, Any], signature: str | None = "sign") -> Any:
    body = json.dumps({"destination": "Uhospital", "events": list(events)}).encode()
    headers = {"content-type": "application/json"}
    if signature == "sign":
        signature = line_signature(LINE_SECRET, body)
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return client.post("/v1/channels/line", content=body, headers=headers)


def complaints_in(client: TestClient) -> list[dict[str, Any]]:
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    notifications = store.process_recorder.select_notifications(1, 1000)
    ids = {n.originator_id for n in notifications if n.topic.endswith("Complaint.Received")}
    return [client.get(f"/v1/complaints/{complaint_id}").json() for complaint_id in ids]


def test_line_messages_signed_by_line_become_complaints_and_others_are_refused(client: TestClient) -> None:
    assert post_line(client, line_event("1", "x"), signature=None).status_code == 401
    forged = post_line(client, line_event("1", "x"), signature=line_signature(b"not the secret", b"x"))
    assert forged.status_code == 401
    assert forged.json()["detail"] == "the X-Line-Signature does not match the body"
    assert stored(client) == 0

    response = post_line(client, line_event("1", "看護師の説明が足りませんでした"))
    assert response.status_code == 200, response.text
    [complaint] = complaints_in(client)
    assert complaint["channel"] == "line"
    assert complaint["heard_by"] == "n-001"  # the owner of the LINE account, from the policy
    assert complaint["department"] == "Ward 3"
    assert complaint["summary"] == "看護師の説明が足りませんでした"
    assert complaint["complainant"] == {"name": None, "contact": "line:Upatient1"}

    before = stored(client)
    assert post_line(client, line_event("1", "看護師の説明が足りませんでした")).status_code == 200
    assert stored(client) == before  # LINE's redelivery changes nothing


def test_a_second_line_message_within_the_window_joins_the_complaint(client: TestClient) -> None:
    post_line(client, line_event("10", "夜中に何度も起こされました"))
    post_line(client, line_event("11", "今朝も同じでした"), line_event("12", None))
    post_line(client, line_event("11", "今朝も同じでした"))  # redelivered
    post_line(client, line_event("13", "別の患者です", user="Uother"))
    complaints = {c["complainant"]["contact"]: c for c in complaints_in(client)}
    assert set(complaints) == {"line:Upatient1", "line:Uother"}
    assert complaints["line:Upatient1"]["further_messages"] == ["今朝も同じでした"]


def test_a_message_that_cannot_be_registered_is_recorded_as_rejected(client: TestClient) -> None:
    post_line(client, line_event("20", None))
    post_line(client, line_event("21", "未来から", minutes_ago=-60))
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    notifications = store.process_recorder.select_notifications(1, 100)
    events = [store.wire_event(store.mapper.to_domain_event(n)) for n in notifications]
    rejected = [event for event in events if isinstance(event, ChannelMessageRejected)]
    assert len(rejected) == len(events)
    assert [(r.channel, r.message_ref, r.reason) for r in rejected] == [
        ("line", "line:20", "a sticker message has no text to register"),
        ("line", "line:21", "occurred_at: is in the future; give the time the complaint occurred"),
    ]
    assert complaints_in(client) == []


def wechat_params(token: str = WECHAT_TOKEN, **changes: str) -> dict[str, str]:
    stamp, nonce = str(int(now().timestamp())), "1405"
    return {"signature": wechat_signature(token, stamp, nonce), "timestamp": stamp, "nonce": nonce} | changes


def wechat_text(msg_id: str, content: str) -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName><FromUserName><![CDATA[oPatient]]></FromUserName>"
        f"<CreateTime>{int(now().timestamp()) - 60}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


@pytest.fixture
def plaintext_client(settings: Settings, signed_in: Headers) -> TestClient:
    """Intake whose WeChat account was set up in plaintext mode, asked for explicitly."""
    settings.wechat_token.write_text(WECHAT_TOKEN)
    return TestClient(create_app(replace(settings, wechat_plaintext=True)), headers=signed_in("q-001"))


def test_wechat_verifies_the_server_and_registers_signed_messages_only(plaintext_client: TestClient) -> None:
    client = plaintext_client
    check = client.get("/v1/channels/wechat", params=wechat_params(echostr="echo-42"))
    assert (check.status_code, check.text) == (200, "echo-42")
    assert client.get("/v1/channels/wechat", params=wechat_params("forged", echostr="x")).status_code == 401

    body = wechat_text("7001", "挂号排队两个小时,没有人解释")
    assert client.post("/v1/channels/wechat", content=body).status_code == 401  # unsigned
    forged = client.post("/v1/channels/wechat", params=wechat_params("forged"), content=body)
    assert forged.status_code == 401
    stale = wechat_params(timestamp="1700000000")
    stale["signature"] = wechat_signature(WECHAT_TOKEN, "1700000000", stale["nonce"])
    assert client.post("/v1/channels/wechat", params=stale, content=body).status_code == 401
    assert stored(client) == 0

    accepted = client.post("/v1/channels/wechat", params=wechat_params(), content=body)
    assert (accepted.status_code, accepted.text) == (200, "success")
    [complaint] = complaints_in(client)
    assert (complaint["channel"], complaint["heard_by"], complaint["department"]) == (
        "wechat",
        "n-002",
        "Outpatients",
    )
    assert complaint["summary"] == "挂号排队两个小时,没有人解释"
    bad = client.post(
        "/v1/channels/wechat", params=wechat_params(), content=b"<xml><MsgType>text</MsgType></xml>"
    )
    assert bad.status_code == 400


def test_a_channel_without_its_secret_is_not_open(client: TestClient, settings: Settings) -> None:
    settings.line_channel_secret.unlink()
    response = post_line(client, line_event("1", "x"))
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail == "the LINE channel is not set up here: its channel secret is not configured"
    assert str(settings.data_dir) not in response.text  # what is missing, never where the server keeps it


def test_wechat_takes_no_plaintext_push_unless_plaintext_mode_was_asked_for(client: TestClient) -> None:
    body = wechat_text("7003", "挂号排队两个小时")
    response = client.post("/v1/channels/wechat", params=wechat_params(), content=body)
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "the WeChat channel is not set up here: safe mode needs its EncodingAESKey, and plaintext mode is off"
    )
    assert stored(client) == 0


GOOD_ROW = {
    "occurred_at": "2026-11-20T10:00:00+09:00",
    "department": "Outpatients",
    "summary": "受付で長時間待たされた",
    "complainant_contact": "+81-3-1111-2222",
}


def import_batch(rows: list[dict[str, str]], digest: str = "a" * 64) -> dict[str, Any]:
    return {
        "channel": "phone",
        "file_digest": digest,
        "rows": [{"line": line, "values": values} for line, values in enumerate(rows, start=2)],
    }


def test_an_import_registers_good_rows_rejects_bad_ones_and_a_second_import_adds_nothing(
    client: TestClient, signed_in: Headers
) -> None:
    rows = [
        GOOD_ROW,
        GOOD_ROW | {"occurred_at": "2026-11-20 10:00", "summary": ""},
        GOOD_ROW | {"tier": "catastrophic", "summary": "別の件"},
        GOOD_ROW | {"summary": "駐車場が満車", "complainant_contact": "", "department": "Ward 3"},
    ]
    importer = signed_in("n-002")
    first = client.post("/v1/imports", json=import_batch(rows), headers=importer)
    assert first.status_code == 200, first.text
    outcomes = [(r["line"], r["outcome"], r["new"]) for r in first.json()]
    assert outcomes == [
        (2, "registered", True),
        (3, "rejected", True),
        (4, "rejected", True),
        (5, "registered", True),
    ]
    assert first.json()[1]["reason"] == "occurred_at: Input should have timezone info; summary: is required"
    assert first.json()[2]["reason"].startswith("tier: Input should be 'minor', 'complex' or 'major'")
    assert {c["heard_by"] for c in complaints_in(client)} == {"n-002"}  # the importer

    before = stored(client)
    again = client.post("/v1/imports", json=import_batch(rows), headers=importer)
    assert [(r["outcome"], r["new"]) for r in again.json()] == [
        ("registered", False),
        ("rejected", False),
        ("rejected", False),
        ("registered", False),
    ]
    assert [r["complaint_id"] for r in again.json()] == [r["complaint_id"] for r in first.json()]
    assert stored(client) == before


def test_an_import_as_a_whole_is_checked(client: TestClient, signed_in: Headers) -> None:
    auditor = client.post("/v1/imports", json=import_batch([GOOD_ROW]), headers=signed_in("au-001"))
    assert auditor.status_code == 403
    changes: list[dict[str, Any]] = [
        {"channel": "staff_report"},
        {"file_digest": "not-a-digest"},
        {"rows": []},
    ]
    for change in changes:
        response = client.post("/v1/imports", json=import_batch([GOOD_ROW]) | change)
        assert response.status_code == 422, change
    assert stored(client) == 0


def test_the_same_contact_with_a_similar_story_is_flagged_until_the_first_is_erased(
    client: TestClient, signed_in: Headers
) -> None:
    phone = {
        "channel": "phone",
        "occurred_at": (now() - timedelta(hours=1)).isoformat(),
        "department": "Ward 3",
        "summary": "三時間待っても痛み止めの薬が届きませんでした。",
        "complainant": {"name": "Sato Hanako", "contact": "+81-90-1234-5678"},
    }
    nurse = signed_in("n-001")
    first = client.post("/v1/complaints", json=phone, headers=nurse).json()["complaint_id"]
    similar = phone | {
        "summary": "3時間待っても痛み止めの薬が届きませんでした!",
        "complainant": {"contact": "+81 90 1234 5678"},
    }
    second = client.post("/v1/complaints", json=similar, headers=nurse).json()["complaint_id"]
    assert client.get(f"/v1/complaints/{second}").json()["possible_duplicate_of"] == first
    assert client.get(f"/v1/complaints/{first}").json()["summary"] == phone["summary"]  # both stay

    unrelated = phone | {"summary": "駐車場の料金が高すぎると思います。"}
    third = client.post("/v1/complaints", json=unrelated, headers=nurse).json()["complaint_id"]
    assert client.get(f"/v1/complaints/{third}").json()["possible_duplicate_of"] is None

    for complaint_id in (first, second):
        erased = client.post(f"/v1/complaints/{complaint_id}/erase", headers=signed_in("dm-001"))
        assert erased.status_code == 200
    fourth = client.post("/v1/complaints", json=similar, headers=nurse).json()["complaint_id"]
    assert client.get(f"/v1/complaints/{fourth}").json()["possible_duplicate_of"] is None


def test_intake_does_not_start_with_a_first_hearer_who_is_not_on_the_staff(
    settings: Settings, tmp_path: Path
) -> None:
    policy = settings.policy_path.read_text(encoding="utf-8").replace(
        'heard_by = "n-002"', 'heard_by = "n-999"'
    )
    (tmp_path / "policy.toml").write_text(policy, encoding="utf-8")
    with pytest.raises(PolicyError, match="not in the staff directory: n-999"):
        create_app(replace(settings, policy_path=tmp_path / "policy.toml"))


def test_with_an_encoding_aes_key_only_encrypted_signed_wechat_pushes_are_taken(
    client: TestClient, settings: Settings
) -> None:
    settings.wechat_aes_key.write_text(AES_KEY)
    plain = wechat_text("7002", "药房窗口态度很差")
    assert client.post("/v1/channels/wechat", params=wechat_params(), content=plain).status_code == 401
    encrypted = wechat_encrypted(plain)
    params = wechat_params() | {"encrypt_type": "aes"}
    body = f"<xml><ToUserName>gh_hospital</ToUserName><Encrypt>{encrypted}</Encrypt></xml>".encode()
    signed = sorted([WECHAT_TOKEN, params["timestamp"], params["nonce"], encrypted])
    forged = params | {"msg_signature": hashlib.sha1("".join(signed[1:]).encode()).hexdigest()}
    assert client.post("/v1/channels/wechat", params=forged, content=body).status_code == 401
    assert stored(client) == 0
    good = params | {"msg_signature": hashlib.sha1("".join(signed).encode()).hexdigest()}
    accepted = client.post("/v1/channels/wechat", params=good, content=body)
    assert (accepted.status_code, accepted.text) == (200, "success")
    [complaint] = complaints_in(client)
    assert complaint["summary"] == "药房窗口态度很差"
