"""Escalation's HTTP API: read a case."""

from __future__ import annotations

import asyncio
from uuid import UUID

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel

from services.escalation.application import EscalationApplication
from shared.service import found


class CaseView(BaseModel):
    complaint_id: UUID
    complaint_occurred_at: AwareDatetime
    opened_at: AwareDatetime
    policy_version: str
    tier: str | None


def router(store: EscalationApplication) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/cases/{complaint_id}", response_model=CaseView)
    async def get_case(complaint_id: UUID) -> CaseView:
        case = found(
            await asyncio.to_thread(store.get_case, complaint_id), f"case for complaint {complaint_id}"
        )
        return CaseView(
            complaint_id=case.id,
            complaint_occurred_at=case.complaint_occurred_at,
            opened_at=case.opened_at,
            policy_version=case.policy_version,
            tier=case.tier,
        )

    return api
