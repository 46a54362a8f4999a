"""Live updates: each stored event wakes the pages that listen, over server-sent events."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

KEEP_ALIVE_SECONDS = 15.0


class ChangeFeed:
    """A worker of the console's runtime: woken after each event the consumer stores (in the event
    loop's thread), it wakes every listener. Not leased: it serves the pages open on its own replica."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()

    async def run(self) -> None:
        """Ends the streams when the process is asked to stop: the server waits for open responses
        before it shuts down, and an open page would otherwise hold it for its whole grace period."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if callable(previous):  # the server's own handler, which still runs after ours
                signal.signal(signum, self._closing_then(previous))
        await asyncio.Event().wait()  # then nothing to do but be woken, until the runtime stops

    def _closing_then(
        self, previous: Callable[[int, FrameType | None], Any]
    ) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self._closing.set()
            self.wake()
            previous(signum, frame)

        return handler

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

    async def stream(self, since: int | None = None) -> AsyncIterator[str]:
        """Server-sent events: one each time the record changed, a comment now and then to keep the
        connection open. ``since``: the version the listening page shows; a change after it (while the
        page loaded, before it listened) is sent at once."""
        yield "retry: 1000\n\n"
        seen = self.version if since is None else since
        while not self._closing.is_set():
            # Compared with the version, not only woken: a change between two waits is not missed.
            if self.version == seen and not await self.changed(KEEP_ALIVE_SECONDS):
                yield ": still here\n\n"
                continue
            seen = self.version
            yield f"data: {seen}\n\n"
