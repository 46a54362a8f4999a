import pytest

from services.intake.matching import contact_digest, similarity, sketch

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
