"""The limits every door of intake holds, as pure rules: the registration, the chat and e-mail
formats, the duplicate matching's work, the rate limiter; and the notifier's link tokens."""

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from uuid import uuid4

import pytest

from services.intake.channels import (
    Malformed,
    NotAuthentic,
    check_line_signature,
    check_wechat_signature,
    email_message,
    line_messages,
    wechat_decrypted,
    wechat_message,
    wechat_signature,
)
from services.intake.domain import RegistrationError
from services.intake.limits import MAX_SUMMARY
from services.intake.matching import SKETCH_LETTERS, MatchIndex, sketch
from services.intake.ratelimit import SWEEP_ABOVE, RateLimiter
from services.notifier.links import LinkRefused, LinkSigner
from tests.unit.test_registration import NOW, registration

pytestmark = pytest.mark.unit

KEY = bytes(range(32))


def test_a_summary_up_to_the_limit_is_taken_and_a_longer_one_is_refused_naming_the_limit() -> None:
    registration(summary="あ" * MAX_SUMMARY).check(NOW)
    with pytest.raises(RegistrationError) as raised:
        registration(summary="あ" * 850_000).check(NOW)
    assert raised.value.field == "summary"
    assert raised.value.message == "is 850,000 characters long; at most 4,000 are taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [("department", "W" * 201), ("complainant_name", "N" * 201), ("category", "c" * 101)],
)
def test_every_free_text_field_has_its_limit(field: str, value: str) -> None:
    with pytest.raises(RegistrationError, match=f"{field}: is longer than"):
        registration(**{field: value}).check(NOW)


@pytest.mark.parametrize(
    "contact",
    [
        "a@example.org, b@example.net",
        "a@example.org;b@example.net",
        "a@example.org b@example.net",
        "Sato <sato@example.org>",
        "a@b@example.org",
        "090-1111-2222, 090-3333-4444",
        "090-1111-2222\n090-3333-4444",
    ],
)
def test_a_contact_is_one_address_never_a_list(contact: str) -> None:
    with pytest.raises(RegistrationError, match="complainant_contact: must be exactly one"):
        registration(complainant_contact=contact).check(NOW)


@pytest.mark.parametrize("contact", ["sato@example.org", "+81 3 7777 0001", "(03) 1111-2222", "line:U5e1f"])
def test_one_address_or_number_is_a_contact(contact: str) -> None:
    registration(complainant_contact=contact).check(NOW)


def test_the_sketch_reads_a_bounded_part_of_any_text() -> None:
    story = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(SKETCH_LETTERS))
    more = "".join(chr(0x3400 + (i * 31) % 6000) for i in range(800_000))  # shingles of its own
    assert sketch(KEY, story + more) == sketch(KEY, story)
    assert sketch(KEY, more) != sketch(KEY, story)


def test_traces_past_the_window_are_pruned_and_newer_ones_kept(tmp_path: Path) -> None:
    index = MatchIndex(tmp_path / "traces", KEY, keep=timedelta(days=14))
    old, recent = uuid4(), uuid4()
    index.add(index.trace(old, "email", "ono@example.org", "待たされた", NOW - timedelta(days=15)))
    index.add(index.trace(recent, "email", "ono@example.org", "待たされた", NOW - timedelta(days=13)))
    index.add(index.trace(uuid4(), "email", "kei@example.org", "寒い", NOW - timedelta(days=20)))
    index.prune(NOW)
    assert {path.stem for path in (tmp_path / "traces").glob("*/*.json")} == {str(recent)}
    assert len(list((tmp_path / "traces").iterdir())) == 1  # the emptied contact's folder is gone too


def test_a_key_over_its_rate_waits_for_the_window_and_others_are_not_held_up() -> None:
    limiter = RateLimiter(2, timedelta(minutes=10))
    assert [limiter.allow("203.0.113.9", NOW) for _ in range(3)] == [True, True, False]
    assert limiter.allow("198.51.100.7", NOW)
    assert not limiter.allows("203.0.113.9", NOW + timedelta(minutes=9))
    assert limiter.allow("203.0.113.9", NOW + timedelta(minutes=10))


def test_the_rate_limiter_forgets_keys_gone_idle() -> None:
    limiter = RateLimiter(1, timedelta(minutes=10))
    for number in range(SWEEP_ABOVE):
        limiter.use(f"sender-{number}@example.org", NOW)
    limiter.use("late@example.org", NOW + timedelta(minutes=11))
    assert len(limiter._used) == 1  # only the key still inside its window is kept
    assert limiter.allows("sender-1@example.org", NOW + timedelta(minutes=11))
    assert len(limiter._used) == 1  # asking remembers nothing


@pytest.mark.parametrize("signature", ["é", "签名", "\u00ff" * 44])
def test_a_non_ascii_signature_is_not_authentic_and_no_error(signature: str) -> None:
    with pytest.raises(NotAuthentic):
        check_line_signature(b"0123456789abcdef0123456789abcdef", b"{}", signature)
    with pytest.raises(NotAuthentic):
        check_wechat_signature("token", signature, "1763863200", "1", NOW)
    encrypted = b"<xml><Encrypt>abc</Encrypt></xml>"
    with pytest.raises(NotAuthentic):
        wechat_decrypted("token", "k" * 43, signature, "1763863200", "1", encrypted)


@pytest.mark.parametrize("timestamp", ["١٧٦٣٨٦٣٢٠٠", "²", "9" * 30])
def test_a_signed_timestamp_that_is_no_time_is_not_current(timestamp: str) -> None:
    with pytest.raises(NotAuthentic, match="not current"):
        check_wechat_signature("token", wechat_signature("token", timestamp, "1"), timestamp, "1", NOW)


def test_a_chat_message_with_a_time_no_clock_shows_is_malformed() -> None:
    event = {"type": "message", "timestamp": 10**30, "message": {"id": "1", "type": "text", "text": "x"}}
    with pytest.raises(Malformed):
        line_messages(json.dumps({"events": [event]}).encode())
    xml = b"<xml><MsgType>text</MsgType><MsgId>1</MsgId><FromUserName>o</FromUserName>"
    with pytest.raises(Malformed):
        wechat_message(xml + b"<CreateTime>" + b"9" * 40 + b"</CreateTime></xml>")


def test_an_over_long_message_id_or_kind_is_kept_short_on_the_record() -> None:
    event = {
        "type": "message",
        "timestamp": int(NOW.timestamp() * 1000),
        "message": {"id": "7" * 60_000, "type": "s" * 60_000},
    }
    [message] = line_messages(json.dumps({"events": [event]}).encode())
    assert message.ref.startswith("line:sha256:")
    assert len(message.ref) == len("line:sha256:") + 64
    assert len(message.kind) <= 40
    mail = EmailMessage()
    mail["From"], mail["Message-ID"] = "ono@example.org", "<" + "x" * 5000 + "@example.org>"
    mail.set_content("待たされた")
    assert len(email_message(mail.as_bytes(), NOW).ref) < 100


@pytest.mark.parametrize("token", ["é.1.x", "署名", "a" * 32 + ".1893456000.\u00e9"])
def test_a_non_ascii_link_token_is_refused_not_an_error(token: str) -> None:
    with pytest.raises(LinkRefused, match="not valid"):
        LinkSigner(bytes(32)).verify(token, datetime(2026, 11, 23, tzinfo=UTC))
