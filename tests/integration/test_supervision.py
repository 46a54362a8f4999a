"""`kizuki run`'s supervision of its processes, on real processes that keep dying."""

from __future__ import annotations

import re
import subprocess

import pytest

from kizuki.processes import Supervised
from tests.polling import until

pytestmark = pytest.mark.integration


class Quick(Supervised):
    """The same supervision with the waits of a test."""

    FIRST_WAIT = 0.05
    LONGEST_WAIT = 0.2


def test_a_process_that_keeps_dying_is_started_again_each_time_after_a_longer_wait(
    capsys: pytest.CaptureFixture[str],
) -> None:
    starts: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        starts.append(subprocess.Popen(["false"]))
        return starts[-1]

    supervised = Quick("crasher", start)
    printed: list[str] = []

    def four_deaths() -> bool:
        supervised.check()
        printed.extend(capsys.readouterr().out.splitlines())
        return len([line for line in printed if "exited" in line]) >= 4

    until(four_deaths, within=10, what="four restarts")
    waits = [float(wait) for wait in re.findall(r"starting it again in ([\d.]+) s", "\n".join(printed))]
    assert waits[:4] == [0.05, 0.1, 0.2, 0.2]
    assert printed[0] == "kizuki: crasher exited with 1; starting it again in 0.05 s"
    assert "kizuki: crasher started again" in printed[1]
    assert len(starts) >= 4
