"""The auditor's pages: the state of the record, a verification on demand, a complaint's proof and
the record's bundle as downloads. Nothing here changes anything but the page's last verification."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
from collections.abc import AsyncIterator
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from services.console import roles
from services.console.record_desk import NO_AUDITOR_CREDENTIAL, ChainHead, DeskUnavailable, RecordDesk, chunks
from services.console.sessions import Session
from services.console.web import NOT_AN_ID, STALE_FORM, Pages, form_of, see_other

NO_SUCH_COMPLAINT = "The record holds no event of that complaint."


def router(pages: Pages, desk: RecordDesk) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    async def record_page(session: Session, trouble: str = "", status: int = 200) -> Response:
        heads: list[ChainHead] = []
        try:
            heads = await desk.heads()
        except DeskUnavailable as error:
            trouble = trouble or str(error)
        return pages.render(
            "record.html",
            session.language,
            session,
            status,
            "/record",
            heads=heads,
            last=desk.last,
            whole=desk.reads_the_whole_record,
            cannot_read_whole=NO_AUDITOR_CREDENTIAL,
            trouble=trouble,
        )

    @api.get("/record", response_class=HTMLResponse)
    async def record(request: Request) -> Response:
        return await record_page(pages.session_of(request, roles.RECORD))

    @api.post("/record/verify")
    async def verify(request: Request) -> Response:
        session = pages.session_of(request, roles.RECORD)
        if not session.checks((await form_of(request)).get("csrf")):
            raise HTTPException(403, detail=STALE_FORM)
        try:
            await desk.verify(session.staff_id)
        except DeskUnavailable as error:
            return await record_page(session, str(error), 503)
        return see_other("/record")

    @api.get("/record/proof")
    async def proof(request: Request, complaint: str = "") -> Response:
        session = pages.session_of(request, roles.RECORD)
        try:
            complaint_id = UUID(complaint.strip())
        except ValueError:
            return await record_page(session, NOT_AN_ID, 422)
        try:
            spooled, found = await desk.proof(str(complaint_id))
        except DeskUnavailable as error:
            return await record_page(session, str(error), 503)
        if not found:
            spooled.close()
            return await record_page(session, NO_SUCH_COMPLAINT, 404)
        return download(chunks(spooled), f"proof-{complaint_id}.jsonl")

    @api.get("/record/export")
    async def export(request: Request) -> Response:
        session = pages.session_of(request, roles.RECORD)
        try:
            spooled = await desk.export()
        except DeskUnavailable as error:
            return await record_page(session, str(error), 503)
        return download(chunks(spooled), "record.jsonl")

    return api


def download(body: AsyncIterator[bytes], name: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
