"""The faults `make chaos` injects into a running `kizuki run`: processes killed and paused, a NATS node
cut off the network on loopback, PostgreSQL restarted. Each acts on the launcher's own children, found
by their command lines, so a service run as several replicas loses one of them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.chaos_postgres import Postgres
from shared.settings import SERVICES, NatsNode

PAUSE_SECONDS = 10.0
PARTITION_SECONDS = 10.0
# Every firewall rule this run adds carries this comment (with the run's pid), and is removed in a finally.
RULE_TAG = "kizuki-chaos"


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except FileNotFoundError:
        return []


def service_processes(launcher: int, service: str) -> list[int]:
    """The processes of one service (one per replica) the launcher runs now."""
    return [pid for pid in children(launcher) if f"services.{service}" in command_line(pid)]


def node_process(launcher: int, node: str) -> int:
    (pid,) = [
        pid
        for pid in children(launcher)
        if node in command_line(pid) and "--server_name" in command_line(pid)
    ]
    return pid


@dataclass
class Target:
    """What the faults act on: the launcher's pid, the cluster's nodes, PostgreSQL, and a way to ask
    which node leads the record (the node whose loss costs most)."""

    launcher: int
    nodes: list[NatsNode]
    postgres: Postgres
    record_leader: Callable[[], Awaitable[str]]


@dataclass
class Fault:
    name: str
    inject: Callable[[Target], Awaitable[str]]  # returns once the fault is over, saying what it did


async def kill_one_process_of_each_service(target: Target) -> str:
    """With replicas, the first started of each: it made the service's tables, and so most likely
    holds its leases (the relay's, the notifier dispatcher's)."""
    killed = []
    for service in SERVICES:
        pid = min(service_processes(target.launcher, service))
        os.kill(pid, signal.SIGKILL)
        killed.append(f"{service} {pid}")
    return "SIGKILL " + ", ".join(killed)


async def kill_a_node(target: Target) -> str:
    node = await target.record_leader()
    os.kill(node_process(target.launcher, node), signal.SIGKILL)
    return f"SIGKILL {node} (the record's leader); the launcher starts it again"


async def pause_a_node(target: Target) -> str:
    node = await target.record_leader()
    pid = node_process(target.launcher, node)
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(PAUSE_SECONDS)
    finally:
        os.kill(pid, signal.SIGCONT)
    return f"SIGSTOP {node} (the record's leader) for {PAUSE_SECONDS:g} s, then SIGCONT"


async def cut_a_node_off(target: Target) -> str:
    name = await target.record_leader()
    node = next(node for node in target.nodes if node.name == name)
    with cut_off(node, target.nodes, node_process(target.launcher, name)):
        await asyncio.sleep(PARTITION_SECONDS)
    return f"{name} (the record's leader) cut off the network for {PARTITION_SECONDS:g} s, then healed"


async def restart_postgres(target: Target) -> str:
    down = await asyncio.to_thread(target.postgres.restart)
    return f"PostgreSQL stopped as by a crash (immediate) and started again, down {down:.1f} s"


FAULTS = {
    "services": Fault("SIGKILL one process of each service", kill_one_process_of_each_service),
    "nats-kill": Fault("SIGKILL one NATS node", kill_a_node),
    "nats-pause": Fault(f"SIGSTOP one NATS node {PAUSE_SECONDS:g} s", pause_a_node),
    "nats-cut": Fault(f"one NATS node cut off {PARTITION_SECONDS:g} s", cut_a_node_off),
    "postgres": Fault("restart PostgreSQL", restart_postgres),
}


class FirewallRefused(RuntimeError):
    pass


def check_firewall() -> None:
    """Cutting a node off needs iptables and root: refused up front, before anything starts."""
    if os.geteuid() != 0:
        raise FirewallRefused("cutting a NATS node off needs root (iptables rules on loopback): run as root")
    if shutil.which("iptables") is None:
        raise FirewallRefused("cutting a NATS node off needs iptables: apt-get install iptables")


def _tcp_ports_of(pid: int) -> set[int]:
    """The local ports of the process's TCP sockets: its listeners, and the connections it made."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _cut_rules(node: NatsNode, nodes: list[NatsNode], pid: int) -> list[list[str]]:
    """DROP on loopback: every packet to or from the node's client and route ports and the ports of the
    connections it has made (its routes to the others); and every new connection to any route port,
    so that neither the node nor the others make a new route while it is cut off (the others' routes
    between themselves are established and go on)."""
    own = sorted(_tcp_ports_of(pid) | {node.port, *([node.route_port] if node.route_port else [])})
    routes = sorted(other.route_port for other in nodes if other.route_port is not None)
    rules = [
        ["-p", "tcp", "-m", "multiport", "--ports", ",".join(map(str, own[at : at + 15]))]
        for at in range(0, len(own), 15)  # multiport takes 15 ports a rule
    ]
    rules.append(["-p", "tcp", "--syn", "-m", "multiport", "--dports", ",".join(map(str, routes))])
    tag = ["-m", "comment", "--comment", f"{RULE_TAG}-{os.getpid()}", "-j", "DROP"]
    return [["INPUT", "-i", "lo", *rule, *tag] for rule in rules]


@contextmanager
def cut_off(node: NatsNode, nodes: list[NatsNode], pid: int) -> Iterator[None]:
    check_firewall()
    added: list[list[str]] = []
    try:
        for rule in _cut_rules(node, nodes, pid):
            subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
            added.append(rule)
        yield
    finally:
        for rule in reversed(added):
            subprocess.run(["iptables", "-D", *rule], check=True, capture_output=True)


def rules_left() -> list[str]:
    """Any rule of this run still in the firewall (there should be none)."""
    listed = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=False).stdout
    return [line for line in listed.splitlines() if f"{RULE_TAG}-{os.getpid()}" in line]
