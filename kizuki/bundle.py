"""Evidence bundles: the record (or a proof for one complaint) and the trust file, in one file that
`kizuki audit verify` and `report` read with no NATS at all.

A bundle is JSON lines: first ``{"kizuki_bundle": 1, "kind": "record" | "proof", "trust": {...},
"exported_at", "checkpoint_seconds"}`` (when it was written, and the system's checkpoint interval then),
then one message a line, ``{"seq", "subject", "headers", "data": <payload, base64>, "stored_at"}``; in
a proof, another complaint's link is ``{"seq", "subject", "headers": <its chain headers>,
"content_hash", "stored_at"}``. A proof holds only the chains it needs: the messages of other
services between them are left out, and their sequence numbers with them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kizuki.audit import RecordMessage
from shared.chain import CHAIN_HEADERS, TrustFile, content_hash
from shared.events import CheckpointSigned

FORMAT = 1


class BundleMissing(FileNotFoundError):
    """The bundle named does not exist; the message says how to write one."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    kind: str
    trust: TrustFile
    complaint_id: str | None
    exported_at: datetime | None = None
    checkpoint_seconds: float | None = None

    @classmethod
    def open(cls, path: Path) -> Bundle:
        if not path.is_file():
            raise BundleMissing(
                f"the bundle {path} does not exist: write one with `kizuki audit export {path}` "
                f"or `kizuki audit prove <complaint_id> {path}`"
            )
        with path.open(encoding="utf-8") as lines:
            try:
                header = json.loads(lines.readline() or "{}")
            except ValueError:
                header = {}
        if header.get("kizuki_bundle") != FORMAT or header.get("kind") not in ("record", "proof"):
            raise ValueError(f"{path} is not a kizuki bundle")
        if header["kind"] == "proof" and not header.get("complaint_id"):
            raise ValueError(f"{path} is a proof that names no complaint")
        exported_at = header.get("exported_at")
        return cls(
            path,
            header["kind"],
            TrustFile.from_json(header["trust"]),
            header.get("complaint_id"),
            datetime.fromisoformat(exported_at) if exported_at is not None else None,
            header.get("checkpoint_seconds"),
        )

    def messages(self) -> Iterator[RecordMessage]:
        with self.path.open(encoding="utf-8") as lines:
            lines.readline()
            for line in lines:
                yield message_of(json.loads(line))


def message_of(line: dict[str, Any]) -> RecordMessage:
    data, stored_at = line.get("data"), line.get("stored_at")
    return RecordMessage(
        stream_sequence=line["seq"],
        subject=line["subject"],
        headers=line["headers"],
        data=base64.b64decode(data) if data is not None else None,
        content_hash=line.get("content_hash"),
        stored_at=datetime.fromisoformat(stored_at) if stored_at is not None else None,
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
    if message.stored_at is not None:
        line["stored_at"] = message.stored_at.isoformat()
    return line


def write_header(
    out: TextIO,
    kind: str,
    trust: TrustFile,
    complaint_id: str | None = None,
    checkpoint_seconds: float | None = None,
) -> None:
    """Written before the record is read: links stored before ``exported_at`` are in the bundle."""
    header: dict[str, Any] = {
        "kizuki_bundle": FORMAT,
        "kind": kind,
        "trust": trust.to_json(),
        "exported_at": datetime.now(UTC).isoformat(),
    }
    if checkpoint_seconds is not None:
        header["checkpoint_seconds"] = checkpoint_seconds
    if complaint_id is not None:
        header["complaint_id"] = complaint_id
    out.write(json.dumps(header) + "\n")


def write_message(out: TextIO, message: RecordMessage) -> None:
    out.write(json.dumps(line_of(message)) + "\n")


async def export(
    messages: AsyncIterable[RecordMessage],
    trust: TrustFile,
    out: TextIO,
    checkpoint_seconds: float | None = None,
) -> int:
    """The whole record; returns how many messages were written."""
    write_header(out, "record", trust, checkpoint_seconds=checkpoint_seconds)
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
        message.stored_at,
    )


async def prove(
    messages: AsyncIterable[RecordMessage],
    complaint_id: str,
    trust: TrustFile,
    out: TextIO,
    checkpoint_seconds: float | None = None,
) -> int:
    """The complaint's events, each followed by its chain up to the next signed checkpoint, with
    other complaints' links shown by hash only; returns how many of the complaint's events there are.

    A chain's segment opens only with one of the complaint's own events and closes only with a
    checkpoint: `verify` holds a proof to exactly that."""
    write_header(out, "proof", trust, complaint_id, checkpoint_seconds)
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
