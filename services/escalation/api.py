"""Escalation's HTTP API: read a case; the actions of the people who owe its duties."""

# Without `from __future__ import annotations`: FastAPI reads these signatures' dependencies, which
# refer to objects local to router().
import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import AwareDatetime, BaseModel, Field

from services.escalation.application import EscalationApplication
from services.escalation.domain import Case
from services.escalation.learning_views import LearningView, learning_fields
from shared.auth import ALL_ROLES, WRITERS, ActionBody, Authenticator, Person, refuse
from shared.case_rules import JUDGES, OWNERS
from shared.directory import Directory
from shared.entered import TimeRefused
from shared.events import DutyKind
from shared.live_file import LiveFile
from shared.policy import HcatPolicy, Policy
from shared.privacy import KeyVault
from shared.reference import reference_of
from shared.service import applied, complaint_id_in_path, found
from shared.timers import now

Result = TypeVar("Result")
StaffId = Annotated[str, Field(min_length=1, max_length=100)]


class Report(ActionBody):
    to: StaffId = Field(description="Staff id of the executive reported to.")
    text: str = Field(min_length=1, max_length=2000, description="One line is enough.")


class FirstResponse(ActionBody):
    at: AwareDatetime | None = Field(
        default=None,
        description="When the call was made; now if not given. Not in the future, not before the complaint "
        "occurred, at most the policy's [recording] first_response_within_seconds ago.",
    )
    patient_reached: bool
    notes: str = Field(default="", max_length=4000)


class HarassmentAssessment(ActionBody):
    demand_valid: bool = Field(description="Is the demand itself valid?")
    means_appropriate: bool = Field(description="Are the means socially appropriate?")
    impact_on_staff: bool = Field(description="Does it harm the staff's working environment?")


class CorrectiveMeasure(ActionBody):
    measure: str = Field(min_length=1, max_length=4000)
    responsible: StaffId = Field(description="Staff id of the person responsible for the measure.")


class DutyView(BaseModel):
    duty: str
    owner: str
    due_at: AwareDatetime
    status: str
    acknowledged_by: str | None
    fulfilled_by: str | None
    alerts_sent: int
    history: list[str]


class CaseView(LearningView):
    complaint_id: UUID
    reference: str
    complaint_occurred_at: AwareDatetime
    registered_at: AwareDatetime
    opened_at: AwareDatetime
    policy_version: str
    tier: str
    tier_reason: str
    duties: list[DutyView]
    reports: list[str]
    harassment: str | None
    protected_staff: str | None
    corrective_measure: str | None
    closed_at: AwareDatetime | None
    reopened: list[str]


def case_view(case: Case, hcat: HcatPolicy) -> CaseView:
    moment = now()
    return CaseView(
        complaint_id=case.id,
        reference=reference_of(case.id),
        complaint_occurred_at=case.complaint_occurred_at,
        registered_at=case.registered_at,
        opened_at=case.opened_at,
        policy_version=case.policy_version,
        tier=case.tier,
        tier_reason=case.tier_reason,
        duties=[
            DutyView(
                duty=duty.kind,
                owner=duty.owner,
                due_at=duty.due_at,
                status=duty.status(moment),
                acknowledged_by=duty.acknowledged_by,
                fulfilled_by=duty.fulfilled_by,
                alerts_sent=duty.alerts_sent,
                history=duty.history,
            )
            for duty in case.duties.values()
        ],
        reports=case.reports,
        harassment=case.harassment,
        protected_staff=case.protected_staff,
        corrective_measure=case.corrective_measure,
        closed_at=case.closed_at,
        reopened=case.reopened,
        **learning_fields(case, hcat, moment),
    )


async def acted_on(
    store: EscalationApplication,
    hcat: HcatPolicy,
    http: Request,
    person: Person,
    complaint_id: UUID,
    action: Callable[[Case], object],
) -> CaseView:
    """A person's action on a case, applied in the store; answers with the case as it is now."""

    def apply(case: Case) -> Case:
        action(case)
        return case

    what = f"case for complaint {complaint_id}"
    case = await applied(http, person, lambda: store.act(complaint_id, apply), what)
    return case_view(case, hcat)


