"""The staff directory: who works where, who reports to whom, how to reach them. Data, not code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.events import Language
from shared.live_file import LiveFile

Role = Literal[
    "front_line", "supervisor", "executive", "handler", "second_line", "callback_staff", "quality", "auditor",
    "administrator", "patient_safety_officer",
]  # fmt: skip


class StaffMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)
    department: str = Field(min_length=1)
    supervisor: str | None = Field(default=None, description="Staff id of the person they report to.")
    deputies: list[str] = Field(default_factory=list, description="Who stands in for them, in order.")
    contacts: dict[str, str] = Field(
        default_factory=dict, description="Channel name to address, in preference order."
    )
    language: Language = "ja"


class Department(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    handler: str = Field(description="Staff id who makes the apology call and owns the response.")


class Directory(BaseModel):
    """Staff by id, departments by name, and the duty manager who takes what no one else can."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duty_manager: str = Field(description="Owner of a duty whose natural owner is unknown.")
    executives: list[str] = Field(min_length=1, description="Who receives reports, in order of precedence.")
    staff: dict[str, StaffMember]
    departments: dict[str, Department] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> Directory:
        named = [self.duty_manager, *self.executives]
        named += [member.supervisor for member in self.staff.values() if member.supervisor]
        named += [deputy for member in self.staff.values() for deputy in member.deputies]
        named += [department.handler for department in self.departments.values()]
        unknown = sorted({staff_id for staff_id in named if staff_id not in self.staff})
        if unknown:
            raise ValueError(
                f"these staff ids are referred to but not in the directory: {', '.join(unknown)}"
            )
        return self

    def supervisor_of(self, staff_id: str) -> str:
        member = self.staff.get(staff_id)
        return member.supervisor if member is not None and member.supervisor else self.duty_manager

    def handler_for(self, department: str, first_hearer: str) -> str:
        if department in self.departments:
            return self.departments[department].handler
        return self.supervisor_of(first_hearer)

    def first_with(self, role: Role) -> str:
        """The first member of staff with the role, else the duty manager."""
        return next(
            (staff_id for staff_id, member in self.staff.items() if role in member.roles), self.duty_manager
        )

    def second_line_responder(self) -> str:
        """Who takes over harassment cases."""
        return self.first_with("second_line")

    def patient_safety_officer(self) -> str:
        """Who receives anonymous staff reports, as their first hearer."""
        return self.first_with("patient_safety_officer")

    def callback_staff_for(self, complaint_id: UUID) -> str:
        """Who makes a complaint's callbacks: callback staff in turn by complaint, else the duty manager."""
        staff = sorted(
            staff_id for staff_id, member in self.staff.items() if "callback_staff" in member.roles
        )
        return staff[complaint_id.int % len(staff)] if staff else self.duty_manager

    def chain_above(self, staff_id: str) -> list[str]:
        """Who is alerted, in turn, when this person does not answer: deputies, then up the line."""
        chain: list[str] = []
        current = staff_id
        while True:
            member = self.staff.get(current)
            if member is None:
                break
            chain += [deputy for deputy in member.deputies if deputy not in chain]
            if member.supervisor is None or member.supervisor in chain or member.supervisor == staff_id:
                break
            chain.append(member.supervisor)
            current = member.supervisor
        for fallback in (self.duty_manager, *self.executives):
            if fallback not in chain and fallback != staff_id:
                chain.append(fallback)
        return chain


class DirectoryError(ValueError):
    """The directory file is missing or does not hold a valid directory."""


def load_directory(path: Path) -> Directory:
    try:
        return Directory.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DirectoryError(f"staff directory not found: {path}") from None
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise DirectoryError(f"staff directory {path} is not valid: {error}") from None


def watch_directory(path: Path) -> LiveFile[Directory]:
    """The directory as the services use it: read again when its file changes, so that a change of
    staff takes effect within seconds (at the next request, the next case) without a restart."""
    return LiveFile(path, load_directory)
