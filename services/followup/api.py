"""Followup's HTTP API: read a complaint's callback visit."""

from __future__ import annotations

import asyncio
from uuid import UUID

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel

from services.followup.application import FollowupApplication, callback_id_for
from shared.service import found


class CallbackView(BaseModel):
    callback_id: UUID
    complaint_id: UUID
    due_at: AwareDatetime
    attempt: int
    status: str


def router(store: FollowupApplication) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/complaints/{complaint_id}/callback", response_model=CallbackView)
    async def get_callback(complaint_id: UUID) -> CallbackView:
        callback = found(
            await asyncio.to_thread(store.get_callback, callback_id_for(complaint_id)),
            f"callback for complaint {complaint_id}",
        )
        return CallbackView(
            callback_id=callback.id,
            complaint_id=callback.complaint_id,
            due_at=callback.due_at,
            attempt=callback.attempt,
            status=callback.status,
        )

    return api