def router(
    store: EscalationApplication,
    directory: LiveFile[Directory],
    auth: Authenticator,
    vault: KeyVault,
    policy: Policy,
) -> APIRouter:
    api = APIRouter(prefix="/v1/cases")
    ComplaintId = Annotated[UUID, Depends(complaint_id_in_path(store, auth))]
    reader = Annotated[Person, Depends(auth.requires(*ALL_ROLES))]
    writer = Annotated[Person, Depends(auth.requires(*WRITERS))]
    judge = Annotated[Person, Depends(auth.requires(*JUDGES))]
    owner = Annotated[Person, Depends(auth.requires(*OWNERS))]
    call_window = timedelta(seconds=policy.recording.first_response_within_seconds)

    async def act(
        http: Request, person: Person, complaint_id: UUID, action: Callable[[Case], object]
    ) -> CaseView:
        return await acted_on(store, policy.hcat, http, person, complaint_id, action)

    @api.get("/{complaint_id}", response_model=CaseView)
    async def get_case(http: Request, complaint_id: ComplaintId, person: reader) -> CaseView:
        """For the people of the case and its chains, and whoever answers for a department one of its
        learning notices went to; overseers see every case."""
        case = found(
            await asyncio.to_thread(store.get_case, complaint_id), f"case for complaint {complaint_id}"
        )
        if not (person.oversees or person.staff_id in case.people() | case.notice_people()):
            raise refuse(http, person, f"{person.staff_id} is not among the people of this case")
        return case_view(case, policy.hcat)

    @api.post("/{complaint_id}/duties/{duty}/acknowledge", response_model=CaseView)
    async def acknowledge(
        http: Request, complaint_id: ComplaintId, duty: Annotated[DutyKind, Path()], person: writer
    ) -> CaseView:
        """Answer an alert: the chase for the duty stops. For the supervisor's alert this is the duty done."""
        return await act(
            http, person, complaint_id, lambda case: case.acknowledge(duty, person.staff_id, now())
        )

    @api.post("/{complaint_id}/reports", response_model=CaseView)
    async def file_report(http: Request, complaint_id: ComplaintId, body: Report, person: writer) -> CaseView:
        """A short report to an executive, on the track of the person who files it."""
        return await act(
            http,
            person,
            complaint_id,
            lambda case: case.file_report(person.staff_id, body.to, body.text, now(), directory.current),
        )

    @api.post("/{complaint_id}/first-response", response_model=CaseView)
    async def first_response(
        http: Request, complaint_id: ComplaintId, body: FirstResponse, person: writer
    ) -> CaseView:
        """The apology call and fact-check, reached or not; a time out of bounds is 422, recording nothing."""
        moment = now()
        at = body.at or moment
        notes = await vault.seal_text(complaint_id, "first-response-notes", body.notes)  # kept sealed

        def call(case: Case) -> None:
            case.check_call_time(person.staff_id, at, moment, call_window)
            case.record_first_response(person.staff_id, at, body.patient_reached, notes)

        try:
            return await act(http, person, complaint_id, call)
        except TimeRefused as refused:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(refused)) from None

    @api.post("/{complaint_id}/patient-feedback", response_model=CaseView)
    async def patient_feedback(http: Request, complaint_id: ComplaintId, person: writer) -> CaseView:
        """The result was fed back to the patient."""
        return await act(http, person, complaint_id, lambda case: case.give_feedback(person.staff_id, now()))

    @api.post("/{complaint_id}/harassment-assessment", response_model=CaseView)
    async def harassment_assessment(
        http: Request, complaint_id: ComplaintId, body: HarassmentAssessment, person: judge
    ) -> CaseView:
        """Judged on three criteria; harassment hands the case to a second-line responder."""
        return await act(
            http,
            person,
            complaint_id,
            lambda case: case.assess_harassment(
                person.staff_id,
                body.demand_valid,
                body.means_appropriate,
                body.impact_on_staff,
                now(),
                directory.current,
            ),
        )

    @api.post("/{complaint_id}/corrective-measure", response_model=CaseView)
    async def corrective_measure(
        http: Request, complaint_id: ComplaintId, body: CorrectiveMeasure, person: owner
    ) -> CaseView:
        return await act(
            http,
            person,
            complaint_id,
            lambda case: case.record_corrective_measure(
                person.staff_id, body.measure, body.responsible, now()
            ),
        )

    @api.post("/{complaint_id}/close", response_model=CaseView)
    async def close(http: Request, complaint_id: ComplaintId, person: owner) -> CaseView:
        """Refused with 409 and the open duties while any duty is open."""
        return await act(http, person, complaint_id, lambda case: case.close(person.staff_id, now()))

    return api
