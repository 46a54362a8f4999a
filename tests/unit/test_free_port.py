"""Ports for the processes the tests and the bench start."""

import socket

import pytest

from kizuki.processes import FREE_PORTS, free_port

pytestmark = pytest.mark.unit


def test_a_free_port_is_bindable_outside_the_ephemeral_range_and_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(port in FREE_PORTS and port < 32768 for port in ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[-1]))


def test_a_port_something_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr("kizuki.processes.FREE_PORTS", range(busy, busy + 1))
        with pytest.raises(RuntimeError, match="no free loopback port"):
            free_port()
