"""Ids that are the same every time for the same facts."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

KIZUKI_NAMESPACE = uuid5(NAMESPACE_URL, "https://kizuki.invalid/")


def stable_id(*parts: object) -> UUID:
    """A UUID that is the same every time for the same parts: retries and replays agree on it."""
    return uuid5(KIZUKI_NAMESPACE, ":".join(str(part) for part in parts))
