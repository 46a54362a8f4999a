"""Intake's HTTP API: register a complaint, read it back."""

# Without `from __future__ import annotations`: FastAPI reads these signatures' dependencies, which
# refer to objects local to router().
import asyncio
from typing import Annotated, Self
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.intake.application import Erased, IdempotencyConflict, IntakeApplication, NotAnonymous
from services.intake.domain import Complaint, Registration, RegistrationError
from services.intake.limits import MAX_SUMMARY
from shared.auth import ALL_ROLES, WRITERS, ActionBody, Authenticator, Caller, Person, Refused, refuse
from shared.directory import Directory
from shared.events import Channel, Language, Tier
from shared.live_file import LiveFile
from shared.privacy import PatientData, Unreadable, unseal_patient_data
from shared.reference import reference_of
from shared.service import complaint_id_in_path, found
from shared.timers import now


class Complainant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, max_length=200, description="The patient's or family's name.")
    contact: str | None = Field(
        default=None, max_length=200, description="Phone number or e-mail address for the receipt."
    )


class ComplaintRequest(ActionBody):
    """The first hearer is the person signed in, or the inbox owner of the channel's API key."""

    channel: Channel = Field(description="How the complaint reached the hospital.")
    occurred_at: AwareDatetime = Field(description="When it occurred, ISO 8601 with a UTC offset.")
    department: str = Field(min_length=1, max_length=200, description="Department concerned.")
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY, description="The facts, no judgement.")
    complainant: Complainant | None = Field(default=None, description="Who complained, if known.")
    category: str | None = Field(
        default=None, min_length=1, max_length=100, description="The hospital's category, e.g. 'medication'."
    )
    tier: Tier | None = Field(default=None, description="minor, complex or major, if already known.")
    language: Language | None = Field(default=None, description="The complainant's language.")
    anonymous: bool = Field(
        default=False,
        description="A staff report (channel staff_report) whose reporter is sealed: the patient-safety "
        "officer receives it as first hearer, and alone can open who reported it, each time on the record.",
    )

    @model_validator(mode="after")
    def _only_staff_reports_are_anonymous(self) -> Self:
        if self.anonymous and self.channel != "staff_report":
            raise ValueError("anonymous: only a staff report (channel staff_report) can be anonymous")
        return self

    def registration(self, heard_by: str, default_language: str, reporter: str | None = None) -> Registration:
        """What is registered, whichever door the request came through (HTTP, the bus)."""
        complainant = self.complainant or Complainant()
        return Registration(
            channel=self.channel,
            occurred_at=self.occurred_at,
            heard_by=heard_by,
            reporter=reporter,
            department=self.department,
            summary=self.summary,
            complainant_name=complainant.name,
            complainant_contact=complainant.contact,
            category=self.category,
            tier=self.tier,
            language=self.language or default_language,
        )


class ReporterOpening(ActionBody):
    reason: str = Field(min_length=1, max_length=500, description="Why the reporter's identity is needed.")


class Reporter(BaseModel):
    complaint_id: UUID
    reporter: str = Field(description="Staff id of who made the anonymous report.")
    opened_by: str


class ComplaintCreated(BaseModel):
    complaint_id: UUID
    reference: str = Field(description="What the complainant quotes: every API takes it for the id.")


class ComplaintView(BaseModel):
    complaint_id: UUID
    channel: str
    occurred_at: AwareDatetime
    registered_at: AwareDatetime
    heard_by: str
    department: str
    tier: str | None
    language: str
    anonymous: bool = Field(description="An anonymous staff report: heard_by is who received it.")
    summary: str | None = Field(description="The facts as registered; null once erased.")
    complainant: Complainant | None = Field(description="Null once erased, or when not given.")
    erased_by: str | None = Field(description="Who erased the patient data, if it was erased.")
    further_messages: list[str] | None = Field(
        description="Later chat messages from the complainant, oldest first; null once erased."
    )
    possible_duplicate_of: UUID | None = Field(
        description="An earlier complaint from the same contact with a similar text; a person decides."
    )


