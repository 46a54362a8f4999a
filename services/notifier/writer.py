"""The dispatcher's one writer: the attempts and outcomes deliveries have queued, stored together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.notifier.application import NotifierApplication
from services.notifier.domain import Notification

log = logging.getLogger(__name__)

Action = Callable[[Notification], object]

BATCH = 200


class WriterFailed(Exception):
    """The writer failed before it knew what became of this action: the delivery reads its
    notification again, and whatever was not stored is done again (resent under the same key)."""


@dataclass(frozen=True)
class ToRecord:
    """An action of a delivery on its notification, waiting for the writer."""

    notification: Notification
    action: Action
    recorded: asyncio.Future[Notification]


class Writer:
    """Deliveries do not write: they queue what is to be recorded (an attempt started, its outcome)
    and wait for it; whatever was queued while the last batch was being stored is the next batch,
    stored in one transaction, so that many deliveries cost one commit rather than one each."""

    def __init__(self, store: NotifierApplication) -> None:
        self.store = store
        self._queue: asyncio.Queue[ToRecord] = asyncio.Queue()

    async def record(self, notification: Notification, action: Action) -> Notification:
        """The notification with the action applied and stored, in the next batch."""
        recorded: asyncio.Future[Notification] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(ToRecord(notification, action, recorded))
        return await recorded

    async def run(self) -> None:
        """Supervised: a failure fails the batch in hand (each of its deliveries reads its notification
        again) and the writer goes on with the next; nothing queued is left waiting."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            except Exception as error:
                log.error(
                    "the notifier's writer failed (%s); its batch is taken up again", type(error).__name__
                )
                for queued in batch:
                    if not queued.recorded.done():
                        queued.recorded.set_exception(WriterFailed(type(error).__name__))

    async def _store(self, batch: list[ToRecord]) -> None:
        """One transaction for the batch (the store wakes the relay once for it)."""
        acts = [(queued.notification, queued.action) for queued in batch]
        try:
            outcomes = await asyncio.to_thread(self.store.act_on_all, acts)
        except Exception as error:  # the store failed: each delivery reads its notification again
            outcomes = [error] * len(batch)
        for queued, outcome in zip(batch, outcomes, strict=True):
            if queued.recorded.done():  # its delivery was cancelled
                continue
            if isinstance(outcome, Exception):
                queued.recorded.set_exception(outcome)
            else:
                queued.recorded.set_result(outcome)
