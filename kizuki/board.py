"""The board report: the analysis's charts (PNG and SVG) and one PDF in the hospital's language.

Rendered on the server with matplotlib, without a display. Japanese and Chinese need a CJK font:
Noto Sans CJK (Debian's fonts-noto-cjk, installed by `make fonts`); without it this stops with a clear
error rather than print empty boxes. The files carry no creation date, so the same analysis gives the
same charts.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from kizuki.analysis import NOT_CODED
from kizuki.analysis_figures import ABOVE_SIGMAS
from kizuki.board_text import words
from kizuki.report_forms import duration
from shared.events import HCAT_DOMAINS

LANGUAGES = ("ja", "zh", "en")
FONTS = {
    "ja": ["Noto Sans CJK JP", "DejaVu Sans"],
    "zh": ["Noto Sans CJK SC", "DejaVu Sans"],
    "en": ["DejaVu Sans", "Noto Sans CJK JP"],  # departments may be named in Japanese or Chinese
}
STATUS_COLOURS = {
    "action_complete": "#2e7d32",
    "not_applicable": "#7cb342",
    "read": "#f9a825",
    "unread": "#bdbdbd",
    "overdue": "#c62828",
}
NO_DATES = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {"Software": None}}
A4_LANDSCAPE = (11.69, 8.27)
RECURRING_CHARTED = 4  # recurring causes drawn in their chart; the summary page lists up to 8
NOTICE_ROWS = 8  # rows the notices chart has room for at one bar size
ROW_INCHES = 0.3  # a table row's height on a page
CELL_PADDING = 0.03  # of a cell's width, before its text (matplotlib's 0.1 indents wide columns far)
REASON_CHARACTERS = 40  # of a "not applicable" reason in the notices' table; the analysis has it whole


class FontMissing(RuntimeError):
    """No font that shows the report's language is installed."""


