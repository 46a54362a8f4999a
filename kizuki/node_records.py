"""Each node's own copy of a stream, read from its store on disk: what a cluster's nodes hold, with no
node answering for another (stream info's replica state is the leader's view of its followers, and a
read through the cluster is served by whichever node). Read with the node stopped."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

# The filestore's message record (nats-server's server/filestore.go, writeMsgRecordLocked):
# total_len(4) seq(8) ts(8) subj_len(2) subj [hdr_len(4) hdr] msg hash(8), little-endian; the high bit
# of total_len says there are headers; the top bits of seq mark an erased message or a tombstone.
RECORD_HEAD = struct.Struct("<IQqH")
HEADERS_BIT = 1 << 31
ERASED_OR_TOMBSTONE = (1 << 63) | (1 << 62)

# sequence -> (timestamp, subject, headers, body)
NodeRecords = dict[int, tuple[int, bytes, bytes, bytes]]


def records_on_disk(store_dir: Path, stream: str) -> NodeRecords:
    """The stream's messages as one node's store holds them on disk: sequence -> (timestamp, subject,
    headers, body). The checksum is left out: it is keyed by the block, and blocks may be cut apart
    differently on each node."""
    found: NodeRecords = {}
    blocks = (store_dir / "jetstream" / "$G" / "streams" / stream / "msgs").glob("*.blk")
    for block in sorted(blocks, key=lambda path: int(path.stem)):
        data = block.read_bytes()
        at = 0
        while at + RECORD_HEAD.size <= len(data):
            length, sequence, timestamp, subject_length = RECORD_HEAD.unpack_from(data, at)
            size = length & ~HEADERS_BIT
            if size < RECORD_HEAD.size:
                break
            body = data[at + RECORD_HEAD.size : at + size - 8]
            subject, rest = body[:subject_length], body[subject_length:]
            headers = b""
            if length & HEADERS_BIT:
                (header_length,) = struct.unpack_from("<I", rest)
                headers, rest = rest[4 : 4 + header_length], rest[4 + header_length :]
            if not sequence & ERASED_OR_TOMBSTONE:
                found[sequence] = (timestamp, subject, headers, rest)
            at += size
    return found


def digest(records: NodeRecords) -> str:
    """One digest of a node's messages (sequence, timestamp, subject, headers, body): equal digests,
    the same record."""
    return hashlib.sha256(repr(sorted(records.items())).encode()).hexdigest()


def message_id(headers: bytes) -> str:
    for line in headers.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "nats-msg-id":
            return value.strip()
    raise ValueError(f"no Nats-Msg-Id in {headers!r}")
