"""Passing faults: which part of a service is failing right now, since when and with what, so that
/health can say so while it lasts, and the wait before trying again."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import nats.errors
import psycopg
from eventsourcing import persistence

from shared.timers import now

log = logging.getLogger(__name__)

# Faults of the infrastructure, which pass: the network, the bus and its key bucket, a busy or
# unreachable store, a conflict with a person's action on the same aggregate (a retry reads the new
# state). Anything else a handler raises is a defect: it is tried a few times, then set aside.
PASSING_FAULTS: tuple[type[BaseException], ...] = (
    OSError,  # TimeoutError and ConnectionError among them
    nats.errors.Error,
    persistence.OperationalError,
    persistence.InterfaceError,
    persistence.IntegrityError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
)
# Deliveries of a message whose handler fails with a defect before it is set aside.
ATTEMPTS_BEFORE_SETTING_ASIDE = 5

# The wait before the second try, doubled for each one after, at most this long.
FIRST_RETRY_DELAY = 1.0
LONGEST_RETRY_DELAY = 30.0


def retry_delay(attempt: int, first: float = FIRST_RETRY_DELAY) -> float:
    """The wait after the ``attempt``-th failure in a row (1 for the first)."""
    return min(first * 2.0 ** max(attempt - 1, 0), LONGEST_RETRY_DELAY)


class FaultWatch:
    """One part of a service (its relay, a consumer, a task): failing or not, and how long for."""

    def __init__(self) -> None:
        self.since: datetime | None = None
        self.failures = 0  # in a row, since the part last worked
        self.last_error = ""
        self._since_monotonic = 0.0

    def failed(self, error: BaseException) -> int:
        """Note one more failure; returns how many there have been in a row."""
        if self.since is None:
            self.since, self._since_monotonic = now(), time.monotonic()
        self.failures += 1
        self.last_error = type(error).__name__
        return self.failures

    def worked(self) -> None:
        self.since, self.failures = None, 0

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failing_for(self) -> float:
        """Seconds since the fault began, 0 when there is none."""
        return time.monotonic() - self._since_monotonic if self.failing else 0.0

    def report(self) -> dict[str, Any]:
        if self.since is None:
            return {"failing": False}
        return {
            "failing": True,
            "since": self.since.isoformat(),
            "failures": self.failures,
            "last_error": self.last_error,
        }


class Supervised:
    """A background task of a service, started again whenever it fails, later each time it fails
    again in a row. A task that says itself when it works again (the relay) shares its ``fault``;
    for any other, the fault is taken as over once a restart has run longer than the longest wait."""

    def __init__(
        self, name: str, run: Callable[[], Awaitable[None]], fault: FaultWatch | None = None
    ) -> None:
        self.name = name
        self.run = run
        self.restarts = 0
        self.fault = fault if fault is not None else FaultWatch()
        self._says_when_it_works = fault is not None
        self._started = time.monotonic()

    async def forever(self) -> None:
        while True:
            self._started = time.monotonic()
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self.current_fault().failed(error)
                self.restarts += 1
                delay = retry_delay(failures)
                log.exception("%s failed; restarting it in %.0f s", self.name, delay)
                await asyncio.sleep(delay)

    def current_fault(self) -> FaultWatch:
        if (
            not self._says_when_it_works
            and self.fault.failing
            and time.monotonic() - self._started > LONGEST_RETRY_DELAY
        ):
            self.fault.worked()
        return self.fault

    def report(self) -> dict[str, Any]:
        return {**self.current_fault().report(), "restarts": self.restarts}
