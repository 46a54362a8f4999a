"""`kizuki analysis`: what patients complain about, rebuilt from the record alone.

Each complaint's facts come from the audit report's timeline (times, department, channel, tier); this
adds what the learning needs: the case's HCAT coding (its latest coding that is not a blind second
coder's), the blind codings (for agreement), the harassment assessment, the callbacks' satisfaction,
the safety-event links, and the learning notices with their reads, answers and overdue departments.
Nothing here depends on the clock or on dictionary order: the same record gives the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kizuki.audit import RecordMessage
from kizuki.report import Rebuild, Timeline
from shared.events import HCAT_DOMAINS, HcatCategory
from shared.policy import HcatPolicy

CATEGORIES: tuple[HcatCategory, ...] = tuple(c for categories in HCAT_DOMAINS.values() for c in categories)
DOMAIN_OF: dict[str, str] = {c: domain for domain, categories in HCAT_DOMAINS.items() for c in categories}
NOT_CODED = "not_coded"
READ = frozenset(
    {
        "ComplaintReceived",
        "CaseCoded",
        "HarassmentAssessed",
        "CallbackCompleted",
        "SafetyEventLinked",
        "LearningNoticeIssued",
        "LearningNoticeRead",
        "LearningNoticeAnswered",
        "LearningNoticeOverdue",
    }
)


@dataclass(frozen=True)
class Coding:
    coded_by: str
    severities: dict[str, int]
    harm: int
    stage: str

    def present(self) -> tuple[str, ...]:
        """The categories the coder found in the complaint (severity 1 or more), in HCAT order."""
        return tuple(c for c in CATEGORIES if self.severities.get(c, 0) > 0)

    def severity(self, category: str) -> int:
        return self.severities.get(category, 0)


@dataclass
class Case:
    """One complaint as the analysis sees it."""

    timeline: Timeline
    hospital_category: str | None = None
    coding: Coding | None = None  # the case's own: its latest coding that is not blind
    blind: list[Coding] = field(default_factory=list)
    harassment: bool | None = None  # the latest assessment, if any
    satisfaction: list[int] = field(default_factory=list)
    resolved: list[bool] = field(default_factory=list)
    adverse_events: list[str] = field(default_factory=list)  # linked adverse-event (staff) reports

    @property
    def staff_report(self) -> bool:
        return self.timeline.channel == "staff_report"

    def categories(self, suggested: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
        """The HCAT categories the case counts in, and whether they are only the policy's suggestion
        (the hospital's category mapped onto HCAT, for a case nobody has coded yet)."""
        if self.coding is not None:
            return self.coding.present(), False
        mapped = suggested.get((self.hospital_category or "").casefold())
        return ((mapped,), True) if mapped in DOMAIN_OF else ((), False)


@dataclass
class Notice:
    """A learning notice and what each department did with it."""

    notice_id: str
    complaint_id: str
    issued_at: datetime
    issued_by: str
    departments: list[str]
    responsible: dict[str, str]
    categories: list[str]
    due_at: datetime
    reads: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    overdue: list[str] = field(default_factory=list)


class AnalysisRebuild:
    """Feed it the record in order; then ask for the cases and the notices."""

    def __init__(self) -> None:
        self.timelines = Rebuild()
        self.cases: dict[str, Case] = {}
        self.notices: dict[str, Notice] = {}

    def add(self, message: RecordMessage) -> None:
        self.timelines.add(message)
        kind = message.headers.get("Kizuki-Event-Type")
        complaint_id = message.headers.get("Kizuki-Complaint-Id")
        if message.data is None or kind not in READ or complaint_id is None:
            return
        event = json.loads(message.data)
        case = self.cases.get(complaint_id)
        if case is None:
            timeline = self.timelines.found.setdefault(complaint_id, Timeline(complaint_id))
            case = self.cases[complaint_id] = Case(timeline)
        if kind == "ComplaintReceived":
            case.hospital_category = event.get("category")
        elif kind == "CaseCoded":
            coding = Coding(event["coded_by"], event["severities"], event["harm"], event["stage"])
            if event["blind"]:
                case.blind.append(coding)
            else:
                case.coding = coding
        elif kind == "HarassmentAssessed":
            case.harassment = event["is_harassment"]
        elif kind == "CallbackCompleted":
            case.satisfaction.append(event["satisfaction"])
            case.resolved.append(event["resolved"])
        elif kind == "SafetyEventLinked":
            case.adverse_events.append(event["adverse_event_id"])
        else:
            self._notice(kind, event)

    def _notice(self, kind: str, event: dict[str, Any]) -> None:
        notice_id = event["notice_id"]
        if kind == "LearningNoticeIssued":
            self.notices[notice_id] = Notice(
                notice_id,
                event["complaint_id"],
                _time(event["occurred_at"]),
                event["issued_by"],
                event["departments"],
                event["responsible"],
                event["categories"],
                _time(event["due_at"]),
            )
            return
        notice = self.notices.get(notice_id)
        if notice is None:  # an answer to a notice the record does not hold: nothing to attach it to
            return
        department, at = event["department"], _time(event["occurred_at"]).isoformat()
        if kind == "LearningNoticeRead":
            notice.reads.setdefault(department, []).append({"by": event["read_by"], "at": at})
        elif kind == "LearningNoticeAnswered":
            notice.answers[department] = {
                "by": event["answered_by"],
                "answer": event["answer"],
                "reason": event.get("reason"),
                "at": at,
            }
        elif department not in notice.overdue:
            notice.overdue.append(department)

    def found(self, since: datetime | None = None, until: datetime | None = None) -> list[Case]:
        """The complaints that occurred in [since, until), in order of occurrence."""
        chosen = self.timelines.timelines(since, until)
        return [self.cases.get(t.complaint_id) or Case(t) for t in chosen]


def suggested_categories(hcat: HcatPolicy) -> dict[str, str]:
    """The policy's `[hcat.map]` (hospital category, compared without case, as the case view compares
    it -> HCAT category): a label "suggested" for cases not yet coded, never counted as a coding."""
    return {own.casefold(): category for own, category in sorted(hcat.map.items())}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
