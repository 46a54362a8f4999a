"""`make bench`: how fast, against the limit of the bus on this machine, measured in one run.

Prints a table and writes every figure to var/bench/results.json. Never part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.audit import SOURCES, VERIFY_GOAL_PER_SECOND, audit_reading
from bench.baseline import CLIENTS, bus_baseline
from bench.console import console_at_scale, console_table
from bench.end_to_end import SCRAPE_SECONDS, end_to_end
from bench.fsync import fsync_cost, fsync_lines
from bench.growth import GROWTH_RATES, growth, growth_lines
from bench.timers import pending_timers
from bench.traces import traces_cost, traces_lines
from kizuki.processes import nats_server_binary

# The rate at which metrics on and off are compared.
METRICS_RATE = 100
METRICS_PAIRS = 2
# What the system is to reach on this machine (issue 20), printed beside what it did.
GOAL_SUSTAINED_PER_SECOND = 100
GOAL_CPU_MS_PER_COMPLAINT = 20.0
GOAL_RATE = 50
GOAL_P99_MS = {"EscalationStarted": 25.0, "first staff alert handed over": 100.0}
# The run at the goal rate lasts longer than the others: in 10 s (500 complaints) its p99 is the sixth
# worst, and runs of it varied by a third; in 30 s it is the sixteenth worst of 1,500.
GOAL_RUN_SECONDS = 30.0


def machine() -> dict[str, Any]:
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    nats = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True, check=True)
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "nats_server": nats.stdout.strip(),
        "nats_py": version("nats-py"),
        "eventsourcing": version("eventsourcing"),
    }


def table(results: dict[str, Any]) -> str:
    lines = [f"machine: {results['machine']}", ""]
    base = results["baseline"]["nats-py"]
    for client, bare in results["baseline"].items():
        lines.append(
            f"baseline ({client}, 3 hops){'':<{12 - len(client)}}max {bare['max_per_second']:>7.0f}/s "
            f"({bare['max_per_second'] / base['max_per_second']:.2f} x nats-py)   "
            f"at {bare['rate']}/s: p50 {bare['p50_ms']:.1f} ms  p99 {bare['p99_ms']:.1f} ms"
        )
    lines.append("")
    lines.append(
        f"{'end to end':<14}{'sent/s':>8}{'done/s':>8}  {'stage':<26}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
        f"{'x base p50':>11}  lost dup sustained"
    )
    for run in results["end_to_end"]:
        first = True
        for stage, figures in run["latency_ms"].items():
            head = (
                f"{run['label']:<14}{run['sent_per_second']:>8.0f}{run['completed_per_second']:>8.0f}"
                if first
                else " " * 30
            )
            tail = f"  {run['lost']:>4} {run['duplicated']:>3} {run['sustained']}" if first else ""
            ratio = figures["p50"] / base["p50_ms"] if base["p50_ms"] else 0.0
            lines.append(
                f"{head}  {stage:<26}{figures['p50']:>8.1f}{figures['p95']:>8.1f}{figures['p99']:>8.1f}"
                f"{ratio:>11.1f}{tail}"
            )
            first = False
    lines.append("")
    lines.append(
        "CPU per complaint, ms (all processes of the system; the machine has {} cores):".format(
            results["machine"]["cores"]
        )
    )
    for run in results["end_to_end"]:
        cpu = run["cpu_ms_per_complaint"]
        total = sum(cpu.values())
        ceiling = 1000 * results["machine"]["cores"] / total if total else 0.0
        events = run["events_per_complaint"]
        lines.append(
            f"  {run['label']:<14}"
            + "  ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
            + f"  = {total:.1f} ms, at most {ceiling:.0f}/s on this machine's cores"
            + f" ({events:.1f} events on the record each, {total / max(events, 1e-9):.2f} ms per event)"
        )
    lines.append("Messages the bus handled per complaint (stored by stream, delivered to each consumer):")
    for run in results["end_to_end"]:
        counted = run["bus_messages_per_complaint"]
        lines.append(
            f"  {run['label']:<14}"
            + "  ".join(f"{name} {count:.1f}" for name, count in counted.items())
            + f"  = {sum(counted.values()):.1f}"
        )
    highest = results["highest_sustained_per_second"]
    lines.append(
        f"highest rate sustained without a growing backlog: {highest:.0f}/s "
        f"({highest / base['max_per_second']:.2f} of the bare bus's {base['max_per_second']:.0f}/s)"
    )
    lines += goal_lines(results["end_to_end"], highest)
    on, off = ([sum(run.values()) for run in results["metrics_cost"][setting]] for setting in ("on", "off"))
    lines.append(
        f"metrics: CPU per complaint at {METRICS_RATE}/s in systems taking turns, on (scraped every "
        f"{SCRAPE_SECONDS:.0f} s) {' / '.join(f'{ms:.1f}' for ms in on)} ms, off "
        f"{' / '.join(f'{ms:.1f}' for ms in off)} ms ({(sum(on) - sum(off)) / sum(off):+.1%})"
    )
    timers = results["timers"]
    lines.append("")
    lines.append(
        f"timers: {timers['count']} pending, late by p50 {timers['late_p50_ms']:.0f} ms, "
        f"p99 {timers['late_p99_ms']:.0f} ms; nats-server memory +{timers['server_memory_mib']:.1f} MiB"
    )
    audit = results["audit"]
    export = audit["export"]
    lines.append("")
    lines.append(
        f"audit: {audit['events']} events on the stream (chained, signed and published at "
        f"{audit['chain_sign_publish_per_second']:.0f}/s); exported to a {export['bundle_mib']:.0f} MiB "
        f"bundle at {export['per_second']:.0f}/s, peak {export['peak_memory_mib']:.0f} MiB"
    )
    bare = audit["bare_read"]["per_second"]
    lines.append(
        f"a bare nats-py ordered consumer (JSON decoded) reads the stream at {bare:.0f}/s; "
        f"the goal for verify is {VERIFY_GOAL_PER_SECOND}/s"
    )
    lines.append(f"{'':<8}{'from':<8}{'events/s':>10}{'x bare':>8}{'x goal':>8}{'peak MiB':>10}")
    for task in ("verify", "report"):
        for source in SOURCES:
            reading = audit[f"{task}_{source}"]
            rate = reading["per_second"]
            lines.append(
                f"{task:<8}{source:<8}{rate:>10.0f}{rate / bare:>8.2f}{rate / VERIFY_GOAL_PER_SECOND:>8.2f}"
                f"{reading['peak_memory_mib']:>10.0f}"
            )
    lines.append("")
    lines += console_table(results["console"])
    if "traces" in results:
        lines += ["", *traces_lines(results["traces"])]
    lines += ["", *fsync_lines(results["fsync"])]
    if "growth" in results:
        lines += ["", *growth_lines(results["growth"])]
    return "\n".join(lines)


def goal_lines(runs: list[dict[str, Any]], highest: float) -> list[str]:
    """What the system did beside what it is to reach: the highest rate sustained, the least CPU per
    complaint of any run, and the tail latencies at the goal's rate (if a run was at that rate)."""
    least_cpu = min(sum(run["cpu_ms_per_complaint"].values()) for run in runs)
    lines = [
        "goals:",
        f"  highest rate sustained >= {GOAL_SUSTAINED_PER_SECOND}/s: {highest:.0f}/s",
        f"  CPU per complaint <= {GOAL_CPU_MS_PER_COMPLAINT:.0f} ms: {least_cpu:.1f} ms at best",
    ]
    at_goal_rate = next((run for run in runs if run["label"] == f"{GOAL_RATE}/s"), None)
    for stage, goal in GOAL_P99_MS.items():
        measured = (
            f"{at_goal_rate['latency_ms'][stage]['p99']:.0f} ms"
            if at_goal_rate
            else f"not measured (no run at {GOAL_RATE}/s)"
        )
        lines.append(f"  at {GOAL_RATE}/s, POST to {stage} p99 <= {goal:.0f} ms: {measured}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each end-to-end rate runs")
    parser.add_argument(
        "--goal-seconds",
        type=float,
        default=GOAL_RUN_SECONDS,
        help=f"how long the run at {GOAL_RATE}/s lasts, whose p99s the goals are held to",
    )
    parser.add_argument(
        "--rates", default=f"20,{GOAL_RATE},100,300", help="fixed rates per second, then as fast as it goes"
    )
    parser.add_argument("--timers", type=int, default=10_000, help="pending timers to measure")
    parser.add_argument(
        "--audit-events", type=int, default=1_000_000, help="events of the synthetic record audited"
    )
    parser.add_argument("--console-cases", type=int, default=10_000, help="open cases in the console")
    parser.add_argument(
        "--traces",
        type=int,
        metavar="RATE",
        default=METRICS_RATE,
        help="what traces cost: complaints at RATE/s, traces off then on (to a receiver it runs); 0 skips",
    )
    parser.add_argument(
        "--fsync-count", type=int, default=2000, help="publishes per setup measuring what fsync costs"
    )
    parser.add_argument(
        "--growth",
        default=GROWTH_RATES,
        metavar="RATES",
        help="on PostgreSQL, one process of each service then two of the busiest: these rates, then a "
        "search for the highest sustained ('' skips it)",
    )
    parser.add_argument("--out", default="var/bench/results.json")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": machine()}
    results["baseline"] = {client: asyncio.run(bus_baseline(client)) for client in CLIENTS}
    rates = [int(rate) for rate in args.rates.split(",") if rate]
    out = Path(args.out)
    system = out.parent / "system"  # the services' data and logs, kept for a look afterwards
    shutil.rmtree(system, ignore_errors=True)
    system.mkdir(parents=True)
    results["end_to_end"], results["highest_sustained_per_second"] = asyncio.run(
        end_to_end(rates, args.seconds, system, longer={GOAL_RATE: args.goal_seconds})
    )
    # What metrics cost: fresh systems at the same rate, metrics on (and scraped) and off, taking turns
    # (one run of each differed by 15 % that two pairs did not confirm: the noise is shown with them).
    results["metrics_cost"] = {"on": [], "off": []}
    for turn in range(METRICS_PAIRS):
        for setting in ("on", "off"):
            root = system / f"metrics-{setting}-{turn}"
            metrics = {"KIZUKI_METRICS": setting}
            runs, _ = asyncio.run(end_to_end([METRICS_RATE], args.seconds, root, 0, metrics))
            results["metrics_cost"][setting].append(runs[0]["cpu_ms_per_complaint"])
    results["timers"] = asyncio.run(pending_timers(args.timers))
    results["audit"] = asyncio.run(audit_reading(args.audit_events))
    console = out.parent / "console"  # from scratch: an earlier run's cases would crowd the new ones
    shutil.rmtree(console, ignore_errors=True)
    results["console"] = asyncio.run(console_at_scale(console, args.console_cases))
    if args.traces:
        traced = out.parent / "traces"
        shutil.rmtree(traced, ignore_errors=True)
        results["traces"] = asyncio.run(traces_cost(args.traces, args.seconds, traced))
    results["fsync"] = asyncio.run(fsync_cost(args.fsync_count))
    if args.growth:
        growth_rates = [int(rate) for rate in args.growth.split(",")]
        results["growth"] = asyncio.run(growth(out.parent / "growth", growth_rates, args.seconds))

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    print(f"\nevery figure: {out}")
    failures = [run["label"] for run in results["end_to_end"] if run["lost"] or run["duplicated"]]
    if failures:
        raise SystemExit(f"FAILED: complaints lost or events duplicated at {', '.join(failures)}")
    unverified = [source for source in SOURCES if not results["audit"][f"verify_{source}"]["holds"]]
    if unverified:
        raise SystemExit(
            f"FAILED: the synthetic record did not verify from the {' or the '.join(unverified)}"
        )


if __name__ == "__main__":
    main()
