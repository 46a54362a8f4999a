"""The report's three forms: a table for people, one JSON document, CSV with one row a complaint."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from typing import TextIO

from kizuki.report import TRACKS, Timeline, summary


def print_json(found: list[Timeline], period: dict[str, str | None], out: TextIO) -> None:
    report = {"period": period, "complaints": [t.row() for t in found], "summary": summary(found)}
    print(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True), file=out)


def print_csv(found: list[Timeline], out: TextIO) -> None:
    """One row a complaint; the period's figures are in the table and the JSON."""
    columns = list(Timeline("").row())
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for timeline in found:
        writer.writerow(timeline.row())


def print_table(found: list[Timeline], period: dict[str, str | None], out: TextIO) -> None:
    def when(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"

    print(f"period: {period['since'] or 'the start'} to {period['until'] or 'the end'}", file=out)
    header = ("complaint", "occurred (UTC)", "registered", "supervisor reached", "acknowledged",
              "executive (hearer)", "executive (supervisor)", "first response", "feedback", "callbacks",
              "closed", "corrective measure (responsible)")  # fmt: skip
    print(f"{header[0]:<36}  " + "  ".join(f"{name:<24}" for name in header[1:]).rstrip(), file=out)
    for t in found:
        response = when(t.first_response_at)
        if t.first_response_within_window is not None:
            response += " ok" if t.first_response_within_window else " late"
        cells = (
            when(t.occurred_at),
            when(t.registered_at),
            when(t.supervisor_reached_at),
            when(t.acknowledged_at),
            *(when(t.executive_reached_at.get(track)) for track in TRACKS),
            response,
            when(t.feedback_at),
            f"{t.callbacks_completed}/{t.callbacks_scheduled} done"
            + (f", {t.callbacks_overdue} overdue" if t.callbacks_overdue else "")
            + (f", reopened {t.reopened}" if t.reopened else ""),
            when(t.closed_at),
            f"{t.corrective_measure} ({t.responsible})" if t.corrective_measure is not None else "-",
        )
        print(f"{t.complaint_id:<36}  " + "  ".join(f"{cell:<24}" for cell in cells).rstrip(), file=out)
    figures = summary(found)
    print(f"\ncomplaints: {figures['complaints']}", file=out)
    for kind, counted in figures["duties_on_time"].items():
        share = f"{counted['share']:.0%}"
        print(f"  {kind:<28} on time {counted['on_time']}/{counted['owed']} ({share})", file=out)
    missed = ", ".join(
        f"{role} {count}" for role, count in figures["missed_reporting_duties_by_role"].items()
    )
    print(f"missed reporting duties by role: {missed or 'none'}", file=out)
    unreached = ", ".join(
        f"{person} {count}" for person, count in figures["alerts_not_delivered_by_recipient"].items()
    )
    print(f"alerts that reached no one, by recipient: {unreached or 'none'}", file=out)
    times = figures["first_response_seconds"]
    print(
        f"first response after occurrence: median {_minutes(times['median'])}, p90 {_minutes(times['p90'])}"
        f" ({times['count']} responses, {figures['first_responses_within_window']} within the window)",
        file=out,
    )
    for name in ("tier", "channel", "department"):
        counts = ", ".join(f"{key} {count}" for key, count in figures[f"by_{name}"].items())
        print(f"by {name}: {counts or 'none'}", file=out)


def _minutes(seconds: float | None) -> str:
    return f"{seconds / 60:.1f} min" if seconds is not None else "-"
