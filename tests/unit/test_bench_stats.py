import pytest

from bench.stats import percentiles

pytestmark = pytest.mark.unit


def test_percentiles_of_a_hundred_values() -> None:
    figures = percentiles([float(n) for n in range(100, 0, -1)])
    assert figures == {"p50": 51.0, "p95": 96.0, "p99": 100.0}


def test_no_values_give_zeros_rather_than_an_error() -> None:
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0}
