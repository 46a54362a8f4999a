"""What traces cost: the same rate on two fresh systems, traces off, then on and exported over OTLP/HTTP
to a receiver the bench runs (tests/otlp_receiver.py), CPU per complaint of all processes compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.end_to_end import end_to_end
from tests.otlp_receiver import OtlpReceiver


async def traces_cost(rate: int, seconds: float, root: Path) -> dict[str, Any]:
    async def run(name: str, settings_env: dict[str, str]) -> dict[str, Any]:
        (root / name).mkdir(parents=True)
        [measured], _ = await end_to_end(
            [rate], seconds, root / name, search_steps=0, as_fast_as_it_goes=False, settings_env=settings_env
        )
        return measured

    off = await run("off", {})
    with OtlpReceiver() as receiver:
        on = await run("on", {"KIZUKI_OTLP_ENDPOINT": receiver.endpoint})
        spans = len(receiver.received())  # all exported: each service flushes its spans as it stops
    off_ms, on_ms = (sum(run["cpu_ms_per_complaint"].values()) for run in (off, on))
    return {
        "rate": rate,
        "cpu_ms_per_complaint_off": off_ms,
        "cpu_ms_per_complaint_on": on_ms,
        "spans_per_complaint": spans / max(1, on["complaints"]),
        "off": off,
        "on": on,
    }


def traces_line(cost: dict[str, Any]) -> str:
    off, on = cost["cpu_ms_per_complaint_off"], cost["cpu_ms_per_complaint_on"]
    return (
        f"traces at {cost['rate']}/s: CPU per complaint {off:.1f} ms off, {on:.1f} ms on "
        f"({on - off:+.1f} ms, {(on - off) / off if off else 0.0:+.0%}); "
        f"{cost['spans_per_complaint']:.1f} spans per complaint exported"
    )
