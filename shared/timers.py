"""Timers: set through NATS message schedules, fired as messages on the timer stream."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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
    due_at: AwareDatetime = Field(description="When the timer fires (second resolution).")

    @property
    def key(self) -> str:
        return ".".join(filter(None, (self.rule, str(self.aggregate_id), self.part, str(self.attempt))))

    @property
    def schedule(self) -> str:
        """The ``Nats-Schedule`` header value: one shot, RFC 3339 in UTC."""
        return "@at " + self.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> Timer:
        return cls.model_validate_json(data)


def now() -> datetime:
    return datetime.now(UTC)
