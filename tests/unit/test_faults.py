"""Passing faults: the growing wait between tries, and what a part says while it is failing."""

from __future__ import annotations

from shared.faults import FaultWatch, retry_delay


def test_the_wait_doubles_from_one_second_up_to_thirty() -> None:
    assert [retry_delay(attempt) for attempt in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert [retry_delay(attempt, first=0.5) for attempt in range(1, 4)] == [0.5, 1, 2]


def test_a_fault_is_shown_from_its_first_failure_until_the_part_works_again() -> None:
    watch = FaultWatch()
    assert watch.report() == {"failing": False}
    watch.failed(TimeoutError("the key bucket did not answer"))
    since = watch.report()["since"]
    assert watch.failed(ConnectionError("the store went away")) == 2
    report = watch.report()
    assert report == {"failing": True, "since": since, "failures": 2, "last_error": "ConnectionError"}
    assert "store went away" not in str(report)  # the class only: an error's text may hold patient data
    assert watch.failing_for() > 0
    watch.worked()
    assert (watch.report(), watch.failing_for()) == ({"failing": False}, 0.0)
