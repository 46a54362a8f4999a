"""What a service set aside, for its administrators: the list, and taking a message up again once its
cause is fixed (``kizuki set-aside``). The same consumer code handles it, once."""

# No `from __future__ import annotations`: FastAPI reads the route's Annotated parameters at runtime.
import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from shared import refusals
from shared.auth import Authenticator, Person
from shared.consumer import ConsumerLoop
from shared.set_aside import OUTBOX, NotSetAside, RejectedMessage, SetAside

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


class SetAsideItem(BaseModel):
    stream: str = Field(
        description=f"The stream the message was read from, or {OUTBOX!r}: an event of this service's "
        "own that the bus refused for good."
    )
    stream_sequence: int = Field(description="Its sequence there (the notification id in the outbox).")
    what: str = Field(description="The message's subject, or the event's type and size.")
    reason: str = Field(description="Why it could not be handled or published.")
    complaint_id: UUID | None = Field(description="The complaint, when the message named one.")
    set_aside_at: datetime = Field(description="When it was set aside.")


def _item(kept: SetAside) -> SetAsideItem:
    if isinstance(kept, RejectedMessage.Rejected):
        place, what = (kept.stream, kept.stream_sequence), kept.message_subject
    else:
        place, what = (OUTBOX, kept.notification_id), f"{kept.event_type}, {kept.size} bytes"
    return SetAsideItem(
        stream=place[0],
        stream_sequence=place[1],
        what=what,
        reason=kept.reason,
        complaint_id=kept.complaint_id,
        set_aside_at=kept.occurred_at,
    )


class TakenUp(BaseModel):
    stream: str
    stream_sequence: int
    taken_up: bool = Field(description="True: handled (or, from the outbox, to be published) once.")


def set_aside_router(runtime: "ServiceRuntime", auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/v1/set-aside", tags=["set aside"])
    administrator = Annotated[Person, Depends(auth.requires("administrator"))]

    @router.get("", summary="What this service set aside and has not taken up again")
    async def listed(_: administrator) -> list[SetAsideItem]:
        return [_item(kept) for kept in await asyncio.to_thread(runtime.store.set_aside)]

    @router.post(
        "/{stream}/{stream_sequence}/take-up",
        summary="Handle a set-aside message again; 409 if it still cannot be handled, 503 on a passing fault",
    )
    async def take_up(stream: str, stream_sequence: int, person: administrator) -> TakenUp:
        try:
            if stream == OUTBOX and runtime.relay is not None:
                await runtime.relay.take_up(stream_sequence, person.staff_id)
            else:
                await _consumer_of(runtime.loops, stream).take_up(stream_sequence, person.staff_id)
        except NotSetAside as missing:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(missing)) from None
        except (refusals.NotPossible, refusals.NotPermitted) as refusal:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail=f"it still cannot be handled, it stays set aside: {refusal}"
            ) from None
        except Exception as fault:
            log.exception("taking up %s #%d failed", stream, stream_sequence)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail=f"a passing fault ({type(fault).__name__}): it stays set aside, try again later",
            ) from None
        return TakenUp(stream=stream, stream_sequence=stream_sequence, taken_up=True)

    return router


def _consumer_of(loops: list[ConsumerLoop[Any]], stream: str) -> ConsumerLoop[Any]:
    for loop in loops:
        if loop.consumer.subscription.stream == stream:
            return loop
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"this service consumes no stream {stream}")
