"""How often one client may knock: a sliding window per key (a browser's address, a mail sender)."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

# Keys seen once and never again would otherwise stay in memory: past this many, the idle ones go
# (and the next sweep waits until there are twice as many as were left, so sweeping stays cheap).
SWEEP_ABOVE = 10_000


class RateLimiter:
    """At most ``limit`` uses per key in any ``period``, in this process's memory (a restart forgets)."""

    def __init__(self, limit: int, period: timedelta) -> None:
        self.limit = limit
        self.period = period
        self._used: dict[str, deque[datetime]] = {}
        self._sweep_above = SWEEP_ABOVE

    def allows(self, key: str, at: datetime) -> bool:
        """Whether the key may be used now; uses nothing."""
        return len(self._recent(key, at)) < self.limit

    def use(self, key: str, at: datetime) -> None:
        self._used[key] = self._recent(key, at)
        self._used[key].append(at)
        if len(self._used) > self._sweep_above:
            for idle in [key for key, used in self._used.items() if not used or used[-1] <= at - self.period]:
                del self._used[idle]
            self._sweep_above = max(SWEEP_ABOVE, 2 * len(self._used))

    def allow(self, key: str, at: datetime) -> bool:
        """Use the key if it may be used now."""
        if not self.allows(key, at):
            return False
        self.use(key, at)
        return True

    def _recent(self, key: str, at: datetime) -> deque[datetime]:
        used = self._used.get(key, deque())
        while used and used[0] <= at - self.period:
            used.popleft()
        return used
