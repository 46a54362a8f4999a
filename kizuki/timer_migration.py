"""Upgrading from the one timer stream all services shared (``TIMERS``) to one stream per service.

Provisioning moves what the shared stream still holds into each service's own stream, then deletes
it: every pending schedule (with its schedule unchanged; one whose time passed meanwhile fires at once)
and every fire that the service's consumer had not yet acknowledged. Fires already handled stay
behind. Run again after an interruption it moves the same again, which changes nothing: a schedule
replaces the one on its subject, and a fire seen twice is a no-op for its handler.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from shared.bus import due_subject, schedule_subject, timer_stream

log = logging.getLogger(__name__)

SHARED_TIMER_STREAM = "TIMERS"


async def migrate_shared_timers(js: JetStreamContext, services: Sequence[str]) -> int:
    """Move the shared stream's pending timers and unhandled fires of ``services``; returns how many."""
    try:
        await js.stream_info(SHARED_TIMER_STREAM)
    except NotFoundError:
        return 0
    moved = 0
    for service in services:
        async for message in _messages(js, f"timers.schedule.{service}.>", after=0):
            key = _key(message, f"timers.schedule.{service}.")
            await js.publish(
                schedule_subject(service, key),
                message.data or b"",
                stream=timer_stream(service),
                headers={
                    "Nats-Msg-Id": f"{SHARED_TIMER_STREAM}:{message.seq}",
                    "Nats-Schedule": (message.headers or {})["Nats-Schedule"],
                    "Nats-Schedule-Target": due_subject(service, key),
                },
            )
            moved += 1
        async for message in _messages(js, f"timers.due.{service}.>", await _handled(js, service)):
            key = _key(message, f"timers.due.{service}.")
            await js.publish(
                due_subject(service, key),
                message.data or b"",
                stream=timer_stream(service),
                headers={"Nats-Msg-Id": f"{SHARED_TIMER_STREAM}:{message.seq}"},
            )
            moved += 1
    await js.delete_stream(SHARED_TIMER_STREAM)
    log.warning(
        "moved %d pending timers and unhandled fires out of %s and deleted it", moved, SHARED_TIMER_STREAM
    )
    return moved


async def _handled(js: JetStreamContext, service: str) -> int:
    """The last fire the service acknowledged (it handles one at a time, in order); 0 for none."""
    try:
        info = await js.consumer_info(SHARED_TIMER_STREAM, service)
    except NotFoundError:
        return 0
    return info.ack_floor.stream_seq if info.ack_floor is not None else 0


async def _messages(js: JetStreamContext, subjects: str, after: int) -> AsyncIterator[RawStreamMsg]:
    """The shared stream's messages on ``subjects`` with a sequence above ``after``, in order."""
    sequence = after + 1
    while True:
        try:
            message = await js.get_msg(SHARED_TIMER_STREAM, sequence, subjects, next=True)
        except NotFoundError:
            return
        yield message
        sequence = (message.seq or sequence) + 1


def _key(message: RawStreamMsg, prefix: str) -> str:
    return (message.subject or "").removeprefix(prefix)
