"""Messages from chat platforms and e-mail: their signatures and their formats. Pure, no I/O.

LINE signs each webhook body: ``X-Line-Signature`` is the base64 HMAC-SHA256 of the body under the
channel secret. A WeChat official account signs each request's query: ``signature`` is the SHA-1 of
the token, ``timestamp`` and ``nonce`` sorted and joined, and a stale timestamp is refused too. In
plaintext mode that is all: the XML body is not covered. In safe mode (an EncodingAESKey is set up)
the message is AES-encrypted and ``msg_signature`` covers the ciphertext as well.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# How old a WeChat request's signed timestamp may be: an older one may be a replayed capture.
WECHAT_FRESHNESS = timedelta(minutes=5)
WECHAT_BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
# A platform's message id longer than this is kept as its digest: it goes on the record as the reference.
MAX_REF = 128
MAX_KIND = 40  # a message kind ("sticker") is named in a rejection's reason
# Seconds since 1970, up to the year 5138: a larger time is no time a message was sent.
MAX_EPOCH_DIGITS = 11


class NotAuthentic(ValueError):
    """The request is not signed by the platform with the hospital's secret; it is not looked at."""


class Malformed(ValueError):
    """Signed, but not in the platform's format."""


@dataclass(frozen=True)
class ChannelMessage:
    """One message as the channel delivered it; ``text`` is None for what is not text (a sticker)."""

    channel: str
    ref: str
    sender: str | None
    text: str | None
    kind: str
    sent_at: datetime


def _ref(channel: str, platform_id: str) -> str:
    if len(platform_id) <= MAX_REF and platform_id.isprintable():
        return f"{channel}:{platform_id}"
    return f"{channel}:sha256:{hashlib.sha256(platform_id.encode(errors='replace')).hexdigest()}"


def _same(expected: str, given: str) -> bool:
    """A constant-time comparison that is simply False for text no signature can be (non-ASCII)."""
    return given.isascii() and hmac.compare_digest(expected, given)


def line_signature(channel_secret: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(channel_secret, body, hashlib.sha256).digest()).decode()


def check_line_signature(channel_secret: bytes, body: bytes, signature: str | None) -> None:
    if not signature:
        raise NotAuthentic("the X-Line-Signature header is missing")
    if not _same(line_signature(channel_secret, body), signature):
        raise NotAuthentic("the X-Line-Signature does not match the body")


class _LineModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _LineSource(_LineModel):
    type: str
    userId: str | None = None  # LINE's field name


class _LineContent(_LineModel):
    id: str
    type: str
    text: str | None = None


class _LineEvent(_LineModel):
    type: str
    timestamp: int = Field(ge=0, lt=10 ** (MAX_EPOCH_DIGITS + 3))  # milliseconds
    source: _LineSource | None = None
    message: _LineContent | None = None


class _LineWebhook(_LineModel):
    events: list[_LineEvent]


def line_messages(body: bytes) -> list[ChannelMessage]:
    """The messages of a LINE webhook body (follows, unfollows and the like are not messages)."""
    try:
        webhook = _LineWebhook.model_validate_json(body)
    except ValidationError as error:
        raise Malformed(f"not a LINE webhook body: {error.errors()[0]['msg']}") from None
    return [
        ChannelMessage(
            channel="line",
            ref=_ref("line", event.message.id),
            sender=f"line:{event.source.userId}" if event.source and event.source.userId else None,
            text=event.message.text if event.message.type == "text" else None,
            kind=event.message.type[:MAX_KIND],
            sent_at=datetime.fromtimestamp(event.timestamp / 1000, UTC),
        )
        for event in webhook.events
        if event.type == "message" and event.message is not None
    ]


def wechat_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def check_wechat_signature(
    token: str, signature: str | None, timestamp: str | None, nonce: str | None, now: datetime
) -> None:
    if not (signature and timestamp and nonce):
        raise NotAuthentic("the signature, timestamp and nonce query parameters are required")
    if not _same(wechat_signature(token, timestamp, nonce), signature):
        raise NotAuthentic("the signature does not match")
    if not _epoch(timestamp) or abs(now - datetime.fromtimestamp(int(timestamp), UTC)) > WECHAT_FRESHNESS:
        raise NotAuthentic("the signed timestamp is not current")


