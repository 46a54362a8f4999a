"""What the chaos run judges from the record, fault by fault, and the table it prints."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.chaos_load import Call, Readiness
from kizuki.audit import RecordEntry
from tests.e2e.conftest import FLOW_COUNTS

FLOW_BACK = (
    "flow back: from the fault to the EscalationStarted of the first complaint posted after it that "
    "intake accepted (recorded_at on the record); ready: from the fault to the first probe at which "
    "every service's /ready answered 200 again after failing (0: none failed)"
)

GIVEN_UP = ("ComplainantNotAcknowledged", "NotificationNotDelivered", "NotificationFailed")


@dataclass
class FaultRun:
    """A fault as it ran: its name, what it did, when it began and ended (wall clock)."""

    name: str
    what: str
    started: float
    ended: float


@dataclass
class Window:
    name: str
    started: float
    until: float
    accepted: int = 0
    complete: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    not_accepted: int = 0
    flow_back: float | None = None
    ready: float | None = None
    slowest: float | None = None
    sent_again: int = 0


def recorded_at(entry: RecordEntry) -> float:
    return datetime.fromisoformat(entry.body["recorded_at"]).timestamp()


def analyse(
    calls: list[Call], record: list[RecordEntry], faults: list[FaultRun], readiness: Readiness, end: float
) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    started_at: dict[str, float] = {}
    # idempotency key -> the complaint, and when each attempt under the key was recorded
    attempts: dict[str, tuple[str, list[float]]] = {}
    for entry in record:
        if entry.complaint_id is not None:
            counts[entry.complaint_id][entry.event_type] += 1
        if entry.event_type == "EscalationStarted" and entry.complaint_id is not None:
            started_at.setdefault(entry.complaint_id, recorded_at(entry))
        if entry.event_type == "NotificationAttempted":
            key = entry.body["idempotency_key"]
            attempts.setdefault(key, (str(entry.complaint_id), []))[1].append(recorded_at(entry))
    # A delivery attempted again under the same key: what the README's window allows after a crash.
    # It counts in the window of its first attempt, the one in doubt.
    sent_again = {key: sorted(times) for key, (_, times) in attempts.items() if len(times) > 1}
    again_per_complaint: Counter[str] = Counter()
    for key, times in sent_again.items():
        again_per_complaint[attempts[key][0]] += len(times) - 1
    first = faults[0].started if faults else end
    bounds = [("before any fault", calls[0].sent_at if calls else first, first)]
    bounds += [
        (f.name, f.started, faults[i + 1].started if i + 1 < len(faults) else end)
        for i, f in enumerate(faults)
    ]
    windows = []
    for name, since, until in bounds:
        window = Window(name, since, until)
        mine = [call for call in calls if since <= call.sent_at and (until == end or call.sent_at < until)]
        for call in mine:
            if call.complaint_id is None:
                window.not_accepted += 1
                continue
            window.accepted += 1
            seen = counts[call.complaint_id]
            if all(seen[kind] >= count for kind, count in FLOW_COUNTS.items()):
                window.complete += 1
            else:
                window.lost.append(call.complaint_id)
            # One more NotificationAttempted per delivery attempted again under its key is the window
            # the README states, not a duplicate; anything else above the flow's count is.
            again = again_per_complaint[call.complaint_id]
            allowed = FLOW_COUNTS + Counter({"NotificationAttempted": again})
            if any(seen[kind] > count for kind, count in allowed.items()):
                window.duplicated.append(call.complaint_id)
            if call.complaint_id in started_at and window.flow_back is None:
                window.flow_back = started_at[call.complaint_id] - since
            if call.complaint_id in started_at:
                delay = started_at[call.complaint_id] - call.sent_at
                window.slowest = max(window.slowest or 0.0, delay)
        window.ready = readiness.ready_again(since, until if until < end else float("inf"))
        window.sent_again = sum(1 for times in sent_again.values() if _interrupted_by(times, bounds) == name)
        windows.append(window)
    accepted = {call.complaint_id for call in calls if call.complaint_id is not None}
    received = {e.complaint_id for e in record if e.event_type == "ComplaintReceived" and e.complaint_id}
    event_ids = Counter(str(entry.body.get("event_id")) for entry in record)
    other = Counter(
        entry.event_type
        for entry in record
        if entry.complaint_id in accepted and entry.event_type not in FLOW_COUNTS
    )
    last = max((recorded_at(e) for e in record if e.complaint_id in accepted), default=end)
    missing: Counter[str] = Counter()
    for window in windows:
        for complaint_id in window.lost:
            missing.update(kind for kind, count in FLOW_COUNTS.items() if counts[complaint_id][kind] < count)
    given_up = Counter(
        f"{entry.event_type}: {entry.body.get('reason')}"
        for entry in record
        if entry.complaint_id in accepted and entry.event_type in GIVEN_UP
    )
    unexplained = [
        key
        for key, times in sent_again.items()
        if not any(times[0] <= since <= times[1] for _, since, _ in bounds[1:])
    ]
    return {
        "windows": windows,
        "sent_again_with_no_fault_between": len(unexplained),
        "caught_up": last - end,
        "accepted": len(accepted),
        "calls": len(calls),
        "lost": sum(len(window.lost) for window in windows),
        "duplicated": sum(len(window.duplicated) for window in windows),
        "event_ids_twice": sum(count - 1 for count in event_ids.values() if count > 1),
        "received_not_answered": len(received - accepted),
        "other_events": dict(other),
        "missing": dict(missing),
        # what intake last answered each complaint it never accepted (0: no answer), and how often tried
        "refused": [(call.key, call.status, call.tries) for call in calls if call.complaint_id is None],
        "given_up": dict(given_up),
        "sent_again": {key: len(times) for key, times in sent_again.items()},
    }


def _interrupted_by(times: list[float], bounds: list[tuple[str, float, float]]) -> str:
    """The fault that came between a delivery's first attempt and the next under the same key; with
    none between, the window of the first attempt."""
    between = [name for name, since, _ in bounds[1:] if times[0] <= since <= times[1]]
    if between:
        return between[0]
    return next(name for name, since, until in reversed(bounds) if since <= times[0])


def _ready(window: Window) -> str:
    """Still failing when the next fault came: longer than the window, shown as such."""
    return f">{window.until - window.started:.0f}" if window.ready is None else f"{window.ready:.1f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(analysis: dict[str, Any], faults: list[FaultRun]) -> list[str]:
    lines = [
        f"{'fault':<34}{'accepted':>9}{'complete':>9}{'lost':>5}{'dup':>4}{'refused':>8}"
        f"{'flow back s':>12}{'ready s':>8}{'slowest s':>10}{'sent again':>11}"
    ]
    for window in analysis["windows"]:
        lines.append(
            f"{window.name:<34}{window.accepted:>9}{window.complete:>9}{len(window.lost):>5}"
            f"{len(window.duplicated):>4}{window.not_accepted:>8}{_seconds(window.flow_back):>12}"
            f"{_ready(window):>8}{_seconds(window.slowest):>10}{window.sent_again:>11}"
        )
    lines.append("")
    for fault in faults:
        lines.append(f"  {fault.name}: {fault.what}")
    return lines
