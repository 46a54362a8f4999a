"""What traces cost: the same rate on two fresh systems, traces off, then on and exported over OTLP/HTTP
to a receiver the bench runs (tests/otlp_receiver.py), CPU per complaint of all processes compared."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench.end_to_end import end_to_end
from tests.otlp_receiver import OtlpReceiver


async def traces_cost(rate: int, seconds: float, root: Path) -> dict[str, Any]:
    async def run(name: str, settings_env: dict[str, str]) -> dict[str, Any]:
        (root / name).mkdir(parents=True)
        [measured], _ = await end_to_end(
            [rate], seconds, root / name, search_steps=0, settings_env=settings_env
        )
        return measured

    off = await run("off", {})
    with OtlpReceiver() as receiver:
        on = await run("on", {"KIZUKI_OTLP_ENDPOINT": receiver.endpoint})
        # All exported by now: each service flushes its spans as it stops.
        spans = Counter(span.service for span in receiver.received())
    off_ms, on_ms = (sum(run["cpu_ms_per_complaint"].values()) for run in (off, on))
    return {
        "rate": rate,
        "cpu_ms_per_complaint_off": off_ms,
        "cpu_ms_per_complaint_on": on_ms,
        "spans_per_complaint": {
            service: count / max(1, on["complaints"]) for service, count in spans.items()
        },
        "off": off,
        "on": on,
    }


def traces_lines(cost: dict[str, Any]) -> list[str]:
    off, on = cost["cpu_ms_per_complaint_off"], cost["cpu_ms_per_complaint_on"]
    by_process = cost["off"]["cpu_ms_per_complaint"], cost["on"]["cpu_ms_per_complaint"]
    spans = cost["spans_per_complaint"]
    return [
        f"traces at {cost['rate']}/s: CPU per complaint {off:.1f} ms off, {on:.1f} ms on "
        f"({on - off:+.1f} ms, {(on - off) / off if off else 0.0:+.0%})",
        "  by process, ms off -> on: "
        + "  ".join(f"{name} {by_process[0][name]:.1f} -> {ms:.1f}" for name, ms in by_process[1].items()),
        "  spans exported per complaint: "
        + "  ".join(f"{name} {count:.1f}" for name, count in spans.items()),
    ]
