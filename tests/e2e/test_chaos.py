"""Faults under load, short: `make chaos`'s driver with a NATS node and one process of each service
SIGKILLed, at a low rate. `make chaos` runs every fault for about a minute."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import chaos, report

pytestmark = pytest.mark.e2e


async def test_nothing_accepted_is_lost_or_repeated_when_a_node_and_the_services_are_killed(
    tmp_path: Path,
) -> None:
    result = await chaos(
        tmp_path / "chaos", rate=2, faults=("nats-kill", "services"), gap=4, warmup=2, quiet=2
    )
    print(report(result))  # shown by pytest when the test fails
    assert result.failures == []
    windows = result.analysis["windows"]
    assert [window.name for window in windows[1:]] == [fault.name for fault in result.faults]
    for window in windows:
        assert window.accepted > 0, window.name  # load went on through each fault
        assert window.complete == window.accepted
    assert len(set(result.digests.values())) == 1
    assert result.verify[0] == 0
    launcher = "\n".join(result.launcher_said)
    assert "exited with -9" in launcher
    assert "nats-server" in launcher
