"""The console's own figures for /metrics: the duties still owed in open cases, and those past their
due time, by kind. Counted from the read model when scraped, never kept as counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from prometheus_client.core import Metric

from services.console.application import ConsoleApplication
from services.console.domain import Case
from shared.metrics import Measure, gauge
from shared.policy import DUTY_KINDS
from shared.timers import now


def owed_duties(cases: Iterable[Case], at: datetime) -> tuple[Counter[str], Counter[str]]:
    """Open duties by kind, and those of them overdue at ``at`` (a reporting duty's are missed); every
    kind is counted, none owed included, so that a series never vanishes."""
    owed: Counter[str] = Counter(dict.fromkeys(DUTY_KINDS, 0))
    overdue = owed.copy()
    for case in cases:
        if case.closed_at is not None:
            continue
        for duty in case.duties.values():
            if duty.is_open:
                owed[duty.kind] += 1
                if at >= duty.due_at:
                    overdue[duty.kind] += 1
    return owed, overdue


def duty_figures(store: ConsoleApplication) -> Measure:
    def measure() -> list[Metric]:
        owed, overdue = store.read(lambda cases: owed_duties(cases.values(), now()))
        return [
            gauge("kizuki_duties_open", "Duties still owed in open cases, by kind", ["kind"], _by_kind(owed)),
            gauge(
                "kizuki_duties_overdue",
                "Duties still owed past their due time, by kind (a reporting duty's are missed)",
                ["kind"],
                _by_kind(overdue),
            ),
        ]

    return measure


def _by_kind(counts: Counter[str]) -> list[tuple[tuple[str], float]]:
    return [((kind,), count) for kind, count in sorted(counts.items())]
