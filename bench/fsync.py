"""What `sync_interval: always` costs: publishes to the record stream with the server's default lazy
fsync (every two minutes) and with an fsync before each acknowledgement, on one server and on a
three-node cluster with R3 streams.

Two figures each: the most a relay publishing one event at a time and awaiting each acknowledgement
gets through, and the acknowledgement latency at the system's own rate (a few hundred publishes a
second: ~20-25 complaints/s of ~11 events). `python -m bench.fsync` runs it alone; `make bench` too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.stats import cpu_seconds, percentiles
from kizuki.processes import free_ports, start_nats, stop
from kizuki.server_config import SYNC_INTERVAL, cluster_block
from shared.bus import RECORD_STREAM, RECORD_STREAM_CONFIG, connect
from shared.settings import load_settings

BODY = json.dumps({"payload": "x" * 600}).encode()  # 615 bytes, as a wire event
HEADERS = {f"Kizuki-Header-{n}": f"value-{n}" for n in range(8)}  # with Nats-Msg-Id, 9 headers
SYSTEM_RATE = 300  # publishes per second: ~25 complaints/s of ~11 events
SETUPS = [(nodes, sync) for nodes in (1, 3) for sync in ("default", SYNC_INTERVAL)]


@contextlib.asynccontextmanager
async def servers(nodes: int, sync: str) -> AsyncIterator[tuple[str, list[int]]]:
    """``nodes`` nats-servers (a cluster when 3) with ``sync``, no users: (url, their pids)."""
    with tempfile.TemporaryDirectory(prefix="kizuki-bench-fsync-") as directory:
        root = Path(directory)
        settings = load_settings(
            {"KIZUKI_DATA_DIR": str(root), "KIZUKI_NATS_CLUSTER": str(nodes),
             "KIZUKI_NATS_PORT": str(free_ports(nodes)), "KIZUKI_NATS_ROUTE_PORT": str(free_ports(nodes))}
        )  # fmt: skip
        processes = []
        try:
            for node in settings.nats_nodes:
                lines = [f'server_name: "{node.name}"']
                if sync != "default":
                    lines.append(f'jetstream {{sync_interval: "{sync}"}}')
                if node.route_port is not None:
                    lines += cluster_block(node, settings.nats_nodes, "bench")
                node.store_dir.mkdir(parents=True)
                node.config.write_text("\n".join(lines) + "\n")
                log = root / f"{node.name}.log"
                processes.append(start_nats(node.port, node.store_dir, log, node.config, node.name))
            yield settings.bus_url, [process.pid for process in processes]
        finally:
            for process in processes:
                stop(process)


async def _declared(url: str, replicas: int) -> Any:
    nc = await connect(url, "bench-fsync")
    js = nc.jetstream()
    deadline = time.monotonic() + 30
    while True:
        try:
            await js.add_stream(replace(RECORD_STREAM_CONFIG, num_replicas=replicas))
            return nc
        except Exception:  # a cluster still electing its leaders
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def publish_cost(nodes: int, sync: str, count: int, seconds: float) -> dict[str, Any]:
    async with servers(nodes, sync) as (url, pids):
        nc = await _declared(url, nodes)
        js = nc.jetstream()
        number = 0

        async def publish() -> float:
            nonlocal number
            number += 1
            started = time.perf_counter()
            await js.publish(
                "events.intake.ComplaintReceived", BODY, headers={**HEADERS, "Nats-Msg-Id": f"b:{number}"}
            )
            return (time.perf_counter() - started) * 1000

        for _ in range(50):  # warm up: connections, the stream's first block
            await publish()
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        started = time.perf_counter()
        one_by_one = [await publish() for _ in range(count)]
        elapsed = time.perf_counter() - started
        server_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        # At the system's rate: one publish every 1/SYSTEM_RATE s, each awaited as the relay does.
        at_rate = []
        start = time.perf_counter()
        for n in range(int(SYSTEM_RATE * seconds)):
            await asyncio.sleep(max(0.0, start + n / SYSTEM_RATE - time.perf_counter()))
            at_rate.append(await publish())
        info = await js.stream_info(RECORD_STREAM)
        await nc.close()
    return {
        "nodes": nodes,
        "sync_interval": sync,
        "stored": info.state.messages,
        "max_per_second": count / elapsed,
        "one_by_one_ms": percentiles(one_by_one),
        "server_cpu_us_per_publish": server_cpu / count * 1e6,
        f"at_{SYSTEM_RATE}_per_second_ms": percentiles(at_rate),
    }


async def fsync_cost(count: int = 2000, seconds: float = 5.0) -> list[dict[str, Any]]:
    return [await publish_cost(nodes, sync, count, seconds) for nodes, sync in SETUPS]


def fsync_lines(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"fsync: publishes awaited one at a time (as the relay does), {len(BODY)}-byte events; "
        f"latency also at {SYSTEM_RATE}/s, the system's rate",
        f"{'':<4}{'nodes':>5}  {'sync_interval':<14}{'max/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'server µs':>11}{f'@{SYSTEM_RATE}/s p50':>13}{'p99':>7}",
    ]
    for run in runs:
        at_rate = run[f"at_{SYSTEM_RATE}_per_second_ms"]
        lines.append(
            f"{'':<4}{run['nodes']:>5}  {run['sync_interval']:<14}{run['max_per_second']:>8.0f}"
            f"{run['one_by_one_ms']['p50']:>8.2f}{run['one_by_one_ms']['p99']:>8.2f}"
            f"{run['server_cpu_us_per_publish']:>11.0f}{at_rate['p50']:>13.2f}{at_rate['p99']:>7.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.fsync", description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="publishes one at a time, per setup")
    parser.add_argument("--seconds", type=float, default=5.0, help=f"how long at {SYSTEM_RATE}/s")
    args = parser.parse_args()
    print("\n".join(fsync_lines(asyncio.run(fsync_cost(args.count, args.seconds)))))


if __name__ == "__main__":
    main()
