"""The analysis's figures per period, from the cases and notices the record holds.

Rules, stated once here and in the README:
- A complaint counts in the HCAT categories its case's coding found (severity 1 or more) and in their
  domains; a case nobody has coded counts as "not_coded" (or, when the policy maps the hospital's
  category onto HCAT, under that category as "suggested", apart from the coded counts).
- A trend compares the later half of the periods with the earlier half (the middle one left out when
  their number is odd): "rising", "falling" or "steady".
- A cause recurs in a department when its complaints of that category stay above the department's
  baseline for at least RECUR_RUN consecutive periods. The baseline of a period is what the rest of the
  hospital predicts: the department's coded complaints that period times the category's share of the
  other departments' coded complaints over the whole window (pooled, so that a few complaints
  elsewhere in one period do not make it jump). A count is above it when it exceeds the baseline by
  more than ABOVE_SIGMAS Poisson standard deviations (baseline + 2 * sqrt(baseline)). So a department
  is not named for its size, nor for a category every department has as much of; a hospital of one
  department has nothing to compare with. Listed: runs that reach the last period first, then the
  longest, then the largest rise.
- A learning notice is followed by counting its categories' complaints in its departments in the
  NOTICE_SPAN periods before the one it was issued in and as many after it, and saying whether they
  fell, rose or stayed the same: counts side by side, not a cause.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kizuki.agreement import agreement
from kizuki.analysis import (
    CATEGORIES,
    DOMAIN_OF,
    NOT_CODED,
    AnalysisRebuild,
    Case,
    Notice,
    suggested_categories,
)
from kizuki.report import iso_or_none
from shared.duty_status import nearest_rank
from shared.events import HCAT_DOMAINS
from shared.policy import Policy

PERIOD_KINDS = ("month", "quarter")
RECUR_RUN = 3  # consecutive periods above the baseline
ABOVE_SIGMAS = 2  # how far above the baseline, in Poisson standard deviations, a count must be
NOTICE_SPAN = 3


@dataclass(frozen=True)
class Periods:
    """Months ("2026-01") or quarters ("2026-Q1") in the hospital's time zone."""

    kind: str
    zone: ZoneInfo

    def of(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        if self.kind == "month":
            return f"{local.year}-{local.month:02d}"
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"

    def between(self, first: datetime, last: datetime) -> list[str]:
        """Every period from the one of ``first`` to the one of ``last``, empty ones included."""
        names: list[str] = []
        local = first.astimezone(self.zone).replace(day=1, hour=12)
        while not names or names[-1] != self.of(last):
            if not names or names[-1] != self.of(local):  # a quarter spans three months
                names.append(self.of(local))
            local = (local + timedelta(days=32)).replace(day=1)
        return names


def analysis_of(
    rebuild: AnalysisRebuild,
    policy: Policy,
    period_kind: str,
    window: tuple[datetime | None, datetime | None] = (None, None),
) -> dict[str, Any]:
    """The figures of the record read into ``rebuild``: what `kizuki analysis` prints and the console's
    analysis page shows, per month or quarter in the hospital's time zone."""
    periods = Periods(period_kind, ZoneInfo(policy.escalation.calendar.timezone))
    found = rebuild.found(*window)
    return figures(found, rebuild.notices.values(), periods, window, suggested_categories(policy.hcat))


def figures(
    cases: Sequence[Case],
    notices: Iterable[Notice],
    periods: Periods,
    window: tuple[datetime | None, datetime | None],
    suggested: Mapping[str, str],
) -> dict[str, Any]:
    since, until = window
    first = since or (cases[0].timeline.occurred_at if cases else None)
    last = (
        (until - timedelta(microseconds=1)) if until else (cases[-1].timeline.occurred_at if cases else None)
    )
    names = periods.between(first, last) if first is not None and last is not None else []
    place = {name: index for index, name in enumerate(names)}

    def per_period(
        key: Callable[[Case], Iterable[str]], which: Iterable[Case] = cases
    ) -> dict[str, list[int]]:
        counted: dict[str, list[int]] = {}
        for case in which:
            index = place[periods.of(_when(case))]
            for value in key(case):
                counted.setdefault(value, [0] * len(names))[index] += 1
        return dict(sorted(counted.items()))

    coded = [case for case in cases if not case.categories(suggested)[1]]
    by_category = per_period(lambda c: c.categories(suggested)[0] or (NOT_CODED,), coded)
    by_domain = per_period(lambda c: _domains(c.categories(suggested)[0]) or (NOT_CODED,), coded)
    pairs = per_period(
        lambda c: (f"{c.timeline.department}\t{cat}" for cat in c.categories(suggested)[0]), coded
    )
    coded_by_department = per_period(lambda c: (c.timeline.department,), [c for c in cases if c.coding])
    return {
        "periods": names,
        "period_kind": periods.kind,
        "time_zone": str(periods.zone),
        "window": {"since": iso_or_none(since), "until": iso_or_none(until)},
        "complaints": per_period(lambda c: ("all",)).get("all", [0] * len(names)),
        "by_domain": {name: _trended(counts) for name, counts in by_domain.items()},
        "by_category": {name: _trended(counts) for name, counts in by_category.items()},
        "by_category_suggested": per_period(
            lambda c: c.categories(suggested)[0], [c for c in cases if c.categories(suggested)[1]]
        ),
        "by_department": per_period(lambda c: (c.timeline.department,)),
        "by_channel": per_period(lambda c: (c.timeline.channel,)),
        "by_tier": per_period(lambda c: (c.timeline.tier or "none",)),
        "recurring": recurring(pairs, coded_by_department, names),
        "times": {name: _times(cases, place, periods, key) for name, key in TIMES.items()},
        "harassment": _harassment(cases),
        "callbacks": _callbacks(cases),
        "agreement": {category: agreement(cases, category) for category in CATEGORIES},
        "safety_events": {
            "staff_reports": per_period(lambda c: ("all",) if c.staff_report else ()).get("all", []),
            "linked": per_period(lambda c: ("all",) * len(c.adverse_events)).get("all", []),
        },
        "notices": [_notice(n, cases, periods, names) for n in sorted(notices, key=_notice_order)],
    }


def _when(case: Case) -> datetime:
    assert case.timeline.occurred_at is not None  # only complaints with an occurrence are analysed
    return case.timeline.occurred_at


def _domains(categories: Iterable[str]) -> tuple[str, ...]:
    found = {DOMAIN_OF[c] for c in categories}
    return tuple(domain for domain in HCAT_DOMAINS if domain in found)


def trend(counts: Sequence[int]) -> dict[str, Any]:
    half = len(counts) // 2
    earlier, later = sum(counts[:half]), sum(counts[len(counts) - half :])
    word = "rising" if later > earlier else "falling" if later < earlier else "steady"
    return {"earlier": earlier, "later": later, "trend": word}


def _trended(counts: list[int]) -> dict[str, Any]:
    return {"counts": counts, **trend(counts)}


def recurring(
    pairs: Mapping[str, list[int]], coded: Mapping[str, list[int]], names: Sequence[str]
) -> list[dict[str, Any]]:
    """``pairs``: per "department<TAB>category", its coded complaints per period; ``coded``: per
    department, its coded complaints per period. See the module's rules."""
    totals = [sum(counts[index] for counts in coded.values()) for index in range(len(names))]
    in_category: dict[str, list[int]] = {}
    for key, counts in pairs.items():
        category = key.split("\t")[1]
        summed = in_category.setdefault(category, [0] * len(names))
        in_category[category] = [a + b for a, b in zip(summed, counts, strict=True)]
    found = []
    for key, counts in pairs.items():
        department, category = key.split("\t")
        own = coded.get(department, [0] * len(names))
        others = sum(totals) - sum(own)
        share = (sum(in_category[category]) - sum(counts)) / others if others else None
        baseline = [None if share is None else own[t] * share for t in range(len(names))]
        above = [
            b is not None and count > b + ABOVE_SIGMAS * math.sqrt(b)
            for count, b in zip(counts, baseline, strict=True)
        ]
        run = _longest_run(above)
        if run is None or run[1] - run[0] < RECUR_RUN:
            continue
        first, end = run
        found.append(
            {
                "department": department,
                "category": category,
                "counts": counts,
                "baseline": [None if b is None else round(b, 2) for b in baseline],
                "run": {"periods": end - first, "first": names[first], "last": names[end - 1]},
                "ongoing": end == len(names),
            }
            | trend(counts)
        )
    return sorted(
        found,
        key=lambda r: (
            not r["ongoing"],
            -r["run"]["periods"],
            r["earlier"] - r["later"],
            r["department"],
            r["category"],
        ),
    )


def _longest_run(flags: Sequence[bool]) -> tuple[int, int] | None:
    """The [first, end) of the longest run of True (the latest of equal ones), or None."""
    best: tuple[int, int] | None = None
    first = None
    for index, flag in enumerate([*flags, False]):
        if flag and first is None:
            first = index
        elif not flag and first is not None:
            if best is None or index - first >= best[1] - best[0]:
                best = (first, index)
            first = None
    return best


def _feedback_seconds(case: Case) -> float | None:
    t = case.timeline
    return (t.feedback_at - t.occurred_at).total_seconds() if t.feedback_at and t.occurred_at else None


TIMES: dict[str, Callable[[Case], float | None]] = {
    "first_response": lambda case: case.timeline.first_response_seconds,
    "feedback": _feedback_seconds,
}


def _times(
    cases: Sequence[Case], place: dict[str, int], periods: Periods, key: Callable[[Case], float | None]
) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, Any]:
        return {"count": len(values), "median": nearest_rank(values, 0.5), "p90": nearest_rank(values, 0.9)}

    each: list[list[float]] = [[] for _ in place]
    for case in cases:
        seconds = key(case)
        if seconds is not None:
            each[place[periods.of(_when(case))]].append(seconds)
    return {"all": stats([s for values in each for s in values]), "per_period": [stats(v) for v in each]}


