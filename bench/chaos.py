"""`make chaos`: faults under load. `kizuki run` with the three-node cluster and PostgreSQL stores (a
server this run starts, so that it can restart it), a steady load of complaints over HTTP, and one fault
after another with a quiet gap between; then, from the record: every accepted complaint's whole flow,
nothing lost, nothing duplicated, the chain verified, and the three nodes' copies equal on disk."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from bench.chaos_faults import FAULTS, Target, check_firewall, rules_left
from bench.chaos_load import Readiness, steady
from bench.chaos_postgres import Postgres
from bench.chaos_report import FLOW_BACK, FaultRun, analyse, table
from kizuki.audit import RecordEntry, read_record
from kizuki.launcher import REPLICA_PORT_STEP, replica_name
from kizuki.node_records import digest, message_id, records_on_disk
from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import free_ports
from kizuki.provision import ALL_SUBSCRIPTIONS, provision_secrets
from shared.auth import issue_api_key
from shared.bus import RECORD_STREAM, connect
from shared.directory import load_directory
from shared.settings import SERVICES, Settings, load_settings
from tests.e2e.conftest import FLOW_COUNTS, KIZUKI, system_env, write_policy

T = TypeVar("T")

# What this machine (2 cores, shared) sustains with the cluster and PostgreSQL: see the README.
RATE = 4.0
GAP_SECONDS = 8.0
REPLICAS = 2  # of each service: the services' fault kills one, the other goes on
WARMUP_SECONDS = 6.0


@dataclass
class Result:
    rate: float
    replicas: int
    seconds: float  # wall time of the whole run
    faults: list[FaultRun]
    analysis: dict[str, Any]
    verify: tuple[int, str]
    digests: dict[str, str]
    msg_ids_twice: int
    launcher_said: list[str]
    unsettled: dict[str, tuple[int, int]]  # consumers not drained when the record was judged
    failures: list[str] = field(default_factory=list)


class Launcher:
    """`kizuki run`, its output kept in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen([KIZUKI, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    async def ready(self, within: float = 180.0) -> None:
        deadline = time.monotonic() + within
        while not any("kizuki: ready" in line for line in self.lines()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kizuki run did not become ready:\n" + "\n".join(self.lines()))
            await asyncio.sleep(0.2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


async def patiently(ask: Callable[[], Awaitable[T]], within: float = 60.0) -> T:
    """A request to the cluster, asked again while it elects a leader or a node comes back."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await ask()
        except (NatsError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def whole_flows(
    js: JetStreamContext, complaints: set[str], within: float, quiet: float
) -> list[RecordEntry]:
    """The record once every accepted complaint has its whole flow (or ``within`` has passed) and
    nothing new has reached it for ``quiet`` seconds: exactly-once is judged then."""
    deadline = time.monotonic() + within
    last, since = -1, time.monotonic()
    while True:
        sequence = (await patiently(lambda: js.stream_info(RECORD_STREAM))).state.last_seq
        if sequence != last:
            last, since = sequence, time.monotonic()
        elif time.monotonic() - since >= quiet:
            record = await patiently(lambda: _record(js))
            seen = {(entry.complaint_id, entry.event_type) for entry in record}
            if all((c, kind) in seen for c in complaints for kind in FLOW_COUNTS):
                return record
            if time.monotonic() > deadline:
                return record
        await asyncio.sleep(0.5)


async def unsettled(js: JetStreamContext) -> dict[str, tuple[int, int]]:
    """Each durable consumer with messages still to deliver or unacknowledged: (pending, ack pending)."""
    found = {}
    for subscription in ALL_SUBSCRIPTIONS:
        info = await patiently(partial(js.consumer_info, subscription.stream, subscription.durable))
        if info.num_pending or info.num_ack_pending:
            found[f"{subscription.stream}/{subscription.durable}"] = (info.num_pending, info.num_ack_pending)
    return found


async def _record(js: JetStreamContext) -> list[RecordEntry]:
    return [entry async for entry in read_record(js)]


async def every_copy_current(js: JetStreamContext, within: float = 60.0) -> None:
    """Until the leader of the record sees both followers current (the disks are compared after)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        info = await patiently(lambda: js.stream_info(RECORD_STREAM))
        replicas = info.cluster.replicas if info.cluster is not None else None
        if replicas and all(r.current and not r.lag for r in replicas):
            return
        await asyncio.sleep(0.5)


def say(began: float, text: str) -> None:
    print(f"chaos: {time.monotonic() - began:5.0f} s  {text}", flush=True)


def node_copies(settings: Settings) -> tuple[dict[str, str], int]:
    """Each node's digest of the record read from its own store, and how many Nats-Msg-Ids are held
    twice on any node."""
    digests, twice = {}, 0
    for node in settings.nats_nodes:
        records = records_on_disk(node.store_dir, RECORD_STREAM)
        digests[node.name] = digest(records)
        ids = [message_id(headers) for _, _, headers, _ in records.values()]
        twice = max(twice, len(ids) - len(set(ids)))
    return digests, twice


async def chaos(
    root: Path,
    rate: float = RATE,
    faults: Sequence[str] = tuple(FAULTS),
    gap: float = GAP_SECONDS,
    warmup: float = WARMUP_SECONDS,
    flow_within: float = 180.0,
    quiet: float = 5.0,
    replicas: int = 1,
) -> Result:
    """The whole run, its data and logs under ``root`` (emptied first); ``replicas`` processes of
    each service (`kizuki run --replicas`), of which the services' fault kills one."""
    began = time.monotonic()
    if "nats-cut" in faults:
        check_firewall()
    shutil.rmtree(root, ignore_errors=True)
    await asyncio.to_thread(root.mkdir, parents=True)
    postgres = Postgres()
    launcher: Launcher | None = None
    try:
        env = system_env(root / "var", write_policy(root / "policy.toml"))
        env |= {"KIZUKI_NATS_CLUSTER": "3", "KIZUKI_NATS_PORT": str(free_ports(3)),
                "KIZUKI_NATS_ROUTE_PORT": str(free_ports(3))} | postgres.env()  # fmt: skip
        env["KIZUKI_REPLICAS"] = ",".join(f"{service}={replicas}" for service in SERVICES)
        settings = load_settings(env)
        provision_secrets(settings)
        directory = load_directory(settings.directory_path)
        api_key = issue_api_key(settings.api_keys_path, "chaos", ["phone"], "n-001", directory)
        launcher = Launcher(env, root / "kizuki-run.log")
        await launcher.ready()
        nc = await connect(settings.bus_url, "chaos", user=settings.bus_user(ADMINISTRATOR))
        js = nc.jetstream()

        async def record_leader() -> str:
            info = await patiently(lambda: js.stream_info(RECORD_STREAM))
            assert info.cluster is not None
            assert info.cluster.leader is not None
            return info.cluster.leader

        target = Target(launcher.process.pid, settings.nats_nodes, postgres, record_leader)
        readiness, stopping = Readiness(), asyncio.Event()
        urls = {
            replica_name(service, replica): f"http://{settings.http_host}:"
            f"{settings.http_ports[service] + REPLICA_PORT_STEP * replica}"
            for service in SERVICES
            for replica in range(replicas)
        }
        runs: list[FaultRun] = []
        print(
            f"chaos: kizuki run ready after {time.monotonic() - began:.0f} s; load at {rate:g}/s", flush=True
        )
        async with httpx.AsyncClient(timeout=30, headers={"X-API-Key": api_key}) as client:
            watching = asyncio.create_task(readiness.watch(client, urls, stopping))
            intake = settings.http_url("intake") + "/v1/complaints"
            load_stopping = asyncio.Event()
            label = f"chaos-{time.time():.0f}"
            load = asyncio.create_task(steady(client, intake, label, rate, load_stopping))
            await asyncio.sleep(warmup)
            for key in faults:
                fault = FAULTS[key]
                started = time.time()
                what = await fault.inject(target)
                runs.append(FaultRun(fault.name, what, started, time.time()))
                say(began, f"{fault.name}: {what}")
                await asyncio.sleep(gap)
            end = time.time()
            load_stopping.set()
            calls = await load
            accepted = {call.complaint_id for call in calls if call.complaint_id is not None}
            print(
                f"chaos: {len(calls)} posted, {len(accepted)} accepted; waiting for their flows", flush=True
            )
            record = await whole_flows(js, accepted, flow_within, quiet)
            waiting = await unsettled(js)
            stopping.set()
            await watching
        say(began, "drained; kizuki audit verify")
        analysis = analyse(calls, record, runs, readiness, end)
        verified = await asyncio.to_thread(
            subprocess.run, [KIZUKI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300
        )
        await every_copy_current(js)
        await nc.close()
        say(began, "stopping kizuki run, to read each node's store")
        launcher.stop()
        digests, twice = node_copies(settings)
        said = [line for line in launcher.lines() if "exited with" in line or "started again" in line]
        verify = (verified.returncode, (verified.stdout + verified.stderr)[-2000:])
        result = Result(rate, replicas, 0.0, runs, analysis, verify, digests, twice, said, waiting)
    finally:
        if launcher is not None:
            launcher.stop()
        postgres.stop()
    result.seconds = time.monotonic() - began
    result.failures = failures(result)
    return result


def failures(result: Result) -> list[str]:
    found = []
    analysis = result.analysis
    if analysis["lost"]:
        found.append(f"{analysis['lost']} accepted complaints without their whole flow")
    if analysis["duplicated"] or analysis["event_ids_twice"] or result.msg_ids_twice:
        found.append(
            f"duplicated: {analysis['duplicated']} complaints with an event too many, "
            f"{analysis['event_ids_twice']} event ids twice on the record, "
            f"{result.msg_ids_twice} Nats-Msg-Ids twice on a node"
        )
    if result.verify[0] != 0:
        found.append(f"kizuki audit verify exited {result.verify[0]}")
    if len(set(result.digests.values())) != 1:
        found.append(f"the nodes hold different records: {result.digests}")
    if rules_left():
        found.append(f"firewall rules left: {rules_left()}")
    return found


def report(result: Result) -> str:
    analysis = result.analysis
    lines = [
        f"chaos: {analysis['calls']} complaints posted at {result.rate:g}/s, {analysis['accepted']} accepted "
        f"(201); {result.replicas} process(es) of each service; {len(result.faults)} faults; "
        f"{result.seconds:.0f} s in all",
        f"the last event of an accepted complaint's flow was recorded {analysis['caught_up']:.0f} s after "
        "the last POST (at a rate the system sustains, within seconds)",
        "",
        *table(analysis, result.faults),
        "",
        FLOW_BACK,
        "slowest: the longest a complaint of the window took from its POST to EscalationStarted; refused: "
        "posted in the window and never accepted (tried again with its key for 60 s)",
        "",
        f"lost {analysis['lost']}, duplicated {analysis['duplicated']}, event ids twice on the record "
        f"{analysis['event_ids_twice']}, complaints on the record never answered 201: "
        f"{analysis['received_not_answered']}",
        f"deliveries attempted again under the same key (NotificationAttempted per key > 1): "
        f"{len(analysis['sent_again'])}, of which with no fault between the two attempts: "
        f"{analysis['sent_again_with_no_fault_between']} (each counted at the fault between)",
        f"missing from the flows of complaints lost: {analysis['missing'] or 'nothing'}",
        "refused (key, intake's last answer, 0: none within 30 s or no connection, tries): "
        f"{analysis['refused'] or 'none'}",
        f"other events of accepted complaints: {analysis['other_events'] or 'none'}",
        f"deliveries failed or given up, by reason: {analysis['given_up'] or 'none'}",
        "consumers not drained once the record was quiet (pending, ack pending): "
        f"{result.unsettled or 'none'}",
        f"kizuki audit verify: exit {result.verify[0]}: {result.verify[1].strip().splitlines()[-1:]}",
        "nodes' copies of the record (sha256 of each node's messages read from its own store on disk):",
        *(f"  {name} {value[:16]}" for name, value in result.digests.items()),
        f"  {'the same' if len(set(result.digests.values())) == 1 else 'DIFFERENT'}; "
        f"a Nats-Msg-Id twice on a node: {result.msg_ids_twice}",
        "the launcher:",
        *(f"  {line}" for line in result.launcher_said),
    ]
    lines += ["", "FAILED: " + "; ".join(result.failures) if result.failures else "passed"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.chaos", description=__doc__)
    parser.add_argument("--rate", type=float, default=RATE, help="complaints posted a second")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"in order, of: {', '.join(FAULTS)}")
    parser.add_argument("--gap", type=float, default=GAP_SECONDS, help="quiet seconds after each fault")
    parser.add_argument("--warmup", type=float, default=WARMUP_SECONDS, help="seconds of load before")
    parser.add_argument(
        "--replicas", type=int, default=REPLICAS, help="processes of each service (kizuki run --replicas)"
    )
    parser.add_argument("--out", default="var/chaos")
    args = parser.parse_args()
    # A node going away is reported by the run itself, not by a traceback from nats-py's logger.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    faults = [key for key in args.faults.split(",") if key and key != "none"]
    out = Path(args.out)
    result = asyncio.run(
        chaos(out / "system", args.rate, faults, args.gap, args.warmup, replicas=args.replicas)
    )
    text = report(result)
    print(text)
    (out / "results.json").write_text(json.dumps(asdict(result), indent=2, default=str))
    (out / "report.txt").write_text(text + "\n")
    if result.failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
