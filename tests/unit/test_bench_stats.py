from typing import Any

import pytest

from bench.__main__ import GOAL_P99_MS, GOAL_RATE, goal_lines
from bench.end_to_end import bracket
from bench.stats import percentiles

pytestmark = pytest.mark.unit


def test_percentiles_of_a_hundred_values() -> None:
    figures = percentiles([float(n) for n in range(100, 0, -1)])
    assert figures == {"p50": 51.0, "p95": 96.0, "p99": 100.0}


def test_no_values_give_zeros_rather_than_an_error() -> None:
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0}


def test_the_search_for_the_highest_sustained_rate_starts_between_what_held_and_what_did_not() -> None:
    def run(sent: float, sustained: bool, completed: float = 0.0) -> dict[str, Any]:
        return {"sent_per_second": sent, "sustained": sustained, "completed_per_second": completed}

    assert bracket([run(20, True), run(100, True), run(300, False), run(80, False, 80)]) == (100, 300)
    assert bracket([run(20, True), run(100, True), run(160, False, 160)]) == (100, 160)
    # Everything held, as fast as it went too: up to a little above what it completed.
    assert bracket([run(20, True), run(100, True), run(160, True, 160)]) == (160, 200)
    assert bracket([run(20, False, 15)]) == (0, 20)


def test_the_goals_are_read_beside_what_the_runs_measured() -> None:
    def run(label: str, cpu: dict[str, float], p99: float = 0.0) -> dict[str, Any]:
        latency = {stage: {"p99": p99} for stage in GOAL_P99_MS}
        return {"label": label, "cpu_ms_per_complaint": cpu, "latency_ms": latency}

    runs = [run("20/s", {"intake": 50.0, "notifier": 30.0}), run(f"{GOAL_RATE}/s", {"intake": 30.0}, 140.0)]
    lines = goal_lines(runs, 60.0)
    assert lines[1].endswith(": 60/s")
    assert lines[2].endswith(": 30.0 ms at best")  # the least of any run, all its processes together
    assert all(line.endswith(": 140 ms") for line in lines[3:])
    assert "not measured" in goal_lines(runs[:1], 60.0)[-1]
