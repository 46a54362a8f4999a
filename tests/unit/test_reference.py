"""The complaint's reference: short, unambiguous, read back however a person types it."""

import base64
import hashlib
from uuid import UUID, uuid4

import pytest

from shared.reference import ALPHABET, parse_reference, reference_of

pytestmark = pytest.mark.unit

RFC_4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
COMPLAINT = UUID("77353f1b-5811-5e84-8845-e255d1631473")


def test_the_reference_is_eight_crockford_characters_from_the_first_40_bits_of_sha256() -> None:
    # Computed another way: RFC 4648 base32 of the same five bytes, letter for letter in Crockford's.
    first_40_bits = hashlib.sha256(COMPLAINT.bytes).digest()[:5]
    code = base64.b32encode(first_40_bits).decode().translate(str.maketrans(RFC_4648, ALPHABET))
    assert reference_of(COMPLAINT) == f"{code[:4]}-{code[4:]}" == "REZA-8VYH"


def test_a_reference_is_read_back_as_a_person_types_or_says_it() -> None:
    reference = reference_of(COMPLAINT)
    assert parse_reference(reference) == reference
    assert parse_reference(reference.lower().replace("-", "")) == reference
    assert parse_reference(f"  {reference[:2]} {reference[2:]} ") == reference
    assert parse_reference("o1il-LOI0") == "0111-1010"  # O is 0; I and L are 1


@pytest.mark.parametrize("typed", ["", "ABCD-EFG", "ABCD-EFGHJ", "ABCD-EFGU", "ABCD_EFGH", "ÄBCD-EFGH"])
def test_what_is_not_a_reference_is_said_so(typed: str) -> None:
    assert parse_reference(typed) is None


def test_references_spread_over_the_whole_alphabet() -> None:
    seen = {character for _ in range(200) for character in reference_of(uuid4()).replace("-", "")}
    assert seen == set(ALPHABET)
