"""The analysis in three forms: a table for people, one JSON document, and CSV (one figure a row)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from kizuki.analysis_figures import ABOVE_SIGMAS, RECUR_RUN
from kizuki.report_forms import duration, inert

COUNTED = ("by_domain", "by_category", "by_category_suggested", "by_department", "by_channel", "by_tier")
RULES = f"""\
rules
  categories: the case's latest coding that is not a blind one (severity 1 or more); "not_coded" when
    no one has coded it; "suggested": the policy's mapping of the hospital's category, for uncoded cases.
  trend: the later half of the periods against the earlier half (the middle one left out if odd).
  recurring: the category in the department above its baseline for {RECUR_RUN} or more periods
    running; the baseline is the department's coded complaints that period times the category's
    share of the other departments' coded complaints over the window, and "above" is more than
    baseline + {ABOVE_SIGMAS} * sqrt(baseline); runs that reach the last period first, then the
    longest, then the largest rise.
  times: from when the complaint occurred; median and p90 (nearest rank).
  agreement: Cohen's kappa of each blind second coding against the case's coding, per category:
    present/absent, and severity 0-3 with linear weights; "-" when there are no pairs or chance
    explains every agreement.
  notices: complaints of the notice's categories in each department, in the periods before the one it
    was issued in and as many after, and whether they fell, rose or stayed unchanged: counts side by
    side, not a proof that the notice caused a change."""


def print_json(figures: dict[str, Any], out: TextIO) -> None:
    print(json.dumps(figures, ensure_ascii=False, indent=2, sort_keys=True), file=out)


def rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(section, key, period, value): counts one row a period, everything else one row a figure."""
    periods = figures["periods"]
    for count, period in zip(figures["complaints"], periods, strict=True):
        yield "complaints", "all", period, count
    for section in COUNTED:
        for key, counted in figures[section].items():
            counts = counted["counts"] if isinstance(counted, dict) else counted
            for count, period in zip(counts, periods, strict=True):
                yield section, key, period, count
    for section in ("recurring", "times", "harassment", "callbacks", "agreement", "safety_events", "notices"):
        for key, value in _flat(figures[section]):
            yield section, key, "", value


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _flat(value[key], f"{path}/{key}" if path else str(key))
    elif isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        for index, item in enumerate(value):
            yield from _flat(item, f"{path}/{index}" if path else str(index))
    else:
        yield path, " ".join(map(str, value)) if isinstance(value, list) else value


def print_csv(figures: dict[str, Any], out: TextIO) -> None:
    """No cell (a department's name, a reason a notice does not apply) can run as a formula."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("section", "key", "period", "value"))
    for row in rows(figures):
        writer.writerow(tuple(inert(cell) for cell in row))


def print_table(figures: dict[str, Any], out: TextIO) -> None:
    periods: list[str] = figures["periods"]
    window = figures["window"]
    print(
        f"analysis: {window['since'] or 'the start'} to {window['until'] or 'the end'}, per "
        f"{figures['period_kind']} ({figures['time_zone']})",
        file=out,
    )

    def grid(title: str, counted: dict[str, Any]) -> None:
        print(f"\n{title:<32}" + "".join(f"{p:>9}" for p in periods) + "    trend", file=out)
        for key, value in counted.items():
            counts = value["counts"] if isinstance(value, dict) else value
            change = trend_words(value) if isinstance(value, dict) else ""
            print(f"  {key:<30}" + "".join(f"{c:>9}" for c in counts) + f"    {change}", file=out)

    grid("complaints", {"all": figures["complaints"]})
    for section in COUNTED:
        if figures[section]:
            grid(section.replace("_", " "), figures[section])
    print(
        f"\nrecurring in one department (above its baseline {RECUR_RUN} or more periods running):", file=out
    )
    for row in figures["recurring"]:
        run = row["run"]
        ongoing = ", to date" if row["ongoing"] else ""
        baseline = " ".join("-" if b is None else f"{b:g}" for b in row["baseline"])
        print(
            f"  {row['category']} in {row['department']}: above its baseline {run['periods']} periods "
            f"running ({run['first']} to {run['last']}{ongoing}), {trend_words(row)}; counts "
            f"{' '.join(map(str, row['counts']))}; baseline {baseline}",
            file=out,
        )
    if not figures["recurring"]:
        print("  none", file=out)
    for name, times in figures["times"].items():
        every = times["all"]
        print(
            f"{name.replace('_', ' ')} after occurrence: median {duration(every['median'])}, "
            f"p90 {duration(every['p90'])} ({every['count']})",
            file=out,
        )
    harassment, callbacks = figures["harassment"], figures["callbacks"]
    share = f"{harassment['share']:.0%}" if harassment["share"] is not None else "-"
    print(
        f"harassment assessments: {harassment['assessed']}, judged harassment {harassment['harassment']} "
        f"({share})",
        file=out,
    )
    print(
        f"callbacks completed: {callbacks['completed']}, mean satisfaction "
        f"{callbacks['mean_satisfaction'] or '-'} of 5, resolved {callbacks['resolved']}",
        file=out,
    )
    print("\nagreement of blind codings (Cohen's kappa)   pairs  present  severity (linear)", file=out)
    for category, agreement in figures["agreement"].items():
        print(
            f"  {category:<42}{agreement['pairs']:>6}  {_number(agreement['kappa_present']):>7}  "
            f"{_number(agreement['kappa_severity_linear']):>8}",
            file=out,
        )
    safety = figures["safety_events"]
    print(
        f"\nsafety events: {sum(safety['staff_reports'])} staff reports, {sum(safety['linked'])} complaints "
        "linked to one",
        file=out,
    )
    for notice in figures["notices"]:
        print_notice(notice, figures["period_kind"], out)
    print("\n" + RULES, file=out)


def print_notice(notice: dict[str, Any], period_kind: str, out: TextIO) -> None:
    print(
        f"\nlearning notice {notice['notice_id']} ({', '.join(notice['categories'])}), issued "
        f"{notice['issued_at']} by {notice['issued_by']}, due {notice['due_at']}",
        file=out,
    )
    span = notice["periods_compared"]
    for department, state in notice["departments"].items():
        read = ", ".join(f"{r['by']} {r['at']}" for r in state["read"]) or "not read"
        answer = state["answer"]
        answered = (
            "no answer" if answer is None else f"{answer['answer'].replace('_', ' ')} by {answer['by']}"
        )
        if answer is not None and answer["reason"]:
            answered += f" ({answer['reason']})"
        overdue = ", overdue" if state["overdue"] else ""
        change = (
            f"{state['complaints_before']} in the {span} {period_kind}s before, "
            f"{state['complaints_after']} in the {span} after: {state['afterwards']}"
            if span
            else "too early to compare"
        )
        print(
            f"  {department} ({state['responsible']}): read: {read}; {answered}{overdue}; "
            f"complaints of these categories: {change}",
            file=out,
        )


def trend_words(row: dict[str, Any]) -> str:
    return f"{row['trend']} ({row['earlier']} -> {row['later']})"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
