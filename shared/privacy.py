"""Patient data, sealed with a key of its own complaint, so that destroying the key erases it everywhere.

Envelope encryption: each complaint has a random AES-256 data key. The patient's name, contact and the
complaint's text are sealed with it (AES-GCM, bound to the complaint id) before they are stored or go
on the record; only the sealed text ever leaves intake. The data key, wrapped with the master key
(AES key wrap), lives in two places that can be destroyed, unlike the record: intake's own copy (a
row of a table beside its store: in its SQLite file, or in its PostgreSQL schema, which all its
replicas share), written when the complaint is registered, and the JetStream key-value bucket
``PATIENT_KEYS``, where intake's relay puts it, once (``KeyVault.put``), before the complaint goes on
the record. Services that need the clear text (escalation to classify, the notifier for the receipt)
unwrap the key from the bucket; others cannot.

Erasure destroys intake's copy and erases the key's message from the bucket (a JetStream message
delete overwrites the stored bytes). The sealed text stays on the record and in the stores, so every
hash and every compliance figure is unchanged; it just can no longer be read.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from shared.bus import KEY_BUCKET, KEY_STREAM
from shared.secret_files import write_secret

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12


class PatientData(BaseModel):
    """What identifies the patient or tells their story: never on the record in clear."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    contact: str | None = None
    summary: str


class Unreadable(Exception):
    """The data cannot be opened: its key was destroyed, or it was not sealed with this key."""


def seal(data_key: bytes, purpose: str, plain: bytes) -> str:
    """AES-GCM with a fresh nonce; ``purpose`` (e.g. the complaint id) is bound in as associated data."""
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(data_key).encrypt(nonce, plain, purpose.encode())).decode()


