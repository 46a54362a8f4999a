"""Followup's HTTP API: the callback staff's work list, their calls and the patients' answers."""

# Without `from __future__ import annotations`: FastAPI reads these signatures' dependencies, which
# refer to objects local to router().
import asyncio
from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, Field

from services.followup.application import FollowupApplication
from services.followup.domain import Callback, CallbackStatus
from shared.auth import OVERSEERS, WRITERS, ActionBody, Authenticator, Person
from shared.directory import Directory, Role
from shared.events import CallbackPurpose
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.service import ServiceRuntime, applied, complaint_id_in_path, found
from shared.timers import now

# Who sees callbacks: the callback staff, the people who own responses, and the overseers.
CALLBACK_READERS: tuple[Role, ...] = ("callback_staff", "handler", "supervisor", "second_line", *OVERSEERS)


class Discharge(ActionBody):
    discharged_at: AwareDatetime = Field(description="When the patient was discharged.")


class NotReached(ActionBody):
    notes: str = Field(default="", max_length=4000)


class Outcome(ActionBody):
    satisfaction: int = Field(ge=1, le=5, description="The patient's satisfaction, 1 (worst) to 5.")
    resolved: bool = Field(description="Whether the problem is resolved, in the patient's words.")
    comments: str = Field(default="", max_length=4000, description="What the patient said.")


class CallbackView(BaseModel):
    callback_id: UUID
    complaint_id: UUID
    purpose: CallbackPurpose
    assignee: str
    due_at: AwareDatetime
    complete_by: AwareDatetime
    attempt: int
    status: CallbackStatus
    outcome: str | None
    comments: str | None = Field(description="What the patient said; null once the complaint is erased.")
    history: list[str]


COMMENTS = "callback-comments"
NOTES = "callback-notes"


async def callback_view(callback: Callback, vault: KeyVault) -> CallbackView:
    """The patient's words are kept sealed with the complaint's key and opened for the view."""
    return CallbackView(
        callback_id=callback.id,
        complaint_id=callback.complaint_id,
        purpose=callback.purpose,
        assignee=callback.assignee,
        due_at=callback.due_at,
        complete_by=callback.complete_by,
        attempt=callback.attempt,
        status=callback.status,
        outcome=callback.outcome,
        comments=await vault.open_text(callback.complaint_id, COMMENTS, callback.comments),
        history=callback.history,
    )


def router(
    store: FollowupApplication,
    runtime: ServiceRuntime,
    policy: Policy,
    directory: LiveFile[Directory],
    auth: Authenticator,
    vault: KeyVault,
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    ComplaintId = Annotated[UUID, Depends(complaint_id_in_path(store, auth))]
    reader = Annotated[Person, Depends(auth.requires(*CALLBACK_READERS))]
    writer = Annotated[Person, Depends(auth.requires(*WRITERS))]

    async def act(
        http: Request, person: Person, callback_id: UUID, action: Callable[[Callback], object]
    ) -> CallbackView:
        """Apply the action, answer with the callback as it is now."""

        def apply(callback: Callback) -> Callback:
            action(callback)
            return callback

        what = f"callback {callback_id}"
        callback = await applied(http, person, runtime, lambda: store.act(callback_id, apply), what)
        return await callback_view(callback, vault)

    @api.get("/callbacks", response_model=list[CallbackView])
    async def work_list(
        _: reader,
        assignee: Annotated[str | None, Query(description="Staff id of the callback staff member.")] = None,
        statuses: Annotated[
            list[CallbackStatus] | None,
            Query(alias="status", description="Any of these; all when not given."),
        ] = None,
    ) -> list[CallbackView]:
        """Callbacks by due time, earliest first: e.g. ``?assignee=cb-001&status=due&status=overdue``."""
        callbacks = await asyncio.to_thread(store.callbacks)
        chosen = [
            callback
            for callback in callbacks
            if (assignee is None or callback.assignee == assignee)
            and (not statuses or callback.status in statuses)
        ]
        ordered = sorted(chosen, key=lambda callback: callback.due_at)
        return list(await asyncio.gather(*(callback_view(callback, vault) for callback in ordered)))

    @api.get("/callbacks/{callback_id}", response_model=CallbackView)
    async def get_callback(callback_id: UUID, _: reader) -> CallbackView:
        callback = await asyncio.to_thread(store.get_callback, callback_id)
        return await callback_view(found(callback, f"callback {callback_id}"), vault)

    @api.get("/complaints/{complaint_id}/callbacks", response_model=list[CallbackView])
    async def callbacks_of(complaint_id: ComplaintId, _: reader) -> list[CallbackView]:
        """A complaint's callbacks, in the order they were scheduled."""
        callbacks = await asyncio.to_thread(store.callbacks)
        its = [callback for callback in callbacks if callback.complaint_id == complaint_id]
        return list(await asyncio.gather(*(callback_view(callback, vault) for callback in its)))

    @api.post(
        "/complaints/{complaint_id}/discharge-callback",
        response_model=CallbackView,
        status_code=status.HTTP_201_CREATED,
    )
    async def register_discharge(complaint_id: ComplaintId, body: Discharge, _: writer) -> CallbackView:
        """A follow-up call to a discharged patient; the same discharge again gives the same callback."""
        if body.discharged_at > now():
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail="discharged_at: cannot be in the future"
            )
        callback = await asyncio.to_thread(
            store.register_discharge, complaint_id, body.discharged_at, policy, directory.current
        )
        runtime.committed()
        return await callback_view(found(callback, f"case for complaint {complaint_id}"), vault)

    async def sealed(callback_id: UUID, purpose: str, text: str) -> str:
        """The patient's words, sealed with their complaint's key before they are stored."""
        callback = found(await asyncio.to_thread(store.get_callback, callback_id), f"callback {callback_id}")
        return await vault.seal_text(callback.complaint_id, purpose, text)

    @api.post("/callbacks/{callback_id}/not-reached", response_model=CallbackView)
    async def not_reached(http: Request, callback_id: UUID, body: NotReached, person: writer) -> CallbackView:
        """A call that did not reach the patient: the next attempt is scheduled, or the callback abandoned."""
        notes = await sealed(callback_id, NOTES, body.notes)
        return await act(
            http,
            person,
            callback_id,
            lambda callback: callback.not_reached(person.staff_id, now(), notes, directory.current),
        )

    @api.post("/callbacks/{callback_id}/outcome", response_model=CallbackView)
    async def outcome(http: Request, callback_id: UUID, body: Outcome, person: writer) -> CallbackView:
        """The patient was reached; unresolved or unsatisfied (2 or less) asks for the case to reopen."""
        comments = await sealed(callback_id, COMMENTS, body.comments)
        return await act(
            http,
            person,
            callback_id,
            lambda callback: callback.reached(
                person.staff_id, now(), body.satisfaction, body.resolved, comments, directory.current
            ),
        )

    return api
