"""A timer is scheduled at or after its due time, and a fire is taken only once that time has come."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from shared.settings import SettingsError, load_settings
from shared.timers import FiredEarly, Timer, now, on_time

pytestmark = pytest.mark.unit


def timer(due_at: datetime) -> Timer:
    return Timer(rule="deadline", aggregate_id=uuid4(), part="report", attempt=1, due_at=due_at)


@pytest.mark.parametrize(
    ("due_at", "schedule"),
    [
        # A sub-second due time goes to the next whole second: truncating would fire up to 1 s early.
        (datetime(2026, 12, 2, 16, 0, 4, 1, tzinfo=UTC), "@at 2026-12-02T16:00:05Z"),
        (datetime(2026, 12, 2, 16, 0, 4, 999_999, tzinfo=UTC), "@at 2026-12-02T16:00:05Z"),
        (datetime(2026, 12, 2, 23, 59, 59, 500_000, tzinfo=UTC), "@at 2026-12-03T00:00:00Z"),
        # A whole second stays as it is; a due time in another zone is written in UTC.
        (datetime(2026, 12, 2, 16, 0, 4, tzinfo=UTC), "@at 2026-12-02T16:00:04Z"),
        (
            datetime(2026, 12, 3, 1, 0, 4, 250_000, tzinfo=timezone(timedelta(hours=9))),
            "@at 2026-12-02T16:00:05Z",
        ),
    ],
)
def test_a_schedule_is_the_first_whole_second_at_or_after_the_due_time(
    due_at: datetime, schedule: str
) -> None:
    assert timer(due_at).schedule == schedule


def test_a_fire_before_its_due_time_is_put_back_for_the_time_it_is_early() -> None:
    taken: list[Timer] = []
    handle = on_time(lambda fired, _: taken.append(fired))
    early = timer(now() + timedelta(seconds=0.8))
    with pytest.raises(FiredEarly) as raised:
        handle(early, None)
    assert 0.5 < raised.value.wait <= 0.8
    assert taken == []
    due = timer(now() - timedelta(microseconds=1))
    handle(due, None)
    assert taken == [due]


def test_the_clock_skew_allowance_takes_a_fire_that_early_and_no_earlier() -> None:
    taken: list[Timer] = []
    handle = on_time(lambda fired, _: taken.append(fired), clock_skew=timedelta(seconds=0.5))
    within = timer(now() + timedelta(seconds=0.4))
    handle(within, None)
    assert taken == [within]
    with pytest.raises(FiredEarly) as raised:
        handle(timer(now() + timedelta(seconds=0.9)), None)
    assert 0.3 < raised.value.wait <= 0.4
    assert taken == [within]


def test_the_clock_skew_is_a_setting_none_by_default_and_small() -> None:
    assert load_settings({}).timer_clock_skew == timedelta(0)
    assert load_settings({"KIZUKI_TIMER_CLOCK_SKEW": "0.25"}).timer_clock_skew == timedelta(seconds=0.25)
    for bad in ("-0.1", "2", "soon", "nan"):
        with pytest.raises(SettingsError, match="KIZUKI_TIMER_CLOCK_SKEW"):
            load_settings({"KIZUKI_TIMER_CLOCK_SKEW": bad})
