"""Timers: set through NATS message schedules, fired as messages on the service's own timer stream."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.metrics import TIMER_LATENESS

# How far the bus's clock may run ahead of the service's and a fire still be taken: 0 by default, so a
# fire is taken only once the service's own clock has reached the due time (KIZUKI_TIMER_CLOCK_SKEW).
DEFAULT_CLOCK_SKEW = timedelta(0)
MAX_CLOCK_SKEW = timedelta(seconds=1)


class FiredEarly(Exception):
    """A timer fire that arrived before its due time (schedules have whole-second resolution): the
    consumer puts the message back for ``wait`` seconds instead of taking it; it is not a failure."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"fired {wait:.3f} s before its due time")
        self.wait = wait


class Timer(BaseModel):
    """A timer one service sets for itself. The fire carries this same body back.

    The key (rule, aggregate, attempt) is unique, so a timer set twice is one schedule,
    and the handler of a fire checks the aggregate's state: a fire for work already done is a no-op.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(pattern=r"^[a-z_]+$", description="What the timer is for, e.g. 'callback'.")
    aggregate_id: UUID = Field(description="The aggregate that set the timer.")
    part: str = Field(
        default="", pattern=r"^[a-z_]*$", description="Which part of the aggregate, e.g. a duty."
    )
    attempt: int = Field(ge=1, description="Attempt this timer is for.")
    due_at: AwareDatetime = Field(description="When the timer falls due; it never fires before.")

    @property
    def key(self) -> str:
        return ".".join(filter(None, (self.rule, str(self.aggregate_id), self.part, str(self.attempt))))

    @property
    def schedule(self) -> str:
        """The ``Nats-Schedule`` header value: one shot, RFC 3339 in UTC, at the first whole second at
        or after the due time (schedules have whole-second resolution: truncating would fire early)."""
        due = self.due_at.astimezone(UTC)
        whole = due.replace(microsecond=0)
        at = whole if whole == due else whole + timedelta(seconds=1)
        return "@at " + at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> Timer:
        return cls.model_validate_json(data)


Context = TypeVar("Context")


def on_time(
    handle: Callable[[Timer, Context], None], clock_skew: timedelta = DEFAULT_CLOCK_SKEW
) -> Callable[[Timer, Context], None]:
    """A timer consumer's handler that takes a fire only once the clock has reached its due time less
    ``clock_skew``; an earlier fire raises FiredEarly and is put back for the time it is early."""

    def handle_on_time(timer: Timer, context: Context) -> None:
        taken = now()
        early = (timer.due_at - clock_skew - taken).total_seconds()
        if early > 0:
            raise FiredEarly(early)
        handle(timer, context)
        TIMER_LATENESS.labels(timer.rule).observe(max((taken - timer.due_at).total_seconds(), 0.0))

    return handle_on_time


def now() -> datetime:
    return datetime.now(UTC)
