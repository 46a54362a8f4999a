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
from shared.consumer import ConsumerLoop, NotSetAside

if TYPE_CHECKING:
    from shared.service import ServiceRuntime

log = logging.getLogger(__name__)


class SetAsideMessage(BaseModel):
    stream: str = Field(description="The stream the message was read from.")
    stream_sequence: int = Field(description="Its sequence there: what to take up again.")
    message_subject: str = Field(description="Its subject.")
    reason: str = Field(description="Why it could not be handled.")
    complaint_id: UUID | None = Field(description="The complaint, when the message named one.")
    set_aside_at: datetime = Field(description="When it was set aside.")


class TakenUp(BaseModel):
    stream: str
    stream_sequence: int
    taken_up: bool = Field(description="True: it was handled, and its MessageRejected is answered.")


def set_aside_router(runtime: "ServiceRuntime", auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/v1/set-aside", tags=["set aside"])
    administrator = Annotated[Person, Depends(auth.requires("administrator"))]

    @router.get("", summary="The messages this service set aside and has not taken up again")
    async def listed(_: administrator) -> list[SetAsideMessage]:
        pending = await asyncio.to_thread(runtime.store.set_aside)
        return [
            SetAsideMessage(
                stream=rejected.stream,
                stream_sequence=rejected.stream_sequence,
                message_subject=rejected.message_subject,
                reason=rejected.reason,
                complaint_id=rejected.complaint_id,
                set_aside_at=rejected.occurred_at,
            )
            for rejected in pending
        ]

    @router.post(
        "/{stream}/{stream_sequence}/take-up",
        summary="Handle a set-aside message again; 409 if it still cannot be handled, 503 on a passing fault",
    )
    async def take_up(stream: str, stream_sequence: int, person: administrator) -> TakenUp:
        loop = _consumer_of(runtime.loops, stream)
        try:
            await loop.take_up(stream_sequence, person.staff_id)
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