@contextmanager
def _style(language: str) -> Iterator[None]:
    for family in (FONTS[language][0], "Noto Sans CJK JP"):
        try:
            font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            raise FontMissing(
                f"the font {family!r} is not installed: `make fonts` (Debian's fonts-noto-cjk) installs it"
            ) from None
    with matplotlib.rc_context(
        {
            "font.family": FONTS[language],
            "svg.hashsalt": "kizuki",
            "pdf.fonttype": 3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield


def write_board(figures: dict[str, Any], directory: Path, language: str) -> list[Path]:
    """The five charts as PNG and SVG, and the PDF; returns the files written."""
    w = words(language)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with _style(language):
        charts = {
            "by-domain": _by_domain(figures, w),
            "by-department": _stacked(figures, "by_department", w),
            "recurring": _recurring(figures, w),
            "first-response": _response_times(figures, w),
            "notices": _notices(figures, w),
        }
        for name, chart in charts.items():
            for form in ("png", "svg"):
                path = directory / f"{name}.{language}.{form}"
                chart.savefig(path, format=form, dpi=150, metadata=NO_DATES[form])
                written.append(path)
        pdf_path = directory / f"board-report.{language}.pdf"
        with PdfPages(pdf_path, metadata=NO_DATES["pdf"]) as pdf:
            pdf.savefig(_summary_page(figures, w))
            for chart in charts.values():
                chart.set_size_inches(*A4_LANDSCAPE)
                pdf.savefig(chart)
            pdf.savefig(_notice_page(figures, w))
        written.append(pdf_path)
    return written


def _chart(title: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=14)
    return figure, axes


def _stacked(figures: dict[str, Any], section: str, w: dict[str, str]) -> Figure:
    figure, axes = _chart(w[section])
    periods = figures["periods"]
    bottom = [0] * len(periods)
    for key, value in figures[section].items():
        counts = value["counts"] if isinstance(value, dict) else value
        axes.bar(periods, counts, bottom=bottom, label=w.get(key, key))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.set_ylabel(w["complaints"])
    axes.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def _by_domain(figures: dict[str, Any], w: dict[str, str]) -> Figure:
    """A line a domain, not stacked: a complaint coded in two domains counts in both."""
    figure, axes = _chart(w["by_domain"])
    for domain in (*HCAT_DOMAINS, NOT_CODED):
        if domain in figures["by_domain"]:
            counts = figures["by_domain"][domain]["counts"]
            axes.plot(figures["periods"], counts, marker="o", label=w[domain])
    axes.set_ylim(bottom=0)
    axes.set_ylabel(w["complaints"])
    axes.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def _recurring(figures: dict[str, Any], w: dict[str, str]) -> Figure:
    """Each recurring cause (the first RECURRING_CHARTED): its complaints, and dashed the count above
    which a period is above its department's baseline."""
    figure, axes = _chart(w["recurring_chart"])
    for row in figures["recurring"][:RECURRING_CHARTED]:
        name = f"{row['department']} · {w[row['category']]}"
        line = axes.plot(figures["periods"], row["counts"], marker="o", label=name)[0]
        limit = [math.nan if b is None else b + ABOVE_SIGMAS * math.sqrt(b) for b in row["baseline"]]
        # Over the axis, not under it: a limit of 0 (no other department has the category) is drawn too.
        axes.plot(
            figures["periods"], limit, linestyle="--", color=line.get_color(), label=w["above_from"],
            clip_on=False, zorder=3,
        )  # fmt: skip
    axes.set_ylim(bottom=0)
    axes.set_ylabel(w["complaints"])
    axes.tick_params(axis="x", labelrotation=45)
    if figures["recurring"]:
        axes.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    else:
        axes.text(0.5, 0.5, w["none"], ha="center", transform=axes.transAxes)
    return figure


def _response_times(figures: dict[str, Any], w: dict[str, str]) -> Figure:
    figure, axes = _chart(w["first_response"])
    each = figures["times"]["first_response"]["per_period"]
    for statistic in ("median", "p90"):
        hours = [s[statistic] / 3600 if s[statistic] is not None else float("nan") for s in each]
        axes.plot(figures["periods"], hours, marker="o", label=w[statistic])
    axes.set_ylim(bottom=0)
    axes.legend(frameon=False)
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def status_of(state: dict[str, Any]) -> str:
    """A department's state of a notice: its answer, else overdue, read or not read."""
    if state["answer"] is not None:
        return str(state["answer"]["answer"])
    return "overdue" if state["overdue"] else "read" if state["read"] else "unread"


def _shortened(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[: characters - 1] + "…"


def _answerer(state: dict[str, Any]) -> str:
    """Who signed off (or, before an answer, who read it)."""
    if state["answer"] is not None:
        return str(state["answer"]["by"])
    return ", ".join(read["by"] for read in state["read"])


def _notices(figures: dict[str, Any], w: dict[str, str]) -> Figure:
    figure, axes = _chart(w["notices"])
    rows = [
        (f"{w['notice']} {n['notice_id'][:8]} · {department}", status_of(state), _answerer(state))
        for n in figures["notices"]
        for department, state in n["departments"].items()
    ]
    for place, (_, status, by) in enumerate(rows):
        axes.barh(place, 1, height=0.7, color=STATUS_COLOURS[status])
        label = f"{w[status]} · {by}" if by else w[status]
        axes.text(0.02, place, label, va="center", color="white", fontsize=11, fontweight="bold")
    axes.set_yticks(range(len(rows)), [label for label, _, _ in rows])
    # The first at the top, and bars of one size until there are more than NOTICE_ROWS.
    axes.set_ylim(max(NOTICE_ROWS, len(rows)) - 0.5, -0.5)
    axes.set_xticks([])
    if not rows:
        axes.text(0.5, 0.5, w["none"], ha="center", transform=axes.transAxes)
    return figure


def _page(title: str) -> Figure:
    page = Figure(figsize=A4_LANDSCAPE)
    page.text(0.05, 0.93, title, fontsize=20)
    return page


def _widths(header: list[str] | None, cells: list[list[str]]) -> list[float]:
    """Each column as wide as its longest text (a CJK character as two), together the table's width."""

    def length(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text) + 4

    longest = [
        max(length(row[i]) for row in [*([header] if header else []), *cells]) for i in range(len(cells[0]))
    ]
    return [width / sum(longest) for width in longest]


def _table(page: Figure, top: float, height: float, header: list[str] | None, cells: list[list[str]]) -> None:
    axes = page.add_axes((0.05, top - height, 0.9, height))
    axes.axis("off")
    if cells:
        table = axes.table(
            cellText=cells,
            colLabels=header,
            colWidths=_widths(header, cells),
            loc="upper left",
            cellLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(10)
        row = ROW_INCHES / (height * A4_LANDSCAPE[1])  # in the axes' height
        for cell in table.get_celld().values():
            cell.set_height(row)
            cell.PAD = CELL_PADDING
    else:
        axes.text(0, 1, "-", va="top")


def _span(figures: dict[str, Any]) -> str:
    """The periods covered, first to last."""
    periods = figures["periods"]
    return f"{periods[0]} - {periods[-1]}" if periods else "-"


def _summary_page(figures: dict[str, Any], w: dict[str, str]) -> Figure:
    page = _page(w["title"])
    page.text(
        0.05,
        0.88,
        f"{w['window']}: {_span(figures)}, {w[figures['period_kind']]} ({figures['time_zone']})",
        fontsize=11,
    )
    times, harassment = figures["times"], figures["harassment"]
    safety, callbacks = figures["safety_events"], figures["callbacks"]
    key_figures = [
        [w["complaints"], str(sum(figures["complaints"]))],
        *(
            [
                w[name + "_median"],
                f"{duration(times[name]['all']['median'])} / {duration(times[name]['all']['p90'])}",
            ]
            for name in ("first_response", "feedback")
        ),
        [w["harassment"], f"{harassment['assessed']} / {harassment['harassment']}"],
        [w["satisfaction"], str(callbacks["mean_satisfaction"] or "-")],
        [w["safety_events"], f"{sum(safety['staff_reports'])} / {sum(safety['linked'])}"],
    ]
    page.text(0.05, 0.82, w["key_figures"], fontsize=14)
    _table(page, 0.8, 0.25, None, key_figures)
    page.text(0.05, 0.5, w["recurring"], fontsize=14)
    recurring = [
        [
            row["department"],
            w[row["category"]],
            f"{row['run']['first']} - {row['run']['last']}"
            + (f" ({w['to_date']})" if row["ongoing"] else ""),
            w[row["trend"]],
            f"{row['earlier']} → {row['later']}",
        ]
        for row in figures["recurring"][:8]
    ]
    header = [w["department"], w["category"], w["above_baseline"], w["trend"], w["counts"]]
    _table(page, 0.48, 0.4, header, recurring)
    return page


def _notice_page(figures: dict[str, Any], w: dict[str, str]) -> Figure:
    page = _page(w["notices"])
    cells = []
    for notice in figures["notices"]:
        categories = w["separator"].join(w[c] for c in notice["categories"])
        for department, state in notice["departments"].items():
            before, after = state["complaints_before"], state["complaints_after"]
            change = (
                f"{before} → {after} ({w[state['afterwards']]})" if before is not None else w["too_early"]
            )
            status = w[status_of(state)]
            if state["answer"] is not None and state["answer"]["reason"]:
                status = _shortened(f"{status}: {state['answer']['reason']}", REASON_CHARACTERS)
            notice_name = f"{notice['notice_id'][:8]} ({categories})"
            cells.append([notice_name, department, status, _answerer(state), change])
    header = [w["notice"], w["department"], w["status"], w["by"], w["before_after"]]
    _table(page, 0.88, 0.35, header, cells)
    page.text(0.05, 0.48, w["caution"], fontsize=10)
    page.text(0.05, 0.4, w["kappa"], fontsize=14)
    kappas = [
        [w[c], str(a["pairs"]), "-" if a["kappa_present"] is None else f"{a['kappa_present']:.2f}"]
        for c, a in figures["agreement"].items()
    ]
    _table(page, 0.38, 0.3, [w["category"], w["pairs"], "κ"], kappas)
    return page
