import hashlib
import random
import re
import unicodedata

import pytest

from services.intake.matching import SKETCH_LETTERS, SKETCH_SIZE, contact_digest, similarity, sketch

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_the_same_contact_written_differently_gives_the_same_digest() -> None:
    assert contact_digest(KEY, "+81-3-0000-0000") == contact_digest(KEY, "+81 3 (0000) 0000")
    assert contact_digest(KEY, "Sato@Example.org") == contact_digest(KEY, "sato@example.org")
    assert contact_digest(KEY, "sato@example.org") != contact_digest(KEY, "suzuki@example.org")


def test_without_the_key_a_digest_cannot_be_matched_to_a_guess() -> None:
    assert contact_digest(KEY, "sato@example.org") != contact_digest(OTHER_KEY, "sato@example.org")
    assert sketch(KEY, "薬が届かない") != sketch(OTHER_KEY, "薬が届かない")


def test_alike_texts_have_alike_sketches_and_others_do_not() -> None:
    first = sketch(KEY, "三時間待っても痛み止めの薬が届きませんでした。")
    again = sketch(KEY, "3時間待っても痛み止めの薬が届きませんでした!")
    unrelated = sketch(KEY, "駐車場の料金が高すぎると思います。")
    assert similarity(first, first) == 1
    assert similarity(first, again) >= 0.5
    assert similarity(first, unrelated) < 0.2
    english = sketch(KEY, "Waited three hours for pain medication.")
    assert similarity(english, sketch(KEY, "waited 3 hours for my pain medication")) >= 0.4


def minhash_by_definition(key: bytes, text: str) -> tuple[int, ...]:
    """The sketch as its definition reads, one permutation and one shingle at a time with Python's
    integers (which never overflow): what ``sketch`` computes all at once in 64-bit arithmetic."""
    letters = re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())[:SKETCH_LETTERS]
    shingles = {letters[i : i + 3] for i in range(max(1, len(letters) - 2))}
    hashed = [int.from_bytes(hashlib.blake2b(s.encode(), key=key, digest_size=8).digest()) for s in shingles]
    seeds = hashlib.shake_256(b"minhash:" + key).digest(16 * SKETCH_SIZE)
    permutations = [
        (int.from_bytes(seeds[16 * i : 16 * i + 8]) | 1, int.from_bytes(seeds[16 * i + 8 : 16 * i + 16]))
        for i in range(SKETCH_SIZE)
    ]
    return tuple(min((a * h + b) % (2**61 - 1) for h in hashed) for a, b in permutations)


def test_a_sketch_is_the_minhash_its_definition_gives_for_any_text() -> None:
    chance = random.Random(20261204)
    alphabet = "abcdefghijklmnopqrstuvwxyz 痛み止めの薬が届かない病棟看護師止痛药没有送到。0123456789"
    texts = ["", "!!!", "ab", "三時間待っても痛み止めの薬が届きませんでした。", "x" * 5000]
    texts += ["".join(chance.choices(alphabet, k=chance.randint(1, 3000))) for _ in range(20)]
    for text in texts:
        assert sketch(KEY, text) == minhash_by_definition(KEY, text)
        assert sketch(OTHER_KEY, text) == minhash_by_definition(OTHER_KEY, text)
