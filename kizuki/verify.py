"""`kizuki audit verify`: every link of every service's chain, and every signed checkpoint, checked.

Reads one message at a time and keeps a few values per chain, so memory stays bounded however long
the record is. Only checkpoints are decoded; every other message is only hashed.

The stream's sequence numbers are checked too: no chain covers the order of two services' messages.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from kizuki.audit import RecordMessage
from shared.chain import (
    CHAIN_HEADERS,
    GENESIS,
    HASH_HEADER,
    INDEX_HEADER,
    PREVIOUS_HEADER,
    Link,
    TrustFile,
    checkpoint_statement,
    content_hash,
    link_hash,
    signature_holds,
)
from shared.events import CheckpointSigned

CHECKPOINT = CheckpointSigned.type_name()
PROBLEMS_KEPT = 1000
# A relay looks for a due checkpoint about once a second, then publishes it: a little more than
# one interval can pass between a link reaching the record and the checkpoint that signs it.
AWAITING_GRACE_SECONDS = 5.0
# The last verification of the record on the server, in the data directory, for the pages that show it.
LAST_VERIFICATION = "last-verification.json"
PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class Problem:
    # changed, missing, out of order, unknown key, wrong key, unsigned, unchained, stray
    kind: str
    stream_sequence: int | None
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.stream_sequence}" if self.stream_sequence is not None else "end"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Awaited:
    """The unsigned tail of a chain is awaited, not a failure, when it reached the record within one
    checkpoint interval of ``as_of`` (when the record was read, or the bundle written)."""

    as_of: datetime
    seconds: float

    def covers(self, stored_at: datetime | None) -> bool:
        if stored_at is None:
            return False
        return (self.as_of - stored_at).total_seconds() <= self.seconds + AWAITING_GRACE_SECONDS


@dataclass
class Chain:
    """What the verifier remembers of one service's chain."""

    head: Link
    head_sequence: int | None = None
    unsigned: int = 0  # links since the last trusted checkpoint
    unsigned_since: datetime | None = None  # when the first of them reached the record
    checkpoints: int = 0
    missing: dict[int, int] = field(default_factory=dict)  # index -> sequence where it was due
    # The last trusted checkpoint: its index, its sequence, and how many messages had been read then.
    signed: tuple[int, int, int] = (0, 0, 0)


