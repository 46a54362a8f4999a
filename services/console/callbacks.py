"""The callbacks page, for callback staff: their open callbacks, those due and overdue first, each with
its "not reached" and its outcome (satisfaction 1 to 5), recorded through followup's API, which refuses
a call before it is due (its message is shown)."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from services.console.application import ConsoleApplication
from services.console.domain import Case
from services.console.index import WorkIndex
from services.console.pages import filter_choices, filtered
from services.console.refusals import Refusal
from services.console.sessions import Session
from services.console.web import Pages
from services.console.work import WorkItem, my_work
from shared.timers import now

# Every callback of the person is listed: there are tens, not thousands, and the order is not by due.
CALLBACKS_SHOWN = 10_000


def first_to_call(items: list[WorkItem], moment: datetime) -> list[WorkItem]:
    """Overdue first, then those due now, then those still to come; each by due time."""
    return sorted(items, key=lambda item: (not item.late, item.due_at > moment, item.due_at))


def callbacks_page(
    pages: Pages,
    store: ConsoleApplication,
    session: Session,
    refusal: Refusal | None = None,
    status: int = 200,
) -> Response:
    moment, directory, filters = now(), pages.directory, session.filters

    def calls(cases: dict[UUID, Case], index: WorkIndex) -> list[WorkItem]:
        keys = [key for key in index.keys_of(session.staff_id) if key[2] == "callback"]
        return my_work(cases, keys, session.staff_id, directory, moment, filters, CALLBACKS_SHOWN)[0]

    items = first_to_call(store.read_work(directory, calls), moment)
    return pages.render(
        "callbacks.html",
        session.language,
        session,
        status,
        "/callbacks" + filters.query(),
        items=items,
        refusal=refusal,
        filters=filters,
        **filter_choices(pages),
    )


def router(pages: Pages, store: ConsoleApplication) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/callbacks", response_class=HTMLResponse)
    async def callbacks(request: Request) -> Response:
        session = pages.session(request)
        filtered(request, session)
        return callbacks_page(pages, store, session)

    return api
