"""Stable ids: the ids already on the record (events, deliveries, cases) must never change."""

from uuid import NAMESPACE_URL, RFC_4122, UUID, uuid4, uuid5

import pytest

from shared.ids import KIZUKI_NAMESPACE, stable_id

pytestmark = pytest.mark.unit


def test_a_stable_id_is_the_version_5_uuid_of_its_parts_joined_by_colons() -> None:
    assert uuid5(NAMESPACE_URL, "https://kizuki.invalid/") == KIZUKI_NAMESPACE
    # Written down once from uuid5 itself: a delivery's idempotency key as the record has it.
    assert stable_id("delivery", UUID(int=7), "email") == UUID("c7365eb8-6f0a-54e8-820f-50fdb3f6ab4b")
    for parts in [("intake", uuid4(), 3), ("受付", uuid4(), "電話"), ("x",), ()]:
        made = stable_id(*parts)
        assert made == uuid5(KIZUKI_NAMESPACE, ":".join(str(part) for part in parts))
        assert (made.version, made.variant) == (5, RFC_4122)
