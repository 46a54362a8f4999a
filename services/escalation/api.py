"""Escalation's HTTP API: read a case."""

from __future__ import annotations

import asyncio
from uuid import UUID

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel

from services.escalation.application import EscalationApplication
from shared.service import found
from shared.timers import now


class DutyView(BaseModel):
    duty: str
    owner: str
    due_at: AwareDatetime
    status: str


class CaseView(BaseModel):
    complaint_id: UUID
    complaint_occurred_at: AwareDatetime
    registered_at: AwareDatetime
    opened_at: AwareDatetime
    policy_version: str
    tier: str
    tier_reason: str
    duties: list[DutyView]


def router(store: EscalationApplication) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/cases/{complaint_id}", response_model=CaseView)
    async def get_case(complaint_id: UUID) -> CaseView:
        moment = now()
        case = found(
            await asyncio.to_thread(store.get_case, complaint_id), f"case for complaint {complaint_id}"
        )
        return CaseView(
            complaint_id=case.id,
            complaint_occurred_at=case.complaint_occurred_at,
            registered_at=case.registered_at,
            opened_at=case.opened_at,
            policy_version=case.policy_version,
            tier=case.tier,
            tier_reason=case.tier_reason,
            duties=[
                DutyView(duty=duty.kind, owner=duty.owner, due_at=duty.due_at, status=duty.status(moment))
                for duty in case.duties.values()
            ],
        )

    return api