class Verifier:
    """Feed it the record in order, then call ``finish``.

    A full record must start at link 1 of each chain and at sequence 1, with no gap. A proof
    (``proof_of`` a complaint) holds segments of chains: each opens with one of the complaint's own
    events, at any link, and closes with a trusted checkpoint; what lies between segments is left
    out, and must fit in the sequence numbers left out. With ``awaited``, the unsigned tail of a chain
    that reached the record within one checkpoint interval is counted as awaiting, not as a problem.
    """

    def __init__(self, trust: TrustFile, proof_of: str | None = None, awaited: Awaited | None = None) -> None:
        self.trust = trust
        self.proof_of = proof_of
        self.awaited = awaited
        self.chains: dict[str, Chain] = {}
        self.problems: list[Problem] = []
        self.counts: Counter[str] = Counter()
        self.awaiting: dict[str, int] = {}
        self.messages = 0
        self.last_sequence = 0
        self.absent: dict[int, int] = {}  # full record: sequence -> the sequence it was due before

    def problem(self, kind: str, sequence: int | None, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(Problem(kind, sequence, detail))

    def check(self, message: RecordMessage) -> None:
        self.messages += 1
        sequence, headers = message.stream_sequence, message.headers
        backwards = self._runs_backwards(sequence)
        if not all(name in headers for name in CHAIN_HEADERS) or not headers[INDEX_HEADER].isdigit():
            self.problem("unchained", sequence, f"{message.subject} carries no chain headers")
            if backwards:
                self.problem("out of order", sequence, backwards)
            return
        service = message.subject.split(".")[1]
        index, previous = int(headers[INDEX_HEADER]), headers[PREVIOUS_HEADER]
        try:
            content = (
                content_hash(message.subject, headers, message.data)
                if message.data is not None
                else bytes.fromhex(message.content_hash or "")
            )
            computed = link_hash(previous, content)
        except ValueError:
            computed = ""
        if computed != headers[HASH_HEADER]:
            self.problem("changed", sequence, f"{service} link {index} does not match its hash")
        chain = self.chains.get(service)
        if chain is None:
            start = Link(index - 1, previous) if self.proof_of is not None else Link(0, GENESIS)
            chain = self.chains[service] = Chain(head=start)
        if self.proof_of is not None and chain.unsigned == 0:
            self._opens_segment(chain, service, index, message)
        if not self._follow(chain, service, index, previous, sequence):
            return  # named out of order by its own chain
        if backwards:
            self.problem("out of order", sequence, backwards)
        chain.head, chain.head_sequence = Link(index, headers[HASH_HEADER]), sequence
        if chain.unsigned == 0:
            chain.unsigned_since = message.stored_at
        chain.unsigned += 1
        if headers.get("Kizuki-Event-Type") == CHECKPOINT and self._checkpoint_holds(
            service, Link(index - 1, previous), message
        ):
            chain.unsigned = 0
            chain.checkpoints += 1
            chain.signed = (index, sequence, self.messages)

    def _runs_backwards(self, sequence: int) -> str | None:
        """What is wrong when the message comes after one with a later sequence (named unless its
        chain names it); a gap in a full record is noted, and forgiven if what it lacks comes later."""
        if sequence <= self.last_sequence:
            late = self.absent.pop(sequence, None) is not None or self.proof_of is not None
            return f"seq {sequence}{'' if late else ' again'} after seq {self.last_sequence}"
        if self.proof_of is None:
            for gap in range(self.last_sequence + 1, min(sequence, self.last_sequence + 1 + PROBLEMS_KEPT)):
                self.absent[gap] = sequence
        self.last_sequence = sequence
        return None

    def _opens_segment(self, chain: Chain, service: str, index: int, message: RecordMessage) -> None:
        """In a proof, a chain's segment opens only with one of the complaint's own events, and the
        links left out since its last one must fit in the sequence numbers left out."""
        sequence = message.stream_sequence
        own = message.data is not None and message.headers.get("Kizuki-Complaint-Id") == self.proof_of
        if not own:
            self.problem(
                "stray",
                sequence,
                f"{service} link {index} is neither an event of complaint {self.proof_of} "
                "nor in a chain after one",
            )
        signed_index, signed_sequence, read_then = chain.signed
        left_out = index - signed_index - 1
        room = (sequence - signed_sequence - 1) - (self.messages - 1 - read_then)
        if left_out > room:
            self.problem(
                "missing",
                sequence,
                f"{service} links {signed_index + 1}-{index - 1} are left out before this message, "
                f"where only {max(room, 0)} sequence number(s) are",
            )

    def _follow(self, chain: Chain, service: str, index: int, previous: str, sequence: int) -> bool:
        """Whether the link is the chain's next one (or one after a gap, which is noted)."""
        expected = chain.head.index + 1
        if index < expected:
            was_missing = chain.missing.pop(index, None) is not None
            again = "" if was_missing else " again"
            self.problem("out of order", sequence, f"{service} link {index}{again} after link {expected - 1}")
            return False
        if index > expected:
            if not (self.proof_of is not None and chain.unsigned == 0):
                for gap in range(expected, min(index, expected + PROBLEMS_KEPT)):
                    chain.missing[gap] = sequence
        elif previous != chain.head.hash:
            before = f"seq {chain.head_sequence}" if chain.head_sequence is not None else "the start"
            self.problem(
                "changed", sequence, f"{service} link {index} does not follow {before}: one was changed"
            )
        return True

    def _checkpoint_holds(self, service: str, signed: Link, message: RecordMessage) -> bool:
        sequence = message.stream_sequence
        try:
            checkpoint = CheckpointSigned.model_validate_json(message.data or b"")
        except ValidationError:
            self.problem("changed", sequence, f"{service} checkpoint is not readable")
            return False
        if (checkpoint.signed_by, checkpoint.head_index, checkpoint.head_hash) != (
            service,
            signed.index,
            signed.hash,
        ):
            self.problem("changed", sequence, f"{service} checkpoint does not sign the link before it")
            return False
        if not self.trust.trusts(service, checkpoint.public_key):
            self.problem(
                "unknown key", sequence, f"{checkpoint.public_key} is not {service}'s in the trust file"
            )
            return False
        if not signature_holds(
            checkpoint.public_key, checkpoint_statement(service, signed), checkpoint.signature
        ):
            self.problem(
                "wrong key", sequence, f"{service} checkpoint's signature is not {checkpoint.public_key}'s"
            )
            return False
        return True

    def finish(self) -> None:
        """Names what never arrived and what no trusted checkpoint signs (unless it is awaited)."""
        explained: set[tuple[int, int]] = set()
        for service, chain in sorted(self.chains.items()):
            for first, last, sequence in _runs(chain.missing):
                explained.add((last - first, sequence))
                links = f"link {first}" if first == last else f"links {first}-{last}"
                self.problem("missing", sequence, f"{service} {links} missing before this message")
            if not chain.unsigned:
                continue
            if self.awaited is not None and self.awaited.covers(chain.unsigned_since):
                self.awaiting[service] = chain.unsigned
            else:
                self.problem(
                    "unsigned",
                    chain.head_sequence,
                    f"the last {chain.unsigned} link(s) of {service} are under no trusted checkpoint",
                )
        for first, last, sequence in _runs(self.absent):
            if (last - first, sequence) not in explained:  # else a chain names what the gap lost
                numbers = f"seq {first}" if first == last else f"seqs {first}-{last}"
                self.problem("missing", sequence, f"{numbers} missing before this message")

    @property
    def holds(self) -> bool:
        return not self.counts

    def awaiting_note(self) -> str | None:
        """How many links await the next checkpoint, and within how long, if any do."""
        if not self.awaiting or self.awaited is None:
            return None
        links = sum(self.awaiting.values())
        chains = ", ".join(f"{service} {count}" for service, count in sorted(self.awaiting.items()))
        return f"{links} link(s) awaiting the next checkpoint (≤ {self.awaited.seconds:g} s): {chains}"

    def summary(self) -> str:
        checkpoints = sum(chain.checkpoints for chain in self.chains.values())
        seen = f"{self.messages} messages, {len(self.chains)} chains, {checkpoints} trusted checkpoints"
        if self.holds:
            note = self.awaiting_note()
            verdict = "every link and signature holds" + (f"; {note}" if note else "")
            return f"verified: {seen}; {verdict}"
        problems = ", ".join(f"{kind} {count}" for kind, count in sorted(self.counts.items()))
        return f"FAILED: {seen}; {self.counts.total()} problem(s): {problems}"


def _runs(missing: dict[int, int]) -> list[tuple[int, int, int]]:
    """Missing indices as (first, last, sequence where due) runs."""
    runs: list[tuple[int, int, int]] = []
    for index, sequence in sorted(missing.items()):
        if runs and runs[-1][1] == index - 1 and runs[-1][2] == sequence:
            runs[-1] = (runs[-1][0], index, sequence)
        else:
            runs.append((index, index, sequence))
    return runs


@dataclass(frozen=True)
class Verification:
    """A verification of the whole record on the server: when, by whom (a staff id, or the command),
    whether it held, and what it found."""

    at: datetime
    by: str
    holds: bool
    summary: str
    problems: list[str]
    heads: dict[str, int] = field(default_factory=dict)  # service: the last link read

    @classmethod
    def of(cls, verifier: Verifier, at: datetime, by: str) -> Verification:
        return cls(
            at,
            by,
            verifier.holds,
            verifier.summary(),
            [str(problem) for problem in verifier.problems[:PROBLEMS_SHOWN]],
            {service: chain.head.index for service, chain in sorted(verifier.chains.items())},
        )

    def keep(self, data_dir: Path) -> None:
        """As the last verification, replacing the one before at once (never half written)."""
        kept = data_dir / LAST_VERIFICATION
        written = kept.with_suffix(".tmp")
        written.write_text(json.dumps(asdict(self) | {"at": self.at.isoformat()}), encoding="utf-8")
        written.replace(kept)

    @classmethod
    def last(cls, data_dir: Path) -> Verification | None:
        """The last verification kept in the data directory, if any."""
        try:
            kept = json.loads((data_dir / LAST_VERIFICATION).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**kept | {"at": datetime.fromisoformat(kept["at"])})