def complaint_view(complaint: Complaint, store: IntakeApplication) -> ComplaintView:
    patient: PatientData | None = None
    further: list[str] | None = None
    if not complaint.erased:
        try:
            data_key = store.keys.data_key(complaint.id)
            patient = unseal_patient_data(data_key, complaint.id, complaint.patient_data)
            further = [
                unseal_patient_data(data_key, complaint.id, sealed).summary
                for sealed in complaint.further_messages
            ]
        except Unreadable:
            patient = None
    return ComplaintView(
        complaint_id=complaint.id,
        channel=complaint.channel,
        occurred_at=complaint.occurred_at,
        registered_at=complaint.created_on,
        heard_by=complaint.heard_by,
        department=complaint.department,
        tier=complaint.tier,
        language=complaint.language,
        anonymous=complaint.reporter_sealed is not None,
        summary=patient.summary if patient else None,
        complainant=Complainant(name=patient.name, contact=patient.contact)
        if patient and (patient.name or patient.contact)
        else None,
        erased_by=complaint.erased_by,
        further_messages=further,
        possible_duplicate_of=complaint.possible_duplicate_of,
    )


def first_hearer(http: Request, caller: Caller, channel: Channel) -> str:
    """The person who registers it, or for a machine channel the owner of its inbox."""
    if caller.person is not None:
        return caller.person.staff_id
    assert caller.client is not None
    client = caller.client
    if channel not in client.channels:
        allowed = ", ".join(client.channels)
        reason = f"the API key of {client.name} may post complaints for {allowed}, not {channel}"
        raise Refused(http, status.HTTP_403_FORBIDDEN, reason, f"API key of {client.name}")
    return client.heard_by


def router(
    store: IntakeApplication,
    default_language: str,
    auth: Authenticator,
    directory: LiveFile[Directory],
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    ComplaintId = Annotated[UUID, Depends(complaint_id_in_path(store, auth))]

    @api.post("/complaints", status_code=status.HTTP_201_CREATED, response_model=ComplaintCreated)
    async def register_complaint(
        http: Request,
        request: ComplaintRequest,
        response: Response,
        caller: Annotated[Caller, Depends(auth.person_or_client(*WRITERS))],
        idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
    ) -> ComplaintCreated:
        heard_by, reporter = first_hearer(http, caller, request.channel), None
        if request.anonymous:
            if caller.person is None:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, detail="only staff, signed in, report anonymously"
                )
            heard_by, reporter = directory.current.patient_safety_officer(), caller.person.staff_id
        registration = request.registration(heard_by, default_language, reporter)
        try:
            complaint_id, created = await asyncio.to_thread(
                store.register, registration, idempotency_key, now()
            )
        except RegistrationError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from None
        except (IdempotencyConflict, Erased) as error:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return ComplaintCreated(complaint_id=complaint_id, reference=reference_of(complaint_id))

    @api.get("/complaints/{complaint_id}", response_model=ComplaintView)
    async def get_complaint(
        http: Request,
        complaint_id: ComplaintId,
        person: Annotated[Person, Depends(auth.requires(*ALL_ROLES))],
    ) -> ComplaintView:
        """For the first hearer, their department and the people above them; overseers see every one."""
        complaint = found(
            await asyncio.to_thread(store.get_complaint, complaint_id), f"complaint {complaint_id}"
        )
        if not person.concerned_with(complaint.heard_by, complaint.department, directory.current):
            raise refuse(http, person, f"complaint {complaint_id} is outside your department and chain")
        return complaint_view(complaint, store)

    @api.post("/complaints/{complaint_id}/reporter", response_model=Reporter)
    async def open_reporter(
        complaint_id: ComplaintId,
        body: ReporterOpening,
        person: Annotated[Person, Depends(auth.requires("patient_safety_officer"))],
    ) -> Reporter:
        """Who made an anonymous staff report. The opening is recorded before the answer is given."""
        try:
            reporter = await asyncio.to_thread(
                store.open_reporter, complaint_id, person.staff_id, body.reason, now()
            )
        except NotAnonymous as error:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
        return Reporter(
            complaint_id=complaint_id,
            reporter=found(reporter, f"complaint {complaint_id}"),
            opened_by=person.staff_id,
        )

    @api.post("/complaints/{complaint_id}/erase", response_model=ComplaintView)
    async def erase(
        complaint_id: ComplaintId, person: Annotated[Person, Depends(auth.requires("administrator"))]
    ) -> ComplaintView:
        """Destroy the complaint's key: its patient data becomes unreadable everywhere; the record stays
        whole and verifiable."""
        complaint = found(
            await asyncio.to_thread(store.erase, complaint_id, person.staff_id, now()),
            f"complaint {complaint_id}",
        )
        return complaint_view(complaint, store)

    return api