def unseal(data_key: bytes, purpose: str, sealed: str) -> bytes:
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(data_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
    except InvalidTag:
        raise Unreadable("the sealed data does not open with this key") from None


def seal_patient_data(data_key: bytes, complaint_id: UUID, data: PatientData) -> str:
    return seal(data_key, str(complaint_id), data.model_dump_json().encode())


def unseal_patient_data(data_key: bytes, complaint_id: UUID, sealed: str) -> PatientData:
    return PatientData.model_validate_json(unseal(data_key, str(complaint_id), sealed))


def ensure_key_file(path: Path) -> None:
    """A random 256-bit key, owner-only, made once (a configured key is kept as it is)."""
    if not path.exists():
        write_secret(path, secrets.token_bytes(KEY_BYTES))


def read_key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise Unreadable(f"no key at {path}: run `kizuki provision` first") from None
    if len(key) != KEY_BYTES:
        raise Unreadable(f"the key at {path} is not {KEY_BYTES} bytes")
    return key


class MasterKey:
    """Wraps and unwraps data keys; it never encrypts data itself."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def load(cls, path: Path) -> MasterKey:
        return cls(read_key_file(path))

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap:
            raise Unreadable("the data key was not wrapped with this master key") from None


def shred(path: Path) -> None:
    """Overwrite the file with random bytes, then remove it."""
    with open(path, "r+b") as file:
        file.write(secrets.token_bytes(len(file.read())))
        file.flush()
        os.fsync(file.fileno())
    path.unlink()


class WrappedKeys(Protocol):
    """Where intake keeps the complaints' wrapped keys (shared/key_table.py): one per complaint, made once."""

    def add(self, complaint_id: UUID, wrapped: bytes, synced: bool = True) -> None: ...

    def get(self, complaint_id: UUID) -> bytes | None: ...

    def destroy(self, complaint_id: UUID) -> None: ...

    def complaints(self) -> Iterator[UUID]: ...

    def close(self) -> None: ...


class IntakeKeys:
    """Intake's own copy of each complaint's wrapped data key, a row of a table beside its store, and
    the key that seals the identity of anonymous staff reporters.

    The data keys let intake register complaints while the bus is down; the relay copies a key to
    the bucket before the complaint is published. The reporter key never leaves intake, which opens
    an identity only for the patient-safety officer, recording each opening.
    """

    def __init__(
        self, table: WrappedKeys, master: MasterKey, reporter_key: bytes, files: Path | None = None
    ) -> None:
        """``files``: where an earlier version kept each key as a file: they are moved into the table."""
        self.table = table
        self.master = master
        self._reporter_key = reporter_key
        if files is not None and files.is_dir():
            for path in list(files.iterdir()):
                with contextlib.suppress(ValueError):  # not a key's file
                    table.add(UUID(path.name), path.read_bytes())
                    shred(path)

    def seal_reporter(self, complaint_id: UUID, staff_id: str) -> str:
        return seal(self._reporter_key, f"{complaint_id}:reporter", staff_id.encode())

    def open_reporter(self, complaint_id: UUID, sealed: str) -> str:
        return unseal(self._reporter_key, f"{complaint_id}:reporter", sealed).decode()

    def data_key(self, complaint_id: UUID) -> bytes:
        """The complaint's data key, made on first use; the same one for every later call."""
        wrapped = self.table.get(complaint_id)
        if wrapped is None:
            # Synced by the complaint's commit, which follows it in the same log (shared/key_table.py).
            self.table.add(complaint_id, self.master.wrap(secrets.token_bytes(KEY_BYTES)), synced=False)
            wrapped = self.table.get(complaint_id)  # another registration's, if it was first
        if wrapped is None:
            raise Unreadable(f"the key of complaint {complaint_id} was destroyed")
        return self.master.unwrap(wrapped)

    def wrapped(self, complaint_id: UUID) -> bytes | None:
        return self.table.get(complaint_id)

    def destroy(self, complaint_id: UUID) -> None:
        self.table.destroy(complaint_id)


class KeyVault:
    """The ``PATIENT_KEYS`` bucket, as the services see it. Bind it once connected."""

    def __init__(self, master: MasterKey) -> None:
        self.master = master
        self._kv: KeyValue | None = None
        self._js: JetStreamContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Keys read ahead for handlers in worker threads (``keys_at_hand``): a stack per complaint, as
        # two consumers may hold the same complaint's at once.
        self._at_hand: dict[UUID, list[bytes | None]] = {}

    async def bind(self, js: JetStreamContext) -> None:
        self._js = js
        self._kv = await js.key_value(KEY_BUCKET)
        self._loop = asyncio.get_running_loop()

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the key vault is used before it is bound to the bus")
        return self._kv

    async def put(self, complaint_id: UUID, wrapped: bytes) -> None:
        """Keep the complaint's wrapped key in the bucket. A complaint's key is made once and never
        changes, so it is written there once: a put that finds the key there already (a relay that
        starts again, a publish answered late) or the mark its erasure left writes nothing, so no
        second copy of a key is left behind on the server's disk and an erased key is never put back."""
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self.kv.update(str(complaint_id), wrapped, last=0)

    async def destroy(self, complaint_id: UUID) -> None:
        """Erase the key's message (overwritten on disk by the server), then leave a purge marker."""
        assert self._js is not None
        try:
            entry = await self.kv.get(str(complaint_id))
        except KeyNotFoundError:  # never there, or destroyed already
            return
        if entry.revision is not None:
            with contextlib.suppress(NotFoundError):  # erased by a concurrent erasure
                await self._js.delete_msg(KEY_STREAM, entry.revision)
        await self.kv.purge(str(complaint_id))

    async def data_key(self, complaint_id: UUID) -> bytes | None:
        try:
            entry = await self.kv.get(str(complaint_id))
        except KeyNotFoundError:
            return None
        return self.master.unwrap(entry.value) if entry.value else None

    async def seal_text(self, complaint_id: UUID, purpose: str, text: str) -> str:
        """Free text about the patient (a call's notes, what they said on a callback), sealed with the
        complaint's key; empty when there is nothing to seal or the complaint is erased."""
        data_key = await self.data_key(complaint_id) if text else None
        return "" if data_key is None else seal(data_key, f"{complaint_id}:{purpose}", text.encode())

    async def open_text(self, complaint_id: UUID, purpose: str, sealed: str) -> str | None:
        """What ``seal_text`` sealed; None once the complaint is erased."""
        if not sealed:
            return ""
        data_key = await self.data_key(complaint_id)
        return None if data_key is None else unseal(data_key, f"{complaint_id}:{purpose}", sealed).decode()

    async def open(self, complaint_id: UUID, sealed: str) -> PatientData | None:
        """The clear data, or None once it is erased."""
        data_key = await self.data_key(complaint_id)
        return None if data_key is None else unseal_patient_data(data_key, complaint_id, sealed)

    @contextlib.asynccontextmanager
    async def keys_at_hand(self, complaint_ids: Iterable[UUID]) -> AsyncIterator[None]:
        """Read the complaints' keys together and keep them at hand while in the context, so that
        handlers of a batch, in a worker thread, open their data without a round trip each to the
        bucket through the event loop (``open_patient_data``). A key that cannot be read now is left
        for its handler to read (and meet the fault), and erasure is unchanged: a handler opens the
        data as if it had run when its key was read, which is while its batch was being handled."""
        wanted = list(dict.fromkeys(complaint_ids))
        read = await asyncio.gather(*(self.data_key(c) for c in wanted), return_exceptions=True)
        held = [(c, key) for c, key in zip(wanted, read, strict=True) if not isinstance(key, BaseException)]
        for complaint_id, key in held:
            self._at_hand.setdefault(complaint_id, []).append(key)
        try:
            yield
        finally:
            for complaint_id, _ in held:
                stack = self._at_hand[complaint_id]
                stack.pop()
                if not stack:
                    del self._at_hand[complaint_id]

    def open_patient_data(self, complaint_id: UUID, sealed: str) -> PatientData | None:
        """``open`` for handlers, which run in worker threads: with the key at hand if it was read
        ahead (``keys_at_hand``), else through the event loop."""
        at_hand = self._at_hand.get(complaint_id)
        if at_hand:
            data_key = at_hand[-1]
            return None if data_key is None else unseal_patient_data(data_key, complaint_id, sealed)
        if self._loop is None:
            raise RuntimeError("the key vault is used before it is bound to the bus")
        return asyncio.run_coroutine_threadsafe(self.open(complaint_id, sealed), self._loop).result(
            timeout=30
        )
