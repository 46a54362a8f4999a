"""`kizuki audit verify`: every link of every service's chain, and every signed checkpoint, checked.

Reads one message at a time and keeps a few values per chain, so memory stays bounded however long
the record is. Only checkpoints are decoded; every other message is only hashed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Problem:
    kind: str  # changed, missing, out of order, unknown key, wrong key, unsigned, unchained
    stream_sequence: int | None
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.stream_sequence}" if self.stream_sequence is not None else "end"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class Chain:
    """What the verifier remembers of one service's chain."""

    head: Link
    head_sequence: int | None = None
    unsigned: int = 0  # links since the last trusted checkpoint
    checkpoints: int = 0
    missing: dict[int, int] = field(default_factory=dict)  # index -> sequence where it was due


class Verifier:
    """Feed it the record in order, then call ``finish``.

    With ``segments`` (a proof) a chain may start at any link and resume after a gap that follows a
    trusted checkpoint; a full record must start at link 1 and have no gap.
    """

    def __init__(self, trust: TrustFile, segments: bool = False) -> None:
        self.trust = trust
        self.segments = segments
        self.chains: dict[str, Chain] = {}
        self.problems: list[Problem] = []
        self.counts: Counter[str] = Counter()
        self.messages = 0

    def problem(self, kind: str, sequence: int | None, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(Problem(kind, sequence, detail))

    def check(self, message: RecordMessage) -> None:
        self.messages += 1
        sequence, headers = message.stream_sequence, message.headers
        if not all(name in headers for name in CHAIN_HEADERS) or not headers[INDEX_HEADER].isdigit():
            self.problem("unchained", sequence, f"{message.subject} carries no chain headers")
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
            start = Link(index - 1, previous) if self.segments else Link(0, GENESIS)
            chain = self.chains[service] = Chain(head=start)
        if not self._follow(chain, service, index, previous, sequence):
            return
        chain.head, chain.head_sequence = Link(index, headers[HASH_HEADER]), sequence
        chain.unsigned += 1
        if headers.get("Kizuki-Event-Type") == CHECKPOINT and self._checkpoint_holds(
            service, Link(index - 1, previous), message
        ):
            chain.unsigned = 0
            chain.checkpoints += 1

    def _follow(self, chain: Chain, service: str, index: int, previous: str, sequence: int) -> bool:
        """Whether the link is the chain's next one (or one after a gap, which is noted)."""
        expected = chain.head.index + 1
        if index < expected:
            was_missing = chain.missing.pop(index, None) is not None
            again = "" if was_missing else " again"
            self.problem("out of order", sequence, f"{service} link {index}{again} after link {expected - 1}")
            return False
        if index > expected:
            if not (self.segments and chain.unsigned == 0):
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
        """Names what never arrived and what no trusted checkpoint signs."""
        for service, chain in sorted(self.chains.items()):
            for first, last, sequence in _runs(chain.missing):
                links = f"link {first}" if first == last else f"links {first}-{last}"
                self.problem("missing", sequence, f"{service} {links} missing before this message")
            if chain.unsigned:
                self.problem(
                    "unsigned",
                    chain.head_sequence,
                    f"the last {chain.unsigned} link(s) of {service} are under no trusted checkpoint",
                )

    @property
    def holds(self) -> bool:
        return not self.counts

    def summary(self) -> str:
        checkpoints = sum(chain.checkpoints for chain in self.chains.values())
        seen = f"{self.messages} messages, {len(self.chains)} chains, {checkpoints} trusted checkpoints"
        if self.holds:
            return f"verified: {seen}; every link and signature holds"
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
