"""Followup's HTTP API: the callback staff's work list, their calls and the patients' answers."""

# Without `from __future__ import annotations`: FastAPI reads these signatures' dependencies, which
# refer to objects local to router().
import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, Field

from services.followup.access import ComplaintScope
from services.followup.application import FollowupApplication
from services.followup.domain import Callback, CallbackStatus
from services.followup.listing import OPEN_STATUSES
from shared.auth import ALL_ROLES, WRITERS, ActionBody, Authenticator, Person, refuse
from shared.case_rules import callback_team
from shared.directory import Directory
from shared.entered import TimeRefused, check_entered
from shared.events import CallbackPurpose
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.service import applied, complaint_id_in_path, found
from shared.timers import now


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


def may_see_complaint(person: Person, scope: ComplaintScope | None, directory: Directory) -> bool:
    """The rule of the complaint itself. Followup knows who a complaint concerns from its
    ``ComplaintReceived``; for one received before it kept that, only the overseers."""
    if scope is None:
        return person.oversees
    return person.concerned_with(scope.heard_by, scope.department, directory)


def may_see(person: Person, callback: Callback, scope: ComplaintScope | None, directory: Directory) -> bool:
    """The callback's team (its assignee, their fellow callback staff) and whoever may see its complaint."""
    in_team = person.staff_id in callback_team(callback.assignee, directory)
    return in_team or may_see_complaint(person, scope, directory)


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
    policy: Policy,
    directory: LiveFile[Directory],
    auth: Authenticator,
    vault: KeyVault,
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    ComplaintId = Annotated[UUID, Depends(complaint_id_in_path(store, auth))]
    # Any member of staff; what each may see is decided per callback (``may_see``).
    reader = Annotated[Person, Depends(auth.requires(*ALL_ROLES))]
    writer = Annotated[Person, Depends(auth.requires(*WRITERS))]
    discharge_window = timedelta(seconds=policy.recording.discharge_within_seconds)

    def seen_by(person: Person, callbacks: list[Callback]) -> list[Callback]:
        scopes = {
            complaint_id: store.scope_of(complaint_id) for complaint_id in {c.complaint_id for c in callbacks}
        }
        return [
            callback
            for callback in callbacks
            if may_see(person, callback, scopes[callback.complaint_id], directory.current)
        ]

    async def act(
        http: Request, person: Person, callback_id: UUID, action: Callable[[Callback], object]
    ) -> CallbackView:
        """Apply the action, answer with the callback as it is now."""

        def apply(callback: Callback) -> Callback:
            action(callback)
            return callback

        what = f"callback {callback_id}"
        callback = await applied(http, person, lambda: store.act(callback_id, apply), what)
        return await callback_view(callback, vault)

    @api.get("/callbacks", response_model=list[CallbackView])
    async def work_list(
        person: reader,
        assignee: Annotated[str | None, Query(description="Staff id of the callback staff member.")] = None,
        statuses: Annotated[
            list[CallbackStatus] | None,
            Query(alias="status", description="Any of these; all when not given."),
        ] = None,
    ) -> list[CallbackView]:
        """The callbacks the person may see, by due time, earliest first: e.g.
        ``?assignee=cb-001&status=due&status=overdue``."""
        # Only closed ones asked for (or all) need the whole log; the usual list reads the open ones.
        listed = (
            store.open_callback_list if statuses and OPEN_STATUSES.issuperset(statuses) else store.callbacks
        )
        callbacks = await asyncio.to_thread(lambda: seen_by(person, listed()))
        chosen = [
            callback
            for callback in callbacks
            if (assignee is None or callback.assignee == assignee)
            and (not statuses or callback.status in statuses)
        ]
        ordered = sorted(chosen, key=lambda callback: callback.due_at)
        return list(await asyncio.gather(*(callback_view(callback, vault) for callback in ordered)))

    @api.get("/callbacks/{callback_id}", response_model=CallbackView)
    async def get_callback(http: Request, callback_id: UUID, person: reader) -> CallbackView:
        callback = found(await asyncio.to_thread(store.get_callback, callback_id), f"callback {callback_id}")
        scope = await asyncio.to_thread(store.scope_of, callback.complaint_id)
        if not may_see(person, callback, scope, directory.current):
            raise refuse(http, person, f"callback {callback_id} is outside your department, chain and team")
        return await callback_view(callback, vault)

    @api.get("/complaints/{complaint_id}/callbacks", response_model=list[CallbackView])
    async def callbacks_of(http: Request, complaint_id: ComplaintId, person: reader) -> list[CallbackView]:
        """A complaint's callbacks, in the order they were scheduled: all of them for whoever may see the
        complaint, a callback's team its own."""
        callbacks = await asyncio.to_thread(store.callbacks_of, complaint_id)
        scope = await asyncio.to_thread(store.scope_of, complaint_id)
        its = [callback for callback in callbacks if may_see(person, callback, scope, directory.current)]
        if not its and not may_see_complaint(person, scope, directory.current):
            raise refuse(http, person, f"complaint {complaint_id} is outside your department and chain")
        return list(await asyncio.gather(*(callback_view(callback, vault) for callback in its)))

    @api.post(
        "/complaints/{complaint_id}/discharge-callback",
        response_model=CallbackView,
        status_code=status.HTTP_201_CREATED,
    )
    async def register_discharge(
        http: Request, complaint_id: ComplaintId, body: Discharge, person: writer
    ) -> CallbackView:
        """A follow-up call to a discharged patient, registered by someone who may see the complaint; the
        same discharge again gives the same callback."""
        what = f"case for complaint {complaint_id}"
        found(await asyncio.to_thread(store.followed_case, complaint_id), what)
        if not may_see_complaint(
            person, await asyncio.to_thread(store.scope_of, complaint_id), directory.current
        ):
            raise refuse(http, person, f"complaint {complaint_id} is outside your department and chain")
        try:
            check_entered(
                "discharged_at", body.discharged_at, now(), discharge_window, "discharge_within_seconds"
            )
        except TimeRefused as refused:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(refused)) from None
        callback = await asyncio.to_thread(
            store.register_discharge, complaint_id, body.discharged_at, policy, directory.current
        )
        return await callback_view(found(callback, what), vault)

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
