"""Complaints posted over HTTP at fixed rates, through the four services, timed from the record."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from nats.js import JetStreamContext

from bench.stats import cpu_seconds, percentiles
from kizuki.audit import RecordEntry, read_record
from kizuki.launcher import replica_env, replica_name
from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import free_port, start_nats, start_service, stop, wait_healthy
from kizuki.provision import ALL_SUBSCRIPTIONS, provision_bus, provision_secrets
from kizuki.server_config import write_server_config
from shared.auth import issue_api_key
from shared.bus import RECORD_STREAM, connect
from shared.directory import load_directory
from shared.settings import SERVICES, load_settings
from shared.timers import now

# Stages timed from the POST, each read from the record.
STAGES = {
    "ComplaintReceived": "ComplaintReceived",
    "EscalationStarted": "EscalationStarted",
    "first staff alert handed over": "NotificationSent",
    "ComplainantAcknowledged": "ComplainantAcknowledged",
}
# Events a complaint gets exactly once in this run (no chase repeats: the shipped interval is minutes).
ONCE = ("ComplaintReceived", "EscalationStarted", "ComplainantAcknowledged")
SUSTAINED_DRAIN_SECONDS = 2.0
# Complaints posted before the measured runs, not counted.
WARM_UP_RATE, WARM_UP_SECONDS = 10, 3.0
MAX_CONCURRENCY = 32
POST_ATTEMPTS = 3
POST_TIMEOUT_SECONDS = 30.0
# As often as a Prometheus server would scrape every service, or more: what metrics cost includes it.
SCRAPE_SECONDS = 5.0


def complaint(key: str) -> dict[str, Any]:
    return {
        "channel": "phone",
        "occurred_at": (now() - timedelta(minutes=10)).isoformat(),
        "department": "Ward 3",
        "summary": f"Benchmark complaint {key}: waited for pain medication.",
        # Each from another patient: one contact's alike texts would be compared and flagged.
        "complainant": {"name": "Bench Patient", "contact": f"bench-{key}@example.org"},
        "language": "en",
    }


class Poster:
    """The load's POSTs, over HTTP/1.1 keep-alive connections to one server, each request written in
    one piece and its answer read by its Content-Length. The load is generated on the two cores the
    system runs on: httpx spent 2.2 ms of CPU per POST at 50/s (4.6 ms with 32 in flight), a tenth
    of the system's own, taken from the system and counted in its latency; this spends a few tenths.
    A connection the server closes is dropped; a POST that fails on one is tried again by ``_post``."""

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        fixed = {"Host": parts.netloc, "Content-Type": "application/json", **headers}
        self._head = f"POST {parts.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """The answer's status and body."""
        reader, writer = await self._connection()
        try:
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(f"{self._head}{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            async with asyncio.timeout(POST_TIMEOUT_SECONDS):  # a TimeoutError: an OSError, tried again
                head = await reader.readuntil(b"\r\n\r\n")
                status_line, *lines = head.decode("latin-1").split("\r\n")
                fields = {name.lower(): value.strip() for name, _, value in (n.partition(":") for n in lines)}
                payload = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return int(status_line.split()[1]), payload

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An idle connection the server has not closed (uvicorn closes one idle for 5 s), or a new one."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _post(poster: Poster, key: str, sent: dict[str, float]) -> None:
    """As a call centre would post: with an idempotency key, so that a connection the server dropped
    (an idle keep-alive closed as the request went out) is tried again without a second complaint."""
    moment = time.time()
    body = json.dumps(complaint(key)).encode()
    for attempt in range(1, POST_ATTEMPTS + 1):
        try:
            status, payload = await poster.post(body, {"Idempotency-Key": key})
            break
        except (OSError, asyncio.IncompleteReadError):
            if attempt == POST_ATTEMPTS:
                raise
    if status == 201:
        sent[json.loads(payload)["complaint_id"]] = moment


async def drive(poster: Poster, label: str, rate: int | None, seconds: float) -> dict[str, float]:
    """Open loop at a fixed rate, or closed loop with a few clients as fast as it goes."""
    sent: dict[str, float] = {}
    start = time.perf_counter()
    if rate is not None:
        tasks = []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(_post(poster, f"{label}-{n}", sent)))
        await asyncio.gather(*tasks)
        return sent

    async def worker(first: int) -> None:
        n = first
        while time.perf_counter() - start < seconds:
            await _post(poster, f"{label}-{n}", sent)
            n += MAX_CONCURRENCY

    await asyncio.gather(*(worker(k) for k in range(MAX_CONCURRENCY)))
    return sent


