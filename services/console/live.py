"""Live updates: each stored event wakes the pages that listen, over server-sent events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

KEEP_ALIVE_SECONDS = 15.0


class ChangeFeed:
    """A worker of the console's runtime: woken after each event the consumer stores (in the event
    loop's thread), it wakes every listener."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()

    async def run(self) -> None:
        await asyncio.Event().wait()  # nothing to do but be woken

    def wake(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, within: float) -> bool:
        """Whether something changed within that many seconds."""
        try:
            await asyncio.wait_for(self._changed.wait(), within)
        except TimeoutError:
            return False
        return True

    async def until(self, condition: Callable[[], bool], within: float) -> bool:
        """Wait (at most ``within`` seconds) until the read model satisfies the condition."""
        deadline = time.monotonic() + within
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self.changed(left)
        return True

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: one each time the record changed, a comment now and then to keep the
        connection open."""
        yield "retry: 1000\n\n"
        seen = self.version
        while True:
            # Compared with the version, not only woken: a change between two waits is not missed.
            if self.version == seen and not await self.changed(KEEP_ALIVE_SECONDS):
                yield ": still here\n\n"
                continue
            seen = self.version
            yield f"data: {seen}\n\n"
