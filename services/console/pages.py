"""The pages people read: "My work", a case (by its id or its reference), and the live updates and
files they use."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
import copy
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from services.console.allowed import allowed
from services.console.application import ConsoleApplication
from services.console.domain import Case
from services.console.filters import Filters
from services.console.gateway import Gateway
from services.console.index import WorkIndex
from services.console.labels import TIERS
from services.console.refusals import Refusal
from services.console.sessions import Session
from services.console.web import Pages
from services.console.work import WORK_SHOWN, WorkItem, may_see, my_work
from shared.reference import parse_reference
from shared.timers import now

# No one pages further than this; a larger number in an address is a mistake, said as such.
MAX_PAGE = 10_000

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"console.js": "text/javascript", "console.css": "text/css"}


def filtered(request: Request, session: Session) -> Filters:
    """The filters the address chose, kept in the session for the pages to come."""
    session.filters = Filters.chosen(request.query_params, session.filters)
    return session.filters


def page_number(request: Request) -> int:
    """The page of "My work" the address asks for, from 1."""
    asked = request.query_params.get("page", "1")
    if not (asked.isascii() and asked.isdigit() and len(asked) <= 5 and 1 <= int(asked) <= MAX_PAGE):
        raise HTTPException(400, detail=f"page is a whole number from 1 to {MAX_PAGE}, not {asked[:20]!r}")
    return int(asked)


def case_id(store: ConsoleApplication, case_ref: str) -> UUID | None:
    """The complaint an address names: by its id, or by its reference when exactly one complaint has it
    (a reference two complaints share, rarely, names neither: their ids tell them apart)."""
    try:
        return UUID(case_ref)
    except ValueError:
        pass
    reference = parse_reference(case_ref)
    known = store.by_reference(reference) if reference else set()
    return next(iter(known)) if len(known) == 1 else None


def filter_choices(pages: Pages) -> dict[str, Any]:
    """What the filter form offers: the tiers and the directory's departments."""
    directory = pages.directory
    departments = sorted({*directory.departments, *(m.department for m in directory.staff.values())})
    return {"tiers": list(TIERS), "departments": departments}


def router(pages: Pages, store: ConsoleApplication, gateway: Gateway) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/", response_class=HTMLResponse)
    async def work(request: Request) -> Response:
        """Its own time in a ``Server-Timing`` header (what `make bench` reports), transport aside."""
        started = time.perf_counter()
        session = pages.session(request)
        filters, number = filtered(request, session), page_number(request)
        moment, directory = now(), pages.directory
        skip = (number - 1) * WORK_SHOWN

        def mine(cases: dict[UUID, Case], index: WorkIndex) -> tuple[list[WorkItem], int]:
            keys = index.keys_of(session.staff_id)
            return my_work(cases, keys, session.staff_id, directory, moment, filters, WORK_SHOWN, skip)

        items, more = store.read_work(directory, mine)
        page = pages.render(
            "work.html",
            session.language,
            session,
            here="/" + filters.query(number),
            items=items,
            more=more,
            filters=filters,
            earlier="/" + filters.query(number - 1) if number > 1 else "",
            later="/" + filters.query(number + 1) if more else "",
            **filter_choices(pages),
        )
        page.headers["Server-Timing"] = f"work;dur={(time.perf_counter() - started) * 1000:.2f}"
        return page

    @api.get("/cases/{case_ref}", response_class=HTMLResponse)
    async def case(request: Request, case_ref: str) -> Response:
        """By complaint id, or by the reference read out on the phone (``XXXX-XXXX``)."""
        session = pages.session(request)
        complaint_id = case_id(store, case_ref)
        if complaint_id is None:
            return pages.render("missing.html", session.language, session, 404, complaint_id=case_ref)
        return await case_page(pages, store, gateway, session, complaint_id, here=f"/cases/{case_ref}")

    @api.get("/events")
    async def events(request: Request, since: int | None = None) -> StreamingResponse:
        """``since``: the version the page was rendered at; a change after it is sent at once."""
        pages.session(request)
        return StreamingResponse(
            pages.feed.stream(since), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    @api.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404, detail=f"no file {name}")
        return FileResponse(
            STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"}
        )

    return api


async def case_page(
    pages: Pages,
    store: ConsoleApplication,
    gateway: Gateway,
    session: Session,
    complaint_id: UUID,
    refusal: Refusal | None = None,
    status: int = 200,
    here: str = "",
) -> Response:
    """The case as the read model has it, for the people of the case and the overseers, with the forms
    this person may use; a refusal of the service an action was sent to is shown above it, with the
    service's status. The patient's data only if intake gives it to this person."""
    directory, version = pages.directory, pages.feed.version  # before the read: see Pages.render

    def visible(cases: dict[UUID, Case]) -> Case | None:
        found = cases.get(complaint_id)
        if found is None or not may_see(found, session.staff_id, directory):
            return None
        return copy.deepcopy(found)  # rendered outside the lock, while the consumer may change it

    case = store.read(visible)
    if case is None:
        # What the person asked for, not the id a reference resolved to: that would say it exists.
        asked = here.removeprefix("/cases/") or str(complaint_id)
        return pages.render("missing.html", session.language, session, 404, complaint_id=asked)
    complaint = await gateway.get("intake", f"/v1/complaints/{complaint_id}", session.staff_id)
    return pages.render(
        "case.html",
        session.language,
        session,
        status,
        here or f"/cases/{complaint_id}",
        case=case,
        version=version,
        refusal=refusal,
        allowed=allowed(case, session.staff_id, directory),
        patient=complaint.body if complaint.ok else None,
        # Refused (403) or unknown to intake (404): the section is not there. Not answering: said so.
        patient_unavailable=complaint.refusal if complaint.status >= 500 else None,
    )