def _epoch(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= MAX_EPOCH_DIGITS


def _xml_fields(body: bytes) -> tuple[str, dict[str, str]]:
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise Malformed("XML with a document type or entities is not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise Malformed(f"not XML: {error}") from None
    return root.tag, {child.tag: (child.text or "") for child in root}


def wechat_decrypted(
    token: str, aes_key: str, msg_signature: str | None, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The plain XML of a safe-mode push, once ``msg_signature`` is checked over its ciphertext.

    The plaintext is 16 random bytes, the message's length (4 bytes, big-endian), the message and the
    account's AppID, PKCS#7-padded to 32 bytes; the key is the 43-character EncodingAESKey in base64,
    its first 16 bytes the IV."""
    _, fields = _xml_fields(body)
    encrypted = fields.get("Encrypt", "")
    if not msg_signature or not encrypted:
        raise NotAuthentic("safe mode: msg_signature and an Encrypt element are required")
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()
    if not _same(expected, msg_signature):
        raise NotAuthentic("the msg_signature does not match the message")
    key = base64.b64decode(aes_key + "=")
    try:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        padded = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    except ValueError as error:
        raise Malformed(f"safe mode: the message does not decrypt: {error}") from None
    pad = padded[-1] if padded else 0
    plain = padded[:-pad] if 1 <= pad <= WECHAT_BLOCK else b""
    length = int.from_bytes(plain[16:20], "big") if len(plain) >= 20 else -1
    if length < 0 or 20 + length > len(plain):
        raise Malformed("safe mode: the decrypted message is not in WeChat's layout")
    return plain[20 : 20 + length]


def wechat_message(body: bytes) -> ChannelMessage | None:
    """The message of a WeChat push, or None for an event (a follow, a menu click)."""
    tag, fields = _xml_fields(body)
    kind = fields.get("MsgType", "")
    if kind == "event":
        return None
    missing = [name for name in ("MsgId", "FromUserName", "CreateTime") if not fields.get(name)]
    if tag != "xml" or not kind or missing:
        raise Malformed(f"not a WeChat message: {', '.join(missing) or 'MsgType'} missing")
    if not _epoch(fields["CreateTime"]):
        raise Malformed("not a WeChat message: CreateTime is not a number")
    return ChannelMessage(
        channel="wechat",
        ref=_ref("wechat", fields["MsgId"]),
        sender=f"wechat:{fields['FromUserName']}",
        text=fields.get("Content") if kind == "text" else None,
        kind=kind[:MAX_KIND],
        sent_at=datetime.fromtimestamp(int(fields["CreateTime"]), UTC),
    )


def email_message(raw: bytes, received_at: datetime) -> ChannelMessage:
    """Subject and plain text as the summary, the sender as the contact, the Message-ID as the reference.

    The Date header is the sender's clock: a date later than the mail's arrival is taken as the arrival.
    """
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # what the default policy makes
    message_id = str(message.get("Message-ID", "")).strip() or hashlib.sha256(raw).hexdigest()
    try:
        senders = message["From"].addresses if message["From"] else ()
    except (AttributeError, IndexError, ValueError):
        senders = ()
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content().strip() if isinstance(body, EmailMessage) else ""
    subject = str(message.get("Subject", "")).strip()
    try:
        date_header = message["Date"]
        sent_at = date_header.datetime if date_header else None
    except (AttributeError, TypeError, ValueError):
        sent_at = None
    if sent_at is None or sent_at.tzinfo is None or sent_at > received_at:
        sent_at = received_at
    return ChannelMessage(
        channel="email",
        ref=_ref("email", message_id),
        sender=senders[0].addr_spec if senders else None,
        text="\n\n".join(part for part in (subject, text) if part) if text else None,
        kind="e-mail without a plain-text part",
        sent_at=sent_at,
    )
