"""What the case view shows of learning from the case: its coding, notices and safety-event links."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from services.escalation.domain import Case
from shared.policy import HcatPolicy
from shared.reference import reference_of


class CodingView(BaseModel):
    coded_by: str
    severities: dict[str, int]
    harm: int
    stage: str
    at: AwareDatetime


class DepartmentAnswerView(BaseModel):
    department: str
    responsible: str
    status: str = Field(description="open, read, overdue, action_complete or not_applicable.")
    read_by: str | None
    answered_by: str | None
    reason: str | None
    alerts_sent: int
    history: list[str]


class NoticeView(BaseModel):
    notice_id: UUID
    issued_by: str
    issued_at: AwareDatetime
    due_at: AwareDatetime
    categories: list[str]
    departments: list[DepartmentAnswerView]


class SafetyEventView(BaseModel):
    adverse_event_id: UUID
    reference: str


class LearningView(BaseModel):
    category: str | None = Field(description="The hospital's own category, as given at intake.")
    suggested_hcat_category: str | None = Field(
        description="The HCAT category the policy's [hcat.map] suggests for it; the coder decides."
    )
    coding: CodingView | None = Field(
        description="The latest HCAT coding that is not blind; blind codings are never shown here."
    )
    learning_notices: list[NoticeView]
    safety_events: list[SafetyEventView] = Field(description="Adverse-event reports it is linked to.")


def learning_fields(case: Case, hcat: HcatPolicy, moment: datetime) -> dict[str, Any]:
    coding = case.coding
    return {
        "category": case.category,
        "suggested_hcat_category": hcat.suggestion(case.category),
        "coding": None
        if coding is None
        else CodingView(
            coded_by=coding.coded_by,
            severities=coding.severities,
            harm=coding.harm,
            stage=coding.stage,
            at=coding.at,
        ),
        "learning_notices": [
            NoticeView(
                notice_id=notice.notice_id,
                issued_by=notice.issued_by,
                issued_at=notice.issued_at,
                due_at=notice.due_at,
                categories=list(notice.categories),
                departments=[
                    DepartmentAnswerView(
                        department=part.department,
                        responsible=part.responsible,
                        status=part.status(moment),
                        read_by=part.acknowledged_by,
                        answered_by=part.answered_by,
                        reason=part.reason,
                        alerts_sent=part.alerts_sent,
                        history=part.history,
                    )
                    for part in notice.departments.values()
                ],
            )
            for notice in case.notices.values()
        ],
        "safety_events": [
            SafetyEventView(adverse_event_id=report, reference=reference_of(report))
            for report in case.safety_events
        ],
    }
