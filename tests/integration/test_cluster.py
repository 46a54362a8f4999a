"""The embedded nats-server's fsync, and the three-node JetStream cluster `kizuki run` starts with
KIZUKI_NATS_CLUSTER=3, on real nats-server processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.errors import Error as NatsError

from kizuki.node_records import digest, message_id, records_on_disk
from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import free_port, free_ports, start_nats, stop
from kizuki.provision import ALL_SUBSCRIPTIONS, provision_bus
from kizuki.server_config import write_server_config, write_server_configs
from shared.bus import (
    KEY_STREAM,
    MAX_OUTSTANDING_PINGS,
    PING_INTERVAL,
    RECORD_STREAM,
    SUBMISSION_STREAM,
    connect,
    services_with_timers,
    timer_stream,
)
from shared.settings import NatsNode, Settings, load_settings

pytestmark = pytest.mark.integration


def monitored(port: int, path: str) -> Any:
    """What a node's HTTP monitoring endpoint says about that node alone (/varz, /jsz)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)


def test_the_embedded_server_fsyncs_each_write_before_it_acknowledges(tmp_path: Path) -> None:
    settings = load_settings({"KIZUKI_DATA_DIR": str(tmp_path / "var"), "KIZUKI_NATS_PORT": str(free_port())})
    config = write_server_config(settings)
    assert 'jetstream {sync_interval: "always"}' in config.read_text()
    monitor = free_port()
    process = start_nats(
        settings.nats_port, settings.nats_dir, tmp_path / "nats.log", config, monitor_port=monitor
    )
    try:
        # The server's own account of the configuration it runs with: it fsyncs every write (the
        # default would show sync_always false and a sync every 120 s).
        jetstream = monitored(monitor, "/varz")["jetstream"]["config"]
        assert jetstream["sync_always"] is True
        assert jetstream["store_dir"] == str(settings.nats_dir / "jetstream")
    finally:
        stop(process)


@dataclass
class Cluster:
    """The three embedded nodes as `kizuki run` starts them, each with its monitoring port."""

    settings: Settings
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    monitors: dict[str, int] = field(default_factory=dict)

    @property
    def nodes(self) -> list[NatsNode]:
        return self.settings.nats_nodes

    def start(self, node: NatsNode) -> None:
        monitor = self.monitors.setdefault(node.name, free_port())
        self.processes[node.name] = start_nats(
            node.port, node.store_dir, self.logs / f"{node.name}.log", node.config, node.name, monitor
        )

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            stop(process)

    def last_sequences(self, stream: str) -> dict[str, int]:
        """Each node's own last sequence of the stream, as that node reports its local copy."""
        found = {}
        for name, port in self.monitors.items():
            jsz = monitored(port, "/jsz?accounts=true&streams=true")
            streams = [s for a in jsz.get("account_details", []) for s in a.get("stream_detail", [])]
            found[name] = next((s["state"]["last_seq"] for s in streams if s["name"] == stream), 0)
        return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    settings = load_settings(
        {"KIZUKI_DATA_DIR": str(tmp_path / "var"), "KIZUKI_NATS_CLUSTER": "3",
         "KIZUKI_NATS_PORT": str(free_ports(3)), "KIZUKI_NATS_ROUTE_PORT": str(free_ports(3))}
    )  # fmt: skip
    write_server_configs(settings)
    running = Cluster(settings, tmp_path)
    try:
        for node in running.nodes:
            running.start(node)
        yield running
    finally:
        running.stop()


async def until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.1)