async def scraped(client: httpx.AsyncClient, urls: list[str]) -> None:
    """Every service's /metrics, every SCRAPE_SECONDS, until cancelled."""
    while True:
        await asyncio.gather(*(client.get(url + "/metrics") for url in urls))
        await asyncio.sleep(SCRAPE_SECONDS)


async def settled(js: JetStreamContext, quiet_for: float = 1.0, within: float = 120.0) -> None:
    """Until every consumer is drained and the record stops growing."""
    deadline = time.perf_counter() + within
    last, quiet_since = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        info = await js.stream_info(RECORD_STREAM)
        pending = 0
        for subscription in ALL_SUBSCRIPTIONS:
            consumer = await js.consumer_info(subscription.stream, subscription.durable)
            pending += consumer.num_pending + consumer.num_ack_pending
        if info.state.last_seq != last or pending:
            last, quiet_since = info.state.last_seq, time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet_for:
            return
        await asyncio.sleep(0.1)


async def bus_counts(js: JetStreamContext) -> Counter[str]:
    """What the server has handled so far: messages stored by stream (its last sequence: schedules and
    their fires included in a timer stream) and messages delivered by consumer (redeliveries included),
    one counter for both. A service's replicas share its consumer."""
    counts: Counter[str] = Counter()
    for stream in await js.streams_info():
        counts[f"stored {stream.config.name}"] = stream.state.last_seq
    for subscription in ALL_SUBSCRIPTIONS:
        info = await js.consumer_info(subscription.stream, subscription.durable)
        counts[f"delivered {subscription.stream} to {subscription.durable}"] = info.delivered.consumer_seq
    return counts


def analyse(
    label: str, sent: dict[str, float], seconds: float, record: list[RecordEntry], drain: float
) -> dict[str, Any]:
    mine = [entry for entry in record if entry.complaint_id in sent]
    counts = Counter((entry.complaint_id, entry.event_type) for entry in mine)
    first_at: dict[tuple[str, str], float] = {}
    for entry in mine:
        recorded = datetime.fromisoformat(entry.body["recorded_at"]).timestamp()
        key = (str(entry.complaint_id), entry.event_type)
        first_at[key] = min(first_at.get(key, recorded), recorded)
    latency = {}
    for stage, event_type in STAGES.items():
        values = [
            (first_at[(c, event_type)] - t) * 1000 for c, t in sent.items() if (c, event_type) in first_at
        ]
        latency[stage] = percentiles(values)
    lost = sum(1 for c in sent if any((c, kind) not in counts for kind in ONCE))
    event_ids = [entry.body.get("event_id") for entry in mine]
    duplicated = (
        len(event_ids) - len(set(event_ids)) + sum(1 for c in sent for k in ONCE if counts[(c, k)] > 1)
    )
    done = [
        first_at[(c, "ComplainantAcknowledged")] for c in sent if (c, "ComplainantAcknowledged") in first_at
    ]
    return {
        "label": label,
        "complaints": len(sent),
        "sent_per_second": len(sent) / seconds,
        "completed_per_second": len(done) / max(1e-9, (max(done) - min(sent.values()))) if done else 0.0,
        "latency_ms": latency,
        "drain_seconds": drain,
        "sustained": drain <= SUSTAINED_DRAIN_SECONDS,
        "lost": lost,
        "duplicated": duplicated,
        "events_per_complaint": len(mine) / max(1, len(sent)),
    }


