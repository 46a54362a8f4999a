from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from services.followup.domain import Callback, first_callback_due
from shared.timers import Timer

pytestmark = pytest.mark.unit

OPENED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_the_first_callback_is_anchored_on_the_opening_of_the_case() -> None:
    assert first_callback_due(OPENED, timedelta(days=1)) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_a_callback_falls_due_once_for_its_attempt() -> None:
    callback = Callback(id=uuid4(), complaint_id=uuid4(), due_at=OPENED, attempt=1)
    assert callback.is_awaiting(1)
    assert not callback.is_awaiting(2)
    callback.fall_due()
    assert callback.status == "due"
    assert not callback.is_awaiting(1)


def test_a_timer_schedules_in_utc_with_second_resolution() -> None:
    tokyo = timezone(timedelta(hours=9))
    timer = Timer(
        rule="callback", aggregate_id=uuid4(), attempt=2, due_at=datetime(2026, 11, 24, 11, 0, 5, 999, tokyo)
    )
    assert timer.schedule == "@at 2026-11-24T02:00:05Z"
    assert timer.key == f"callback.{timer.aggregate_id}.2"
    assert Timer.decode(timer.encode()) == timer
