"""A complaint's reference: short enough to read out on the phone, the same wherever it is shown.

Eight Crockford base32 characters shown as ``XXXX-XXXX``: the first 40 bits of SHA-256 of the
complaint id, so every service and every replay derives the same one without asking anybody. Read
back case-insensitively, I and L as 1, O as 0, hyphens and spaces ignored. Forty bits can collide
(rarely: about one pair in a million at a million complaints), so a store that accepts references
keeps an index of the complaints it knows under each, and a reference shared by two is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.store import ServiceApplication, stable_id

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's: no I, L, O, U
CHARACTERS = 8
READ_AS = {"I": "1", "L": "1", "O": "0"}


def reference_of(complaint_id: UUID) -> str:
    """The complaint's reference, e.g. ``7K3M-Q9PX``."""
    bits = int.from_bytes(hashlib.sha256(complaint_id.bytes).digest()[:5])
    code = "".join(ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"{code[:4]}-{code[4:]}"


def parse_reference(text: str) -> str | None:
    """The reference as shown (``XXXX-XXXX``) for what a person typed, or None if it is not one."""
    typed = "".join(text.split()).replace("-", "").upper()
    code = "".join(READ_AS.get(character, character) for character in typed)
    if len(code) != CHARACTERS or any(character not in ALPHABET for character in code):
        return None
    return f"{code[:4]}-{code[4:]}"


class NotAComplaintId(ValueError):
    """Neither a complaint id nor a reference."""


class UnknownReference(LookupError):
    """No complaint known here has that reference."""


class AmbiguousReference(LookupError):
    """Several complaints known here share the reference: only the full id says which."""

    def __init__(self, reference: str, complaint_ids: Sequence[UUID]) -> None:
        super().__init__(
            f"reference {reference} belongs to {len(complaint_ids)} complaints: give the full id"
        )
        self.complaint_ids = complaint_ids


class ComplaintReference(Aggregate):
    """The complaints a store knows under one reference (almost always one)."""

    class Indexed(Aggregate.Created):
        reference: str
        complaint_id: UUID

    class AlsoIndexed(Aggregate.Event):
        complaint_id: UUID

    @staticmethod
    def create_id(reference: str, **_: Any) -> UUID:
        return stable_id("reference", reference)

    @event(Indexed)
    def __init__(self, reference: str, complaint_id: UUID) -> None:
        self.reference = reference
        self.complaint_ids = [complaint_id]

    @event(AlsoIndexed)
    def _also(self, complaint_id: UUID) -> None:
        self.complaint_ids.append(complaint_id)

    def add(self, complaint_id: UUID) -> None:
        if complaint_id not in self.complaint_ids:
            self._also(complaint_id)


def indexed(store: ServiceApplication, complaint_id: UUID) -> ComplaintReference:
    """The index entry listing the complaint under its reference, to be saved in the same transaction
    as the store's first event of that complaint (a retry finds it listed and adds nothing)."""
    reference = reference_of(complaint_id)
    entry = store.find(ComplaintReference, ComplaintReference.create_id(reference))
    if entry is None:
        return ComplaintReference(reference=reference, complaint_id=complaint_id)
    entry.add(complaint_id)
    return entry


def named(text: str, known: Callable[[str], Sequence[UUID]], where: str = "") -> UUID:
    """The complaint that ``text`` names: a complaint id as it is, or the one complaint ``known`` lists
    under the reference (``where`` says where it was looked up, for the messages)."""
    try:
        return UUID(text)
    except ValueError:
        pass
    reference = parse_reference(text)
    if reference is None:
        raise NotAComplaintId(
            f"{text!r} is neither a complaint id nor a reference (8 letters and digits, e.g. 7K3M-Q9PX)"
        )
    complaint_ids = sorted(known(reference))
    if not complaint_ids:
        raise UnknownReference(f"no complaint with reference {reference}{where}")
    if len(complaint_ids) > 1:
        raise AmbiguousReference(reference, complaint_ids)
    return complaint_ids[0]


def resolve(store: ServiceApplication, text: str) -> UUID:
    """The complaint id that ``text`` names, a reference looked up in the store's index."""

    def indexed_under(reference: str) -> list[UUID]:
        entry = store.find(ComplaintReference, ComplaintReference.create_id(reference))
        return [] if entry is None else entry.complaint_ids

    return named(text, indexed_under)