def bracket(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Where the highest sustained rate lies: above the best rate that was sustained, below the first
    that was not (or a little above what the system completed as fast as it went)."""
    sustained = [run["sent_per_second"] for run in runs if run["sustained"]]
    failed = [run["sent_per_second"] for run in runs if not run["sustained"]]
    completed = max(run["completed_per_second"] for run in runs)
    low = max(sustained, default=0.0)
    high = min([rate for rate in failed if rate > low], default=max(low, completed) * 1.25)
    return low, high


async def end_to_end(
    rates: list[int],
    seconds: float,
    root: Path,
    search_steps: int = 3,
    settings_env: Mapping[str, str] | None = None,
    replicas: Mapping[str, int] | None = None,
    longer: Mapping[int, float] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """The system run with its data and logs under ``root``, an empty directory, and ``settings_env``
    beyond its ports and directories: the runs at each rate, then (with ``search_steps``) as fast as it
    goes and a bisection for the highest rate sustained without a growing backlog; returns the runs and
    that rate. ``replicas``: processes of a service beyond one (PostgreSQL stores), started as `kizuki
    run --replicas` starts them; complaints are posted to the first intake. ``longer``: fixed rates
    that run longer than ``seconds``, by rate (more complaints for a steadier p99). Unless
    KIZUKI_METRICS=off, every service is scraped as it runs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KIZUKI_", "NATS_"))}
    env |= {
        "KIZUKI_DATA_DIR": str(root / "var"),
        "KIZUKI_NATS_PORT": str(free_port()),
        "KIZUKI_INTAKE_SMTP_PORT": str(free_port()),
    }
    env |= {f"KIZUKI_{service.upper()}_PORT": str(free_port()) for service in SERVICES}
    env |= settings_env or {}
    settings = load_settings(env)
    provision_secrets(settings)
    # As `kizuki run` does: each service with its own credential, permissions enforced.
    nats = start_nats(settings.nats_port, settings.nats_dir, root / "nats.log", write_server_config(settings))
    processes: list[subprocess.Popen[bytes]] = []
    administrator = settings.bus_user(ADMINISTRATOR)
    try:
        await provision_bus(settings.bus_url, administrator)
        directory = load_directory(settings.directory_path)
        # Posted as a call-centre system would: with its channel's API key, n-001 owning the inbox.
        api_key = issue_api_key(settings.api_keys_path, "bench", ["phone"], "n-001", directory)
        started = {
            replica_name(service, i): (service, replica_env(settings, env, service, i))
            for service in SERVICES
            for i in range((replicas or {}).get(service, 1))
        }
        processes = [start_service(s, e, root / f"{name}.log") for name, (s, e) in started.items()]
        for (service, replica), process in zip(started.values(), processes, strict=True):
            await asyncio.to_thread(wait_healthy, load_settings(replica).http_url(service), process)
        nc = await connect(settings.bus_url, "bench", user=administrator)
        js = nc.jetstream()
        url = settings.http_url("intake") + "/v1/complaints"
        runs = []
        poster = Poster(url, {"X-API-Key": api_key})
        async with httpx.AsyncClient(timeout=30) as client:
            pids = {name: process.pid for name, process in zip(started, processes, strict=True)}
            pids["nats-server"] = nats.pid
            urls = [settings.http_url(service) for service in SERVICES]
            scraping = asyncio.create_task(scraped(client, urls)) if settings.metrics else None

            async def run_at(label: str, rate: int | None, duration: float = seconds) -> dict[str, Any]:
                used_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                counted_before = await bus_counts(js)
                started = time.perf_counter()
                sent = await drive(poster, label.replace(" ", "-"), rate, duration)
                posting_ended = time.perf_counter()
                await settled(js)
                drain = time.perf_counter() - posting_ended - 1.0  # less the quiet second
                used = {name: cpu_seconds(pid) - used_before[name] for name, pid in pids.items()}
                counted = await bus_counts(js)
                counted.subtract(counted_before)
                record = [entry async for entry in read_record(js)]
                run = analyse(label, sent, posting_ended - started, record, max(0.0, drain))
                # Where the machine's time goes: CPU per complaint, by process (the quiet second included).
                run["cpu_ms_per_complaint"] = {
                    name: 1000 * seconds_used / max(1, len(sent)) for name, seconds_used in used.items()
                }
                # And the server's work: every message it stored or delivered, per complaint.
                run["bus_messages_per_complaint"] = {
                    name: count / max(1, len(sent)) for name, count in sorted(counted.items()) if count
                }
                return run

            # A system that has run for a while: the first complaints meet code and caches not yet warm
            # (at 5/s, a p99 of 78 ms to ComplaintReceived in a first run, 6 ms in the next).
            await drive(poster, "warm-up", WARM_UP_RATE, WARM_UP_SECONDS)
            await settled(js)
            for rate in rates:
                runs.append(await run_at(f"{rate}/s", rate, (longer or {}).get(rate, seconds)))
            if search_steps:
                runs.append(await run_at("max", None))
            low, high = bracket(runs)
            for _ in range(search_steps):
                probe = int((low + high) / 2)
                if probe <= low:
                    break
                run = await run_at(f"search {probe}/s", probe)
                runs.append(run)
                # What was posted, not the probe's rate: a load generator that falls behind posts less.
                low, high = (run["sent_per_second"], high) if run["sustained"] else (low, float(probe))
            if scraping is not None:
                scraping.cancel()
        await poster.close()
        await nc.close()
        return runs, low
    finally:
        for process in processes:
            stop(process)
        stop(nats)
