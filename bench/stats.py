"""Percentiles and the embedded server that each benchmark runs against."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from kizuki.processes import free_port, start_nats, stop


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def resident_mib(pid: int | str, field: str = "VmRSS") -> float:
    """A process's memory now (VmRSS) or at its peak (VmHWM), in MiB. Unlike getrusage's ru_maxrss,
    the peak is that of the process's own program: not the parent's, which a child inherits on Linux."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextlib.asynccontextmanager
async def embedded_nats() -> AsyncIterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A fresh nats-server with JetStream in a temporary directory: (url, process, directory)."""
    with tempfile.TemporaryDirectory(prefix="kizuki-bench-") as directory:
        root = Path(directory)
        port = free_port()
        process = start_nats(port, root / "nats", root / "nats-server.log")
        try:
            yield f"nats://127.0.0.1:{port}", process, root
        finally:
            stop(process)
