"""Evidence bundles: the record (or a proof for one complaint) and the trust file, in one file that
`kizuki audit verify` and `report` read with no NATS at all.

A bundle is JSON lines: first ``{"kizuki_bundle": 1, "kind": "record" | "proof", "trust": {...}}``,
then one message a line, ``{"seq", "subject", "headers", "data": <payload, base64>}``; in a proof,
another complaint's link is ``{"seq", "subject", "headers": <its chain headers>, "content_hash"}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kizuki.audit import RecordMessage
from shared.chain import CHAIN_HEADERS, TrustFile, content_hash
from shared.events import CheckpointSigned

FORMAT = 1


@dataclass(frozen=True)
class Bundle:
    path: Path
    kind: str
    trust: TrustFile
    complaint_id: str | None

    @classmethod
    def open(cls, path: Path) -> Bundle:
        with path.open(encoding="utf-8") as lines:
            header = json.loads(lines.readline() or "{}")
        if header.get("kizuki_bundle") != FORMAT or header.get("kind") not in ("record", "proof"):
            raise ValueError(f"{path} is not a kizuki bundle")
        return cls(path, header["kind"], TrustFile.from_json(header["trust"]), header.get("complaint_id"))

    def messages(self) -> Iterator[RecordMessage]:
        with self.path.open(encoding="utf-8") as lines:
            lines.readline()
            for line in lines:
                yield message_of(json.loads(line))


def message_of(line: dict[str, Any]) -> RecordMessage:
    data = line.get("data")
    return RecordMessage(
        stream_sequence=line["seq"],
        subject=line["subject"],
        headers=line["headers"],
        data=base64.b64decode(data) if data is not None else None,
        content_hash=line.get("content_hash"),
    )


def line_of(message: RecordMessage) -> dict[str, Any]:
    line: dict[str, Any] = {
        "seq": message.stream_sequence,
        "subject": message.subject,
        "headers": message.headers,
    }
    if message.data is not None:
        line["data"] = base64.b64encode(message.data).decode()
    else:
        line["content_hash"] = message.content_hash
    return line


def write_header(out: TextIO, kind: str, trust: TrustFile, complaint_id: str | None = None) -> None:
    header: dict[str, Any] = {"kizuki_bundle": FORMAT, "kind": kind, "trust": trust.to_json()}
    if complaint_id is not None:
        header["complaint_id"] = complaint_id
    out.write(json.dumps(header) + "\n")


def write_message(out: TextIO, message: RecordMessage) -> None:
    out.write(json.dumps(line_of(message)) + "\n")


async def export(messages: AsyncIterable[RecordMessage], trust: TrustFile, out: TextIO) -> int:
    """The whole record; returns how many messages were written."""
    write_header(out, "record", trust)
    written = 0
    async for message in messages:
        write_message(out, message)
        written += 1
    return written


def redacted(message: RecordMessage) -> RecordMessage:
    """The link without what it says: its chain headers and content hash."""
    assert message.data is not None
    return RecordMessage(
        message.stream_sequence,
        message.subject,
        {name: message.headers[name] for name in CHAIN_HEADERS if name in message.headers},
        None,
        content_hash(message.subject, message.headers, message.data).hex(),
    )


async def prove(
    messages: AsyncIterable[RecordMessage], complaint_id: str, trust: TrustFile, out: TextIO
) -> int:
    """The complaint's events, each followed by its chain up to the next signed checkpoint, with
    other complaints' links shown by hash only; returns how many of the complaint's events there are."""
    write_header(out, "proof", trust, complaint_id)
    open_segments: set[str] = set()
    found = 0
    async for message in messages:
        service = message.subject.split(".")[1]
        if message.headers.get("Kizuki-Complaint-Id") == complaint_id:
            write_message(out, message)
            open_segments.add(service)
            found += 1
        elif service in open_segments:
            if message.headers.get("Kizuki-Event-Type") == CheckpointSigned.type_name():
                write_message(out, message)
                open_segments.discard(service)
            else:
                write_message(out, redacted(message))
    return found