def _harassment(cases: Sequence[Case]) -> dict[str, Any]:
    assessed = [c.harassment for c in cases if c.harassment is not None]
    judged = sum(assessed)
    return {"assessed": len(assessed), "harassment": judged, "share": _share(judged, len(assessed))}


def _callbacks(cases: Sequence[Case]) -> dict[str, Any]:
    scores = [score for c in cases for score in c.satisfaction]
    resolved = sum(r for c in cases for r in c.resolved)
    mean = round(sum(scores) / len(scores), 2) if scores else None
    counted = Counter(scores)
    return {
        "completed": len(scores),
        "mean_satisfaction": mean,
        "by_satisfaction": {str(score): counted[score] for score in range(1, 6)},
        "resolved": resolved,
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _notice_order(notice: Notice) -> tuple[datetime, str]:
    return notice.issued_at, notice.notice_id


def afterwards(before: int | None, after: int | None) -> str | None:
    """What complaints of a notice's categories did in its departments after it: "fell", "rose" or
    "unchanged"; None while too early to compare."""
    if before is None or after is None:
        return None
    return "fell" if after < before else "rose" if after > before else "unchanged"


def _notice(notice: Notice, cases: Sequence[Case], periods: Periods, names: list[str]) -> dict[str, Any]:
    issued = periods.of(notice.issued_at)
    index = names.index(issued) if issued in names else None
    span = min(NOTICE_SPAN, index, len(names) - 1 - index) if index is not None else 0
    departments = {}
    for department in sorted(notice.departments):
        counts = [0] * len(names)
        for case in cases:
            concerned = set(case.coding.present()) & set(notice.categories) if case.coding else set()
            if case.timeline.department == department and concerned:
                counts[names.index(periods.of(_when(case)))] += 1
        assert index is not None or span == 0
        before = sum(counts[index - span : index]) if span and index is not None else None
        after = sum(counts[index + 1 : index + 1 + span]) if span and index is not None else None
        departments[department] = {
            "responsible": notice.responsible.get(department),
            "read": sorted(notice.reads.get(department, []), key=lambda r: (r["at"], r["by"])),
            "answer": notice.answers.get(department),
            "overdue": department in notice.overdue,
            "complaints_before": before,
            "complaints_after": after,
            "afterwards": afterwards(before, after),
        }
    return {
        "notice_id": notice.notice_id,
        "complaint_id": notice.complaint_id,
        "issued_at": iso_or_none(notice.issued_at),
        "issued_by": notice.issued_by,
        "due_at": iso_or_none(notice.due_at),
        "categories": sorted(notice.categories, key=CATEGORIES.index),
        "period": issued,
        "periods_compared": span,
        "departments": departments,
    }