async def test_every_node_holds_the_same_record_after_one_is_killed_mid_burst(cluster: Cluster) -> None:
    """A relay's publishing (each event awaited, published again with the same Nats-Msg-Id until it
    is acknowledged) goes on while the stream's leader is SIGKILLed, and after it is started again.

    What proves each node's copy: the cluster is stopped and each node's own store directory is read
    from disk (the filestore's message blocks of EVENTS), so no node answers for another. Stream info's
    replica ``current`` and ``lag`` are the leader's view of its followers, and a read through the
    cluster is served by the leader or any replica: neither says what a given node holds. Each node's
    messages (sequence, timestamp, subject, headers, body) are hashed into one digest per node; the
    three digests must be equal, and hold every acknowledged event once, at the sequence its
    acknowledgement gave. Before stopping, each node's own /jsz must show the last sequence, so the
    node that was killed has caught up rather than being read half-way.
    """
    settings = cluster.settings
    await provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR), settings.nats_replicas)
    admin = await connect(settings.bus_url, "test-admin", user=settings.bus_user(ADMINISTRATOR))
    relay = await connect(settings.bus_url, "test-intake", user=settings.bus_user("intake"))
    js, published = admin.jetstream(), relay.jetstream()
    acknowledged: dict[str, int] = {}
    stopping = asyncio.Event()

    async def publish() -> None:
        number = 0
        while not stopping.is_set():
            msg_id = f"intake:{number}"
            try:
                ack = await published.publish(
                    "events.intake.ComplaintReceived", b'{"n": %d}' % number, timeout=1.0,
                    headers={"Nats-Msg-Id": msg_id},
                )  # fmt: skip
            except NatsError:
                await asyncio.sleep(0.05)  # no leader yet, or the connection fails over: the same again
                continue
            acknowledged[msg_id] = ack.seq
            number += 1

    try:
        streams = [RECORD_STREAM, KEY_STREAM, SUBMISSION_STREAM]
        streams += [timer_stream(service) for service in services_with_timers(ALL_SUBSCRIPTIONS)]
        for stream in streams:
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3, stream
            assert info.cluster is not None, stream
            assert len(info.cluster.replicas or []) == 2, stream
        # Keys are read from the leader: a follower's direct answer may not have a key put just before.
        assert (await js.stream_info(KEY_STREAM)).config.allow_direct is False
        assert relay.connected_url is not None
        publishing = asyncio.create_task(publish())

        async def acknowledged_past(count: int) -> bool:
            return len(acknowledged) >= count

        await until(lambda: acknowledged_past(100), 10, "100 events acknowledged")
        info = await js.stream_info(RECORD_STREAM)
        assert info.cluster is not None
        assert info.cluster.leader is not None
        leader = info.cluster.leader
        cluster.kill(leader)
        killed_at = len(acknowledged)
        await until(lambda: acknowledged_past(killed_at + 100), 15, "100 more with the leader killed")
        cluster.start(next(node for node in cluster.nodes if node.name == leader))
        restarted_at = len(acknowledged)
        await until(lambda: acknowledged_past(restarted_at + 100), 10, "100 more after the restart")
        stopping.set()
        await publishing

        last = max(acknowledged.values())

        async def every_node_has_the_last() -> bool:
            return set(cluster.last_sequences(RECORD_STREAM).values()) == {last}

        await until(every_node_has_the_last, 10, f"every node's own copy reaching sequence {last}")
    finally:
        stopping.set()
        await relay.close()
        await admin.close()
        cluster.stop()

    copies = {node.name: records_on_disk(node.store_dir, RECORD_STREAM) for node in cluster.nodes}
    digests = {name: digest(records) for name, records in copies.items()}
    assert len(set(digests.values())) == 1, digests
    held = {message_id(headers): sequence for sequence, (_, _, headers, _) in copies[leader].items()}
    assert held == acknowledged  # nothing acknowledged lost, nothing twice, each where it was acknowledged
    assert sorted(held.values()) == list(range(1, len(held) + 1))  # and nothing else in between


async def test_a_connection_to_a_node_that_stops_answering_moves_to_another_within_seconds(
    cluster: Cluster,
) -> None:
    """A node paused (SIGSTOP, a frozen VM) keeps its TCP connections open: only the client's pings
    find it out. Every connection pings every few seconds and gives up after a few unanswered
    (nats-py's default: every 2 minutes, after two, so 4 to 6 minutes stuck on a paused node)."""
    settings = cluster.settings
    nc = await connect(settings.bus_url, "test", user=settings.bus_user(ADMINISTRATOR))
    try:
        assert nc.connected_url is not None
        paused_port = nc.connected_url.port
        paused = next(node.name for node in cluster.nodes if node.port == paused_port)
        cluster.processes[paused].send_signal(signal.SIGSTOP)
        try:
            await until(
                lambda: asyncio.sleep(0, nc.is_connected and nc.connected_url.port != paused_port),
                within=PING_INTERVAL * (MAX_OUTSTANDING_PINGS + 2) + 10,
                what="the connection on another node",
            )
        finally:
            cluster.processes[paused].send_signal(signal.SIGCONT)
        await nc.flush(timeout=5)  # and it works there
    finally:
        await nc.close()
