"""The pages people read: "My work", a case, and the live updates and files they use."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
import copy
from pathlib import Path
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from services.console.application import ConsoleApplication
from services.console.domain import Case
from services.console.live import ChangeFeed
from services.console.sessions import Session
from services.console.web import Pages
from services.console.work import may_see, my_work
from shared.timers import now

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"console.js": "text/javascript", "console.css": "text/css"}


def router(pages: Pages, store: ConsoleApplication, feed: ChangeFeed) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/", response_class=HTMLResponse)
    async def work(request: Request) -> Response:
        session = pages.session(request)
        moment = now()
        items, more = store.read(
            lambda cases: my_work(cases.values(), session.staff_id, pages.directory, moment)
        )
        return pages.render("work.html", session.language, session, items=items, more=more)

    @api.get("/cases/{complaint_id}", response_class=HTMLResponse)
    async def case(request: Request, complaint_id: UUID) -> Response:
        session = pages.session(request)
        return case_page(pages, store, session, complaint_id)

    @api.get("/events")
    async def events(request: Request) -> StreamingResponse:
        pages.session(request)
        return StreamingResponse(
            feed.stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    @api.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404, detail=f"no file {name}")
        return FileResponse(
            STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"}
        )

    return api


def case_page(
    pages: Pages,
    store: ConsoleApplication,
    session: Session,
    complaint_id: UUID,
    refusal: str = "",
    status: int = 200,
) -> Response:
    """The case as the read model has it, for the people of the case and the overseers; a refusal of
    the service an action was sent to is shown above it, with the service's status."""

    def visible(cases: dict[UUID, Case]) -> Case | None:
        found = cases.get(complaint_id)
        if found is None or not may_see(found, session.staff_id, pages.directory):
            return None
        return copy.deepcopy(found)  # rendered outside the lock, while the consumer may change it

    case = store.read(visible)
    if case is None:
        return pages.render("missing.html", session.language, session, 404, complaint_id=complaint_id)
    return pages.render(
        "case.html", session.language, session, status, f"/cases/{complaint_id}", case=case, refusal=refusal
    )
