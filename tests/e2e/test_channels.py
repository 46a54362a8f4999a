"""Every way a complaint arrives, on the running system, reconciled from the record."""

from __future__ import annotations

import asyncio
import hashlib
import json
import smtplib
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from kizuki.audit import RecordEntry
from services.intake.channels import line_signature, wechat_signature
from shared.timers import now
from tests.e2e.conftest import System, complaint, until_record
from tests.factories import AES_KEY, wechat_encrypted

pytestmark = pytest.mark.e2e

LINE_SECRET = b"8c570fa6dd201bb328f1c1eac23a96d8"
WECHAT_TOKEN = "kizuki-wechat"
STORY = "受付で二時間待たされ、誰からも説明がありませんでした。"


def send(system: System, mail: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", system.settings.smtp_port, timeout=30) as smtp:
        smtp.send_message(mail)


def line_body(message_id: str, text: str) -> bytes:
    event = {
        "type": "message",
        "timestamp": int(now().timestamp() * 1000),
        "source": {"type": "user", "userId": "U5e1f"},
        "message": {"id": message_id, "type": "text", "text": text},
    }
    return json.dumps({"destination": "Uhospital", "events": [event]}).encode()


def call_centre_log(path: Path) -> Path:
    occurred = (now() - timedelta(hours=3)).isoformat()
    path.write_text(
        "occurred_at,department,summary,complainant_name,complainant_contact\n"
        f"{occurred},Outpatients,{STORY},Ono Kei,+81-3-7777-0001\n"
        f"{occurred},Outpatients,,Ono Kei,+81-3-7777-0001\n"  # no summary
        f"2026-11-20 10:00,Outpatients,電話がつながらない,,\n"  # no UTC offset
        f'{occurred},Ward 3,"食事が冷たい, と何度も",,\n',
        encoding="utf-8",
    )
    return path


def survey(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["occurred_at", "department", "summary", "language"])
    sheet.append(
        [(now() - timedelta(days=1)).isoformat(), "Ward 3", "The ward was too noisy at night.", "en"]
    )
    sheet.append([(now() - timedelta(days=1)).isoformat(), "Ward 3", "Too cold.", "fr"])
    workbook.save(path)
    return path


def intake_counts(record: list[RecordEntry]) -> Counter[str]:
    return Counter(entry.event_type for entry in record if entry.service == "intake")


async def test_every_channel_lands_in_one_register_and_reconciles(
    system: System, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    since = now() - timedelta(seconds=1)
    system.settings.line_channel_secret.write_bytes(LINE_SECRET)
    system.settings.wechat_token.write_text(WECHAT_TOKEN)

    # LINE: signed, unsigned, forged; then the same delivery again.
    line = system.url("intake", "/v1/channels/line")
    body = line_body("5001", "点滴の交換が遅れて不安でした")
    for headers in ({}, {"X-Line-Signature": line_signature(b"guessed secret", body)}):
        refused = await http.post(line, content=body, headers=headers)
        assert refused.status_code == 401
    signed = {"X-Line-Signature": line_signature(LINE_SECRET, body)}
    for _ in range(2):
        assert (await http.post(line, content=body, headers=signed)).status_code == 200

    # WeChat: a signed text message, in safe mode (encrypted, its ciphertext signed).
    system.settings.wechat_aes_key.write_text(AES_KEY)
    stamp, nonce = str(int(now().timestamp())), "77"
    xml = (
        "<xml><ToUserName>gh_h</ToUserName><FromUserName>oP1</FromUserName>"
        f"<CreateTime>{stamp}</CreateTime><MsgType>text</MsgType><Content>药发错了</Content><MsgId>88</MsgId></xml>"
    )
    encrypted = wechat_encrypted(xml.encode())
    wechat_query = {
        "signature": wechat_signature(WECHAT_TOKEN, stamp, nonce),
        "timestamp": stamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": hashlib.sha1(
            "".join(sorted([WECHAT_TOKEN, stamp, nonce, encrypted])).encode()
        ).hexdigest(),
    }
    push = f"<xml><ToUserName>gh_h</ToUserName><Encrypt>{encrypted}</Encrypt></xml>"
    wechat = await http.post(system.url("intake", "/v1/channels/wechat"), params=wechat_query, content=push)
    assert (wechat.status_code, wechat.text) == (200, "success")

    # E-mail over SMTP, to the complaints mailbox only; the same message delivered twice counts once.
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "ono@example.org", "complaints@hospital.example", "会計"
    mail["Message-ID"] = "<m1@example.org>"
    mail.set_content("会計で一時間待ちました。")
    await asyncio.to_thread(send, system, mail)
    await asyncio.to_thread(send, system, mail)
    mail.replace_header("To", "director@hospital.example")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(send, system, mail)

    # A call-centre log, imported twice; a survey as a spreadsheet.
    log = call_centre_log(tmp_path / "calls.csv")
    first = await system.kizuki("import", str(log), "--channel", "phone", "--by", "n-002")
    assert first.returncode == 0, first.stderr
    assert "accepted 2 rows (0 of them imported before" in first.stdout
    assert "line 3: summary: is required" in first.stdout
    assert "line 4: occurred_at: Input should have timezone info" in first.stdout
    again = await system.kizuki("import", str(log), "--channel", "phone", "--by", "n-002")
    assert "accepted 2 rows (2 of them imported before: nothing new)" in again.stdout
    sheet = await system.kizuki(
        "import",
        str(survey(tmp_path / "survey.xlsx")),
        "--channel",
        "survey",
        "--by",
        "q-001",
    )
    assert "accepted 1 rows" in sheet.stdout
    assert "line 3: language: Input should be 'ja', 'zh' or 'en'" in sheet.stdout

    # The same caller phones the desk about the same thing: flagged, not merged.
    desk = complaint(summary=STORY, complainant={"contact": "+81 3 7777 0001"}, department="Outpatients")
    response = await http.post(
        system.url("intake", "/v1/complaints"), json=desk, headers=system.signed_in("n-002")
    )
    assert response.status_code == 201

    expected = Counter(ComplaintReceived=7, ChannelMessageRejected=3, PossibleDuplicateFlagged=1)
    record = await until_record(
        system, "every channel's messages on the record", lambda r: intake_counts(r) >= expected
    )
    assert intake_counts(record) == expected

    [by_mail] = [
        e.complaint_id for e in record if e.event_type == "ComplaintReceived" and e.body["channel"] == "email"
    ]
    read = await http.get(
        system.url("intake", f"/v1/complaints/{by_mail}"), headers=system.signed_in("q-001")
    )
    assert (read.json()["summary"], read.json()["heard_by"]) == ("会計\n\n会計で一時間待ちました。", "n-002")
    assert read.json()["complainant"]["contact"] == "ono@example.org"

    reconciled = await system.kizuki("intake", "reconcile", "--since", since.isoformat(), "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    figures = {line["channel"]: line for line in map(json.loads, reconciled.stdout.splitlines())}
    summary = {
        channel: (f["received"], f["registered"], f["appended"], len(f["rejected"]), f["possible_duplicates"])
        for channel, f in figures.items()
    }
    assert summary == {
        "line": (1, 1, 0, 0, 0),
        "wechat": (1, 1, 0, 0, 0),
        "email": (1, 1, 0, 0, 0),
        "phone": (5, 3, 0, 2, 1),
        "survey": (2, 1, 0, 1, 0),
    }
    reasons: list[Any] = figures["phone"]["rejected"]
    assert [ref.rsplit(":", 1)[1] for ref, _ in reasons] == ["3", "4"]
    text = await system.kizuki("intake", "reconcile", "--since", since.isoformat())
    assert "rejected phone import:" in text.stdout
