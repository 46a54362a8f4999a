"""The report's three forms: a table for people, one JSON document, CSV with one row a complaint."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any, TextIO

from kizuki.report import TRACKS, Timeline, summary
from shared.duty_status import STATUSES

# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
STATUS_WORDS = {status: status.replace("_", " ") for status in STATUSES}
LEGEND = """\
legend
  occurred, registered, ... closed: when each happened (UTC); "-" not yet.
  first response: the apology call that reached the patient; "ok" within the window from when the
    complaint occurred, "late" after it.
  duties, as of {as_of} (the record's last event):
    on time      done by its deadline
    late         done after its deadline
    missed       a reporting duty (the supervisor's or the first hearer's) past its deadline and not
                 done: the only status that names a person, the one who owed it
    overdue      the apology call or the feedback, past its deadline and still to be done
    not yet due  not done, its deadline still ahead
  "on time, of those due" counts only the duties done or past their deadline."""


def print_json(found: list[Timeline], period: dict[str, str | None], out: TextIO) -> None:
    report = {"period": period, "complaints": [t.row() for t in found], "summary": summary(found)}
    print(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True), file=out)


def print_csv(found: list[Timeline], out: TextIO) -> None:
    """One row a complaint; the period's figures are in the table and the JSON. No cell of free text
    can run as a formula when the file is opened in a spreadsheet."""
    columns = list(Timeline("").row())
    # Rows end in CRLF (RFC 4180): a field holding a bare CR is then quoted too, not split in two.
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for timeline in found:
        writer.writerow({column: inert(value) for column, value in timeline.row().items()})


def inert(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, made plain text by a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def print_table(found: list[Timeline], period: dict[str, str | None], out: TextIO) -> None:
    def when(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"

    print(f"period: {period['since'] or 'the start'} to {period['until'] or 'the end'}", file=out)
    header = ("complaint", "occurred (UTC)", "registered", "supervisor reached", "acknowledged",
              "executive (hearer)", "executive (supervisor)", "first response", "feedback", "callbacks",
              "closed", "duties", "corrective measure (responsible)")  # fmt: skip
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
            _duties(t),
            f"{t.corrective_measure} ({t.responsible})" if t.corrective_measure is not None else "-",
        )
        print(f"{t.complaint_id:<36}  " + "  ".join(f"{cell:<24}" for cell in cells).rstrip(), file=out)
    figures = summary(found)
    print(f"\ncomplaints: {figures['complaints']}", file=out)
    columns = ("owed", *(STATUS_WORDS[status] for status in STATUSES))
    print(
        f"  {'duty':<28}" + "".join(f"{name:>13}" for name in columns) + "  on time, of those due", file=out
    )
    for kind, counted in figures["duties_on_time"].items():
        share = f"{counted['share']:.0%}" if counted["share"] is not None else "- (none due yet)"
        numbers = (counted["owed"], *(counted[status] for status in STATUSES))
        print(f"  {kind:<28}" + "".join(f"{number:>13}" for number in numbers) + f"  {share}", file=out)
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
        f"first response after occurrence: median {duration(times['median'])}, p90 {duration(times['p90'])}"
        f" ({times['count']} responses, {figures['first_responses_within_window']} within the window)",
        file=out,
    )
    for name in ("tier", "channel", "department"):
        counts = ", ".join(f"{key} {count}" for key, count in figures[f"by_{name}"].items())
        print(f"by {name}: {counts or 'none'}", file=out)
    as_of = datetime.fromisoformat(figures["as_of"]) if figures["as_of"] else None
    print("\n" + LEGEND.format(as_of=f"{when(as_of)} UTC" if as_of else "the record's end"), file=out)


def _duties(timeline: Timeline) -> str:
    counted = Counter(timeline.statuses().values())
    return ", ".join(f"{counted[status]} {STATUS_WORDS[status]}" for status in STATUSES if counted[status])


def duration(seconds: float | None) -> str:
    """As a person reads it: "40 s", "47 min", "3 h 10 min", "9.6 days"."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{seconds / 86400:.1f} days"
