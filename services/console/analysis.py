"""The periodic analysis, for those who answer for the regime: `kizuki analysis`'s figures over the
whole record, per month or quarter, as a page and as the command's own CSV and JSON."""

# Without `from __future__ import annotations`: FastAPI reads the signatures of these routes.
import io
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from kizuki.analysis_figures import PERIOD_KINDS, RECUR_RUN
from kizuki.analysis_forms import COUNTED, print_csv, print_json
from services.console import labels, roles
from services.console.overview import UNITS, readable_duration
from services.console.record_desk import DeskUnavailable, RecordDesk
from services.console.web import Pages
from shared.policy import Policy

NOT_A_PERIOD = "The analysis is per month or per quarter."
NOT_A_FORM = "The analysis downloads as CSV or JSON."
DOWNLOADS = {"csv": (print_csv, "text/csv; charset=utf-8"), "json": (print_json, "application/json")}
# The catalogue's words for the analysis's own.
PERIOD_LABELS = {"month": "per month", "quarter": "per quarter"}
SECTIONS = {
    "by_domain": "By HCAT domain (coded)",
    "by_category": "By HCAT category (coded)",
    "by_category_suggested": "By HCAT category suggested for cases not yet coded",
    "by_department": "By department",
    "by_channel": "By channel",
    "by_tier": "By tier",
}
TRENDS = {"rising": "rising", "falling": "falling", "steady": "steady"}
TIMES = {"first_response": labels.DUTIES["first_response"], "feedback": labels.DUTIES["patient_feedback"]}
ANSWERS = {"action_complete": "action complete", "not_applicable": "does not apply"}
AFTERWARDS = {"fell": "fell", "rose": "rose", "unchanged": "unchanged"}


def shown(found: dict[str, Any]) -> dict[str, Any]:
    """What the page template is given: the figures, and the words and forms for showing them."""
    return {
        "found": found,
        "period_kinds": PERIOD_LABELS,
        "counted": [section for section in COUNTED if found[section]],
        "sections": SECTIONS,
        "trends": TRENDS,
        "times": TIMES,
        "answers": ANSWERS,
        "afterwards": AFTERWARDS,
        "downloads": DOWNLOADS,
        "readable": readable_duration,
        "units": UNITS,
        "recur_run": RECUR_RUN,
        "moment": datetime.fromisoformat,
    }


def router(pages: Pages, desk: RecordDesk, policy: Policy) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    async def analysis(period: str) -> dict[str, Any]:
        if period not in PERIOD_KINDS:
            raise HTTPException(422, detail=NOT_A_PERIOD)
        try:
            return await desk.analysis(policy, period)
        except DeskUnavailable as error:
            raise HTTPException(503, detail=str(error)) from error

    @api.get("/analysis", response_class=HTMLResponse)
    async def page(request: Request, period: str = "month") -> Response:
        session = pages.session_of(request, roles.ANALYSIS)
        found = await analysis(period)
        return pages.render("analysis.html", session.language, session, here="/analysis", **shown(found))

    @api.get("/analysis.{form}")
    async def download(request: Request, form: str, period: str = "month") -> Response:
        """The bytes `kizuki analysis --csv` or `--json` prints for the same record."""
        pages.session_of(request, roles.ANALYSIS)
        if form not in DOWNLOADS:
            raise HTTPException(404, detail=NOT_A_FORM)
        write, media_type = DOWNLOADS[form]
        written = io.StringIO(newline="")
        write(await analysis(period), written)
        return Response(
            written.getvalue().encode("utf-8"),
            media_type=media_type,
            headers={"Content-Disposition": f'attachment; filename="analysis-{period}.{form}"'},
        )

    return api
