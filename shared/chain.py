"""The record proves itself: each service's events form a hash chain, and the service signs its head.

A link's hash is ``sha256(previous hash || content hash)``; the content hash covers the exact bytes on
the record: the subject, the identifying headers and the payload as published (ciphertext included).
Splitting it so lets a proof show another complaint's link by its content hash alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import nkeys
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

GENESIS = "0" * 64
INDEX_HEADER = "Kizuki-Chain-Index"
PREVIOUS_HEADER = "Kizuki-Chain-Previous"
HASH_HEADER = "Kizuki-Chain-Hash"
CHAIN_HEADERS = (INDEX_HEADER, PREVIOUS_HEADER, HASH_HEADER)
# The headers that say what an event is; the chain index is among them, so a link cannot be moved.
CONTENT_HEADERS = (
    "Nats-Msg-Id",
    "Kizuki-Event-Type",
    "Kizuki-Event-Version",
    "Kizuki-Complaint-Id",
    INDEX_HEADER,
)


@dataclass(frozen=True)
class Link:
    """A position in a service's chain: its index (1 for the first event) and its hash."""

    index: int
    hash: str

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Link:
        """The link a record message carries; the start of the chain if it carries none."""
        if HASH_HEADER not in headers:
            return START
        return cls(int(headers[INDEX_HEADER]), headers[HASH_HEADER])


START = Link(0, GENESIS)


def content_hash(subject: str, headers: Mapping[str, str], payload: bytes) -> bytes:
    """SHA-256 of the subject and content headers, one a line, then the payload."""
    described = "\n".join([subject, *[headers.get(name, "") for name in CONTENT_HEADERS], ""])
    return hashlib.sha256(described.encode() + payload).digest()


def link_hash(previous: str, content: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + content).hexdigest()


def chained(subject: str, headers: Mapping[str, str], payload: bytes, previous: Link) -> dict[str, str]:
    """The headers with the chain fields of the link that follows ``previous``."""
    linked = {**headers, INDEX_HEADER: str(previous.index + 1), PREVIOUS_HEADER: previous.hash}
    linked[HASH_HEADER] = link_hash(previous.hash, content_hash(subject, linked, payload))
    return linked


def checkpoint_statement(service: str, head: Link) -> bytes:
    """What a checkpoint signs: this service's chain, up to and including this link."""
    return f"kizuki chain {service} {head.index} {head.hash}".encode()


class SigningKey:
    """A service's Ed25519 key, as an nkey seed."""

    def __init__(self, seed: bytes) -> None:
        self._pair = nkeys.from_seed(seed)
        self.public_key: str = self._pair.public_key.decode()

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        if not path.exists():
            raise FileNotFoundError(f"no signing key at {path}: run `kizuki provision` or supply one")
        return cls(path.read_bytes().strip())

    def sign(self, statement: bytes) -> str:
        return base64.b64encode(self._pair.sign(statement)).decode()


def new_seed() -> bytes:
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_SERVER))


def signature_holds(public_key: str, statement: bytes, signature: str) -> bool:
    """Whether the signature is the holder of that nkey public key's, over exactly that statement."""
    try:
        decoded = base64.b32decode(public_key)
        raw, checksum = decoded[1:-2], decoded[-2:]
        if decoded[0] != nkeys.PREFIX_BYTE_SERVER or checksum != nkeys.crc16(decoded[:-2]).to_bytes(
            2, "little"
        ):
            return False
        VerifyKey(raw).verify(statement, base64.b64decode(signature))
    except (ValueError, BadSignatureError):
        return False
    return True


@dataclass(frozen=True)
class TrustFile:
    """The public keys an auditor pins: each service's, old ones kept so old checkpoints still verify."""

    keys: dict[str, list[str]]

    @classmethod
    def load(cls, path: Path) -> TrustFile:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> TrustFile:
        keys = data.get("keys")
        if not isinstance(keys, dict) or not all(
            isinstance(value, list) and all(isinstance(key, str) for key in value) for value in keys.values()
        ):
            raise ValueError('a trust file is {"keys": {"<service>": ["<nkey public key>", ...]}}')
        return cls({str(service): list(value) for service, value in keys.items()})

    def to_json(self) -> dict[str, object]:
        return {"keys": {service: keys for service, keys in sorted(self.keys.items())}}

    def trusts(self, service: str, public_key: str) -> bool:
        return public_key in self.keys.get(service, [])

    def with_key(self, service: str, public_key: str) -> TrustFile:
        known = self.keys.get(service, [])
        return TrustFile(self.keys | {service: known if public_key in known else [*known, public_key]})
