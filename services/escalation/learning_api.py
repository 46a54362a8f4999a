"""Escalation's HTTP API for learning from a case: HCAT coding, learning notices and their answers,
links to adverse-event reports. Each action by the person signed in, answered with the case."""

# Without `from __future__ import annotations`: FastAPI reads these signatures' dependencies, which
# refer to objects local to router().
from collections.abc import Callable
from typing import Annotated, Self
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import Field, model_validator

from services.escalation.api import CaseView, acted_on, case_view
from services.escalation.application import EscalationApplication
from services.escalation.domain import Case
from services.escalation.notices import UnknownDepartment, answerers
from shared.auth import WRITERS, ActionBody, Authenticator, Person
from shared.calendar import window_end
from shared.directory import Directory, Role
from shared.events import CareStage, HcatCategory, NoticeAnswer
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.reference import AmbiguousReference, NotAComplaintId, UnknownReference, resolve
from shared.service import applied, complaint_id_in_path
from shared.timers import now

# Who codes: a handler of the case, or the quality officer (any case).
CODERS: tuple[Role, ...] = ("handler", "quality")
# Who issues a case's corrective measure as a learning notice: whoever may record the measure (within
# the case), or the quality officer (any case).
ISSUERS: tuple[Role, ...] = ("supervisor", "executive", "handler", "second_line", "quality")
# Who links a complaint to an adverse-event report: the same, and the patient-safety officer.
LINKERS: tuple[Role, ...] = (*ISSUERS, "patient_safety_officer")
# Who may do these on any case, not only one they are among the people of.
ANYWHERE: tuple[Role, ...] = ("quality", "patient_safety_officer")

Severity = Annotated[int, Field(ge=0, le=3)]


class Coding(ActionBody):
    severities: dict[HcatCategory, Severity] = Field(
        description="Severity per HCAT category: 0 not present, 1 low, 2 medium, 3 high; a category left "
        "out is not present."
    )
    harm: int = Field(
        ge=0, le=5, description="0 none, 1 minimal, 2 minor, 3 moderate, 4 major, 5 catastrophic."
    )
    stage: CareStage = Field(description="The stage of care the complaint concerns.")
    blind: bool = Field(default=False, description="A second coder's blind coding, for agreement.")


class NoticeIssue(ActionBody):
    departments: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=50, description="Departments of the staff directory that must answer."
    )
    categories: list[HcatCategory] | None = Field(
        default=None,
        description="What the notice is about; by default the categories of the case's coding.",
    )


class NoticeRead(ActionBody):
    department: str = Field(min_length=1, max_length=200, description="The department read for.")


class NoticeAnswerBody(NoticeRead):
    answer: NoticeAnswer
    reason: str | None = Field(
        default=None, max_length=2000, description="Why the notice does not apply: required then."
    )

    @model_validator(mode="after")
    def _reason_when_not_applicable(self) -> Self:
        if self.answer == "not_applicable" and not self.reason:
            raise ValueError("reason: a notice that does not apply needs the reason why")
        return self


class SafetyEventLink(ActionBody):
    adverse_event: str = Field(
        min_length=1, max_length=100, description="The adverse-event report's complaint id or reference."
    )


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=message)


def router(
    store: EscalationApplication,
    directory: LiveFile[Directory],
    auth: Authenticator,
    policy: Policy,
) -> APIRouter:
    api = APIRouter(prefix="/v1/cases")
    ComplaintId = Annotated[UUID, Depends(complaint_id_in_path(store, auth))]
    coder = Annotated[Person, Depends(auth.requires(*CODERS))]
    issuer = Annotated[Person, Depends(auth.requires(*ISSUERS))]
    writer = Annotated[Person, Depends(auth.requires(*WRITERS))]
    linker = Annotated[Person, Depends(auth.requires(*LINKERS))]

    async def act(
        http: Request, person: Person, complaint_id: UUID, action: Callable[[Case], object]
    ) -> CaseView:
        return await acted_on(store, policy.hcat, http, person, complaint_id, action)

    @api.post("/{complaint_id}/coding", response_model=CaseView)
    async def code(http: Request, complaint_id: ComplaintId, body: Coding, person: coder) -> CaseView:
        """Code the case with HCAT; coding again is a new coding, the old one stays on the record."""
        anywhere = person.has_any(ANYWHERE)
        return await act(
            http,
            person,
            complaint_id,
            lambda case: case.code(
                person.staff_id, anywhere, body.severities, body.harm, body.stage, body.blind, now()
            ),
        )

    @api.post("/{complaint_id}/learning-notices", response_model=CaseView)
    async def issue_notice(
        http: Request, complaint_id: ComplaintId, body: NoticeIssue, person: issuer
    ) -> CaseView:
        """Issue the case's corrective measure to departments, each answering within the policy's window."""
        try:
            recipients = answerers(body.departments, directory.current)
        except UnknownDepartment as unknown:
            raise unprocessable(f"departments: {unknown}") from None
        notice_id, moment, anywhere = uuid4(), now(), person.has_any(ANYWHERE)

        def issue(case: Case) -> None:
            coded = case.coding.present if case.coding is not None else []
            categories = body.categories if body.categories is not None else coded
            due = window_end(policy.escalation.learning_notices, moment, case.calendar)
            case.issue_notice(notice_id, person.staff_id, anywhere, recipients, categories, due, moment)

        what = f"case for complaint {complaint_id}"
        case = await applied(http, person, lambda: store.issue_notice(complaint_id, notice_id, issue), what)
        return case_view(case, policy.hcat)

    @api.post("/{complaint_id}/learning-notices/{notice_id}/read", response_model=CaseView)
    async def read_notice(
        http: Request, complaint_id: ComplaintId, notice_id: UUID, body: NoticeRead, person: writer
    ) -> CaseView:
        """The department's responsible person (or someone in their chain) read it: the chase stops."""
        return await act(
            http,
            person,
            complaint_id,
            lambda case: case.read_notice(notice_id, body.department, person.staff_id, now()),
        )

    @api.post("/{complaint_id}/learning-notices/{notice_id}/answer", response_model=CaseView)
    async def answer_notice(
        http: Request, complaint_id: ComplaintId, notice_id: UUID, body: NoticeAnswerBody, person: writer
    ) -> CaseView:
        """Action complete, or not applicable with the reason why; once per department."""
        return await act(
            http,
            person,
            complaint_id,
            lambda case: case.answer_notice(
                notice_id, body.department, person.staff_id, body.answer, body.reason, now()
            ),
        )

    @api.post("/{complaint_id}/safety-event", response_model=CaseView)
    async def link_safety_event(
        http: Request, complaint_id: ComplaintId, body: SafetyEventLink, person: linker
    ) -> CaseView:
        """Link the complaint to an adverse-event report (a staff report registered through intake). Who
        may link is checked first, so that someone outside the case learns nothing of any report."""
        anywhere = person.has_any(ANYWHERE)

        def link(case: Case) -> None:
            case.check_may_link(person.staff_id, anywhere)
            report_id = resolve(store, body.adverse_event)
            report = store.get_case(report_id)
            if report is None:
                raise UnknownReference(f"no report {body.adverse_event} is known to escalation")
            case.link_safety_event(person.staff_id, anywhere, report_id, report.channel, now())

        try:
            return await act(http, person, complaint_id, link)
        except (NotAComplaintId, UnknownReference, AmbiguousReference) as error:
            raise unprocessable(f"adverse_event: {error}") from None

    return api
