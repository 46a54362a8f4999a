from typing import Any

import pytest

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
