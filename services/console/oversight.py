"""The overview page and its picture, for executives, quality and the auditor."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from services.console import chart, labels, roles
from services.console.application import ConsoleApplication
from services.console.overview import (
    ROLE_LABELS,
    SHORTFALLS,
    STATUS_LABELS,
    TIERS,
    TRACKS,
    UNITS,
    Overview,
    overview,
    readable_duration,
)
from services.console.web import Pages
from shared.duty_status import STATUSES
from shared.timers import now


def router(pages: Pages, store: ConsoleApplication) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    def figures() -> Overview:
        """Computed under the read model's lock: the figures hold no part of a case."""
        moment = now()
        return store.read(lambda cases: overview(cases.values(), moment))

    @api.get("/overview", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        session = pages.session_of(request, roles.OVERVIEW)
        found = figures()
        return pages.render(
            "overview.html",
            session.language,
            session,
            here="/overview",
            found=found,
            tiers=TIERS,
            tracks=TRACKS,
            statuses=STATUSES,
            shortfalls=SHORTFALLS,
            status_labels=STATUS_LABELS,
            role_labels=ROLE_LABELS,
            units=UNITS,
            median=readable_duration(found.response_median) if found.response_median is not None else None,
            p90=readable_duration(found.response_p90) if found.response_p90 is not None else None,
        )

    @api.get("/overview/duties.svg")
    async def picture(request: Request) -> Response:
        session = pages.session_of(request, roles.OVERVIEW)
        bars, height = chart.duty_bars(figures().duties)
        return pages.picture(
            "duties.svg",
            session.language,
            bars=bars,
            width=chart.WIDTH,
            height=height,
            statuses=STATUSES,
            colours=chart.COLOURS,
            status_labels=STATUS_LABELS,
            duty_labels=labels.DUTIES,
        )

    return api
