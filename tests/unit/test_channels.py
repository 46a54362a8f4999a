import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from services.intake.channels import (
    Malformed,
    NotAuthentic,
    check_line_signature,
    check_wechat_signature,
    email_message,
    line_messages,
    line_signature,
    wechat_decrypted,
    wechat_message,
    wechat_signature,
)
from tests.factories import AES_KEY, wechat_encrypted

pytestmark = pytest.mark.unit

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def line_body(*events: dict[str, object]) -> bytes:
    return json.dumps({"destination": "Uaccount", "events": list(events)}).encode()


def text_event(message_id: str, text: str, user: str = "U4af4980629") -> dict[str, object]:
    return {
        "type": "message",
        "timestamp": int(NOW.timestamp() * 1000),
        "source": {"type": "user", "userId": user},
        "replyToken": "r",
        "message": {"id": message_id, "type": "text", "text": text},
    }


def test_a_line_body_signed_with_the_channel_secret_passes() -> None:
    body = line_body(text_event("1", "待ち時間が長すぎます"))
    check_line_signature(SECRET, body, line_signature(SECRET, body))


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        (line_signature(b"another secret", b"{}"), "does not match"),
        (line_signature(SECRET, line_body(text_event("1", "altered"))), "does not match"),
    ],
)
def test_an_unsigned_forged_or_altered_line_body_is_not_authentic(signature: str | None, reason: str) -> None:
    with pytest.raises(NotAuthentic, match=reason):
        check_line_signature(SECRET, line_body(text_event("1", "original")), signature)


def test_line_messages_keep_their_id_sender_and_time_and_only_messages_count() -> None:
    sticker = text_event("2", "") | {"message": {"id": "2", "type": "sticker"}}
    follow = {"type": "follow", "timestamp": 0, "source": {"type": "user", "userId": "U1"}}
    messages = line_messages(line_body(text_event("1", "薬が届かない"), sticker, follow))
    assert [(m.ref, m.sender, m.text, m.kind, m.sent_at) for m in messages] == [
        ("line:1", "line:U4af4980629", "薬が届かない", "text", NOW),
        ("line:2", "line:U4af4980629", None, "sticker", NOW),
    ]
    assert line_messages(line_body()) == []  # LINE's check of the webhook URL
    with pytest.raises(Malformed):
        line_messages(b'{"events": [{"type": "message"}]}')


def test_a_wechat_request_is_signed_over_token_timestamp_and_nonce() -> None:
    stamp = str(int(NOW.timestamp()))
    check_wechat_signature("token", wechat_signature("token", stamp, "n1"), stamp, "n1", NOW)
    with pytest.raises(NotAuthentic, match="required"):
        check_wechat_signature("token", None, stamp, "n1", NOW)
    with pytest.raises(NotAuthentic, match="does not match"):
        check_wechat_signature("token", wechat_signature("forged", stamp, "n1"), stamp, "n1", NOW)
    with pytest.raises(NotAuthentic, match="not current"):
        check_wechat_signature(
            "token", wechat_signature("token", stamp, "n1"), stamp, "n1", NOW + timedelta(hours=1)
        )


def wechat_xml(kind: str = "text", content: str = "挂号排队太久", msg_id: str = "6204") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_hospital]]></ToUserName>"
        "<FromUserName><![CDATA[oPatient]]></FromUserName>"
        f"<CreateTime>{int(NOW.timestamp())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def test_wechat_messages_and_events() -> None:
    message = wechat_message(wechat_xml())
    assert message is not None
    assert (message.ref, message.sender, message.text, message.sent_at) == (
        "wechat:6204",
        "wechat:oPatient",
        "挂号排队太久",
        NOW,
    )
    image = wechat_message(wechat_xml(kind="image"))
    assert image is not None
    assert image.text is None
    assert wechat_message(b"<xml><MsgType>event</MsgType><Event>subscribe</Event></xml>") is None


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<xml><MsgType>text</MsgType></xml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>',
    ],
)
def test_what_is_not_a_wechat_message_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        wechat_message(body)


def mail(**headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ono Kei <ono@example.org>"
    message["To"] = "complaints@hospital.example"
    message["Subject"] = "会計の待ち時間"
    message["Message-ID"] = "<abc@example.org>"
    message["Date"] = "Mon, 23 Nov 2026 10:30:00 +0900"
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        if value:
            message[name.replace("_", "-")] = value
    message.set_content("一時間以上待ちました。")
    return message.as_bytes()


def test_an_email_keeps_subject_and_body_as_summary_and_the_sender_as_contact() -> None:
    message = email_message(mail(), NOW)
    assert (message.channel, message.ref, message.sender) == (
        "email",
        "email:<abc@example.org>",
        "ono@example.org",
    )
    assert message.text == "会計の待ち時間\n\n一時間以上待ちました。"
    assert message.sent_at == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)


def test_an_email_from_a_clock_ahead_or_without_an_id_is_still_known() -> None:
    ahead = email_message(mail(Date="Mon, 23 Nov 2026 23:00:00 +0900"), NOW)
    assert ahead.sent_at == NOW  # taken as its arrival
    assert email_message(mail(Date=""), NOW).sent_at == NOW
    raw = mail(Message_ID="")
    assert email_message(raw, NOW).ref == email_message(raw, NOW).ref != email_message(mail(), NOW).ref


def test_an_email_without_plain_text_has_no_text() -> None:
    html_only = EmailMessage()
    html_only["From"] = "ono@example.org"
    html_only.set_content("<p>待ちました</p>", subtype="html")
    assert email_message(html_only.as_bytes(), NOW).text is None


def safe_mode_body(encrypted: str) -> bytes:
    return f"<xml><ToUserName>gh_hospital</ToUserName><Encrypt>{encrypted}</Encrypt></xml>".encode()


def msg_signature(encrypted: str, token: str = "token") -> str:
    return hashlib.sha1("".join(sorted([token, "1700000000", "n1", encrypted])).encode()).hexdigest()


def test_a_safe_mode_push_is_signed_over_its_ciphertext_and_decrypts_to_the_message() -> None:
    encrypted = wechat_encrypted(wechat_xml())
    plain = wechat_decrypted(
        "token", AES_KEY, msg_signature(encrypted), "1700000000", "n1", safe_mode_body(encrypted)
    )
    assert plain == wechat_xml()


def test_an_altered_or_foreign_safe_mode_push_is_refused() -> None:
    encrypted = wechat_encrypted(wechat_xml())
    altered = wechat_encrypted(wechat_xml(content="别的内容"))
    with pytest.raises(NotAuthentic, match="msg_signature does not match"):
        wechat_decrypted(
            "token", AES_KEY, msg_signature(encrypted), "1700000000", "n1", safe_mode_body(altered)
        )
    with pytest.raises(NotAuthentic, match="required"):
        wechat_decrypted("token", AES_KEY, None, "1700000000", "n1", safe_mode_body(encrypted))
    other_key = base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")
    foreign = wechat_encrypted(wechat_xml(), aes_key=other_key)
    with pytest.raises(Malformed):
        wechat_decrypted(
            "token", AES_KEY, msg_signature(foreign), "1700000000", "n1", safe_mode_body(foreign)
        )
