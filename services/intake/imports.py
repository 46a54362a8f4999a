"""Intake's bulk import: call-centre logs and survey results, row by row, each row at most once."""

# Without `from __future__ import annotations`: FastAPI reads these signatures.
import asyncio
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.intake.api import first_hearer
from services.intake.application import IntakeApplication
from services.intake.domain import Registration
from services.intake.limits import MAX_CATEGORY, MAX_FIELD, MAX_SUMMARY
from shared.auth import WRITERS, ActionBody, Authenticator, Caller
from shared.events import Channel, Language, Tier
from shared.timers import now

MAX_ROWS = 500


class ImportRow(BaseModel):
    """The columns of a file to import; a blank cell is as good as a missing one."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    occurred_at: AwareDatetime
    department: str = Field(min_length=1, max_length=MAX_FIELD)
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    complainant_name: str | None = Field(default=None, max_length=MAX_FIELD)
    complainant_contact: str | None = Field(default=None, max_length=MAX_FIELD)
    category: str | None = Field(default=None, max_length=MAX_CATEGORY)
    tier: Tier | None = None
    language: Language | None = None


class Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int = Field(ge=1, description="Its line in the file, for the report.")
    values: dict[str, str] = Field(description="Column name to the cell's text, as in the file.")


class ImportBatch(ActionBody):
    """Rows of one file; each row is known by the file's digest and its line, so a second import of the
    same file creates nothing new."""

    channel: Channel = Field(description="How these complaints reached the hospital, e.g. phone or survey.")
    file_digest: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the whole file, in hex.")
    rows: list[Row] = Field(min_length=1, max_length=MAX_ROWS)

    @field_validator("channel")
    @classmethod
    def _not_a_staff_report(cls, channel: Channel) -> Channel:
        if channel == "staff_report":
            raise ValueError("staff reports are made by their reporter, not imported")
        return channel


class RowResult(BaseModel):
    line: int
    outcome: Literal["registered", "appended", "rejected"]
    new: bool = Field(description="False when this row was imported before: nothing changed.")
    complaint_id: UUID | None
    reason: str | None = Field(description="Why the row was rejected.")


def why_invalid(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'row'}: "
        + ("is required" if problem["type"] == "missing" else problem["msg"])
        for problem in error.errors()
    )


def import_row(
    store: IntakeApplication, batch: ImportBatch, row: Row, heard_by: str, default_language: str
) -> RowResult:
    ref = f"import:{batch.file_digest}:{row.line}"
    try:
        fields = ImportRow.model_validate(
            {name: value for name, value in row.values.items() if value.strip()}
        )
    except ValidationError as error:
        receipt = store.refuse_message(batch.channel, ref, why_invalid(error), now())
    else:
        registration = Registration(
            channel=batch.channel,
            occurred_at=fields.occurred_at,
            heard_by=heard_by,
            department=fields.department,
            summary=fields.summary,
            complainant_name=fields.complainant_name,
            complainant_contact=fields.complainant_contact,
            category=fields.category,
            tier=fields.tier,
            language=fields.language or default_language,
        )
        receipt = store.receive(ref, registration, now())
    return RowResult(
        line=row.line,
        outcome=receipt.outcome,
        new=receipt.new,
        complaint_id=receipt.complaint_id,
        reason=receipt.reason,
    )


def router(store: IntakeApplication, default_language: str, auth: Authenticator) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.post("/imports", response_model=list[RowResult])
    async def import_rows(
        http: Request, batch: ImportBatch, caller: Annotated[Caller, Depends(auth.person_or_client(*WRITERS))]
    ) -> list[RowResult]:
        """Each row registered, or rejected with its reason, on the record; the importer is first hearer."""
        heard_by = first_hearer(http, caller, batch.channel)
        results = []
        for row in batch.rows:
            result = await asyncio.to_thread(import_row, store, batch, row, heard_by, default_language)
            results.append(result)
        return results

    return api
