"""The auditor's desk: the chain heads the record's checkpoints sign, a verification of the whole
record, a complaint's proof and the record's bundle, with `kizuki audit`'s own code; and the periodic
analysis, with `kizuki analysis`'s.

The console's own bus user may read the record's messages one at a time, which is enough for each
service's last checkpoint; reading the whole record (verify, prove, export) takes the auditor's bus
user, whose credential the console uses only when it is in its credentials directory."""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from kizuki import bundle
from kizuki.analysis import AnalysisRebuild
from kizuki.analysis_figures import analysis_of
from kizuki.audit import RecordMessage, read_messages
from kizuki.permissions import AUDITOR
from kizuki.verify import Awaited, Verification, Verifier
from shared.bus import RECORD_STREAM, connect
from shared.chain import TrustFile
from shared.events import CheckpointSigned
from shared.policy import Policy
from shared.settings import SERVICES, Settings

CHUNK = 64 * 1024


class DeskUnavailable(Exception):
    """What the console cannot do here, in words for the auditor (a catalogue message id)."""


@dataclass(frozen=True)
class ChainHead:
    service: str
    head_index: int
    head_hash: str
    signed_at: datetime
    sequence: int | None


NO_AUDITOR_CREDENTIAL = (
    "The console has no credential of the auditor's on the bus: it cannot read the whole record. "
    "Run kizuki audit verify where that credential is kept."
)
NO_TRUST_FILE = (
    "There is no trust file in the data directory: run kizuki provision, or verify with your own copy."
)
NO_AUDITOR_CREDENTIAL_TO_ANALYSE = (
    "The console has no credential of the auditor's on the bus: it cannot read the whole record. "
    "Run kizuki analysis where that credential is kept."
)
BUS_DOWN = "The record cannot be read now: the NATS server does not answer."


class RecordDesk:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._one_at_a_time = asyncio.Lock()

    @property
    def last(self) -> Verification | None:
        """The last verification of the record, here or by `kizuki audit verify`."""
        return Verification.last(self.settings.data_dir)

    @property
    def reads_the_whole_record(self) -> bool:
        user = self.settings.bus_user(AUDITOR)
        return user is None or user.seed_file.is_file()

    async def heads(self) -> list[ChainHead]:
        """Each service's last checkpoint on the record, read with the console's own credential."""
        found: list[ChainHead] = []
        nc = await self._connect("console")
        try:
            js = nc.jetstream()
            for service in SERVICES:
                try:
                    message = await js.get_last_msg(RECORD_STREAM, f"events.{service}.CheckpointSigned")
                except NotFoundError:
                    continue  # this service has signed nothing yet
                # A checkpoint that does not parse is left to the verification, which names it.
                signed = CheckpointSigned.model_validate_json(message.data or b"")
                found.append(
                    ChainHead(service, signed.head_index, signed.head_hash, signed.recorded_at, message.seq)
                )
        except (NatsError, TimeoutError) as error:
            raise DeskUnavailable(BUS_DOWN) from error
        finally:
            await nc.close()
        return found

    async def verify(self, by: str) -> Verification:
        """`kizuki audit verify` over the record as it is now; kept as the last verification."""
        trust = self._trust()
        async with self._one_at_a_time:
            verifier = Verifier(trust, awaited=Awaited(datetime.now(UTC), self.settings.checkpoint_seconds))
            await self._each_message(verifier.check)
            verifier.finish()
            verification = Verification.of(verifier, datetime.now(UTC), by)
            await asyncio.to_thread(verification.keep, self.settings.data_dir)
            return verification

    async def proof(self, complaint_id: str) -> tuple[TextIO, int]:
        """`kizuki audit prove`: the bundle in a temporary file, and how many of the complaint's own
        events it holds (none: there is no such complaint on the record)."""
        trust, out = self._trust(), _spool()
        found = await bundle.prove(
            self._messages(), complaint_id, trust, out, self.settings.checkpoint_seconds
        )
        return out, found

    async def export(self) -> TextIO:
        """`kizuki audit export`: the whole record and the trust file, in a temporary file."""
        trust, out = self._trust(), _spool()
        await bundle.export(self._messages(), trust, out, self.settings.checkpoint_seconds)
        return out

    async def analysis(self, policy: Policy, period_kind: str) -> dict[str, Any]:
        """`kizuki analysis`'s figures over the whole record as it is now, per ``period_kind``."""
        if not self.reads_the_whole_record:
            raise DeskUnavailable(NO_AUDITOR_CREDENTIAL_TO_ANALYSE)
        rebuild = AnalysisRebuild()
        await self._each_message(rebuild.add)
        return analysis_of(rebuild, policy, period_kind)

    def _trust(self) -> TrustFile:
        if not self.reads_the_whole_record:
            raise DeskUnavailable(NO_AUDITOR_CREDENTIAL)
        if not self.settings.trust_file.is_file():
            raise DeskUnavailable(NO_TRUST_FILE)
        return TrustFile.load(self.settings.trust_file)

    async def _connect(self, user: str) -> Client:
        try:
            return await asyncio.wait_for(
                connect(self.settings.bus_url, f"console-{user}-desk", user=self.settings.bus_user(user)), 5
            )
        except (NatsError, OSError, TimeoutError) as error:
            raise DeskUnavailable(BUS_DOWN) from error

    async def _messages(self) -> AsyncIterator[RecordMessage]:
        nc = await self._connect(AUDITOR)
        try:
            async for message in read_messages(nc.jetstream()):
                yield message
        except (NatsError, TimeoutError) as error:  # the server went away while the record was read
            raise DeskUnavailable(BUS_DOWN) from error
        finally:
            await nc.close()

    async def _each_message(self, check: Callable[[RecordMessage], None]) -> None:
        async for message in self._messages():
            check(message)


def _spool() -> TextIO:
    return io.TextIOWrapper(tempfile.TemporaryFile(), encoding="utf-8")


async def chunks(spooled: TextIO) -> AsyncIterator[bytes]:
    """The bundle as written, a chunk at a time; the temporary file is gone once sent."""
    try:
        spooled.seek(0)
        while text := spooled.read(CHUNK):
            yield text.encode("utf-8")
    finally:
        spooled.close()
