"""Waiting for a condition with a deadline, instead of sleeping for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.05


async def eventually(probe: Callable[[], Awaitable[T]], within: float = 15.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s (last: {result!r})")
        await asyncio.sleep(POLL_INTERVAL)


def until(probe: Callable[[], T], within: float = 15.0, what: str = "condition") -> T:
    """The same for a synchronous probe."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s (last: {result!r})")
        time.sleep(POLL_INTERVAL)
