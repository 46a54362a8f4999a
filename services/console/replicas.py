"""What the other replicas of the console stored, folded into this one's read model."""

from __future__ import annotations

import asyncio

from services.console.application import ConsoleApplication
from services.console.live import ChangeFeed

# How often a replica looks for what the others stored: how late its pages may be behind theirs.
INTERVAL_SECONDS = 0.5


class OtherReplicas:
    """A worker of the console's runtime on PostgreSQL, where other replicas of the console share its
    store and its durable consumer, each storing the messages it was handed: every ``interval`` it
    folds what they stored into this replica's read model, and wakes its pages when there was some.
    Not leased: every replica keeps a read model of its own."""

    def __init__(
        self, store: ConsoleApplication, feed: ChangeFeed, interval: float = INTERVAL_SECONDS
    ) -> None:
        self.store = store
        self.feed = feed
        self.interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if await asyncio.to_thread(self.store.catch_up):
                self.feed.wake()

    def wake(self) -> None:
        """What this replica stored it folded already, after the commit."""
