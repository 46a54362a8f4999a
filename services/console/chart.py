"""The overview's picture: each duty's statuses as one bar, drawn on the server as SVG. Pure.

Colour is never the only signal: each segment wide enough carries its count, the legend names each
colour, and the table under the picture gives every number."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from shared.duty_status import STATUSES

COLOURS = {
    "on_time": "#1a7f37",
    "late": "#b35900",
    "missed": "#b42318",
    "overdue": "#6e1410",
    "not_yet_due": "#d0d7de",
}
INK_ON = {"on_time": "#fff", "late": "#fff", "missed": "#fff", "overdue": "#fff", "not_yet_due": "#1b1f24"}
WIDTH, LABEL_WIDTH, BAR_HEIGHT, GAP, LEGEND_HEIGHT = 640, 250, 22, 12, 40
COUNT_SHOWN_FROM = 18  # pixels: a narrower segment has no room for its count


@dataclass(frozen=True)
class Segment:
    status: str
    x: float
    width: float
    count: int
    colour: str
    ink: str
    labelled: bool


@dataclass(frozen=True)
class Bar:
    kind: str
    role: str
    y: float
    total: int
    segments: list[Segment]


def duty_bars(duties: dict[tuple[str, str], Counter[str]]) -> tuple[list[Bar], int]:
    """One bar per duty, its length shared among the statuses; and the picture's height."""
    room = WIDTH - LABEL_WIDTH - 10
    bars: list[Bar] = []
    for row, ((kind, role), counted) in enumerate(duties.items()):
        total, x = counted.total(), float(LABEL_WIDTH)
        segments: list[Segment] = []
        for status in STATUSES:
            if not counted[status]:
                continue
            width = room * counted[status] / total
            segments.append(
                Segment(
                    status,
                    x,
                    width,
                    counted[status],
                    COLOURS[status],
                    INK_ON[status],
                    width >= COUNT_SHOWN_FROM,
                )
            )
            x += width
        bars.append(Bar(kind, role, LEGEND_HEIGHT + row * (BAR_HEIGHT + GAP), total, segments))
    return bars, LEGEND_HEIGHT + len(bars) * (BAR_HEIGHT + GAP) + GAP
