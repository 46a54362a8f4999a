"""Who is signed in to the console: sessions with idle expiry, their CSRF tokens, and a limit on
failed sign-ins. Kept in the process: a restart signs everyone out."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from services.console.filters import NO_FILTERS, Filters

IDLE_SECONDS = 30 * 60
FAILURES_ALLOWED = 5
FAILURE_WINDOW_SECONDS = 15 * 60


@dataclass
class Session:
    staff_id: str
    csrf: str
    language: str
    last_seen: float
    filters: Filters = NO_FILTERS  # of My work and the callbacks page, until changed or signed out

    def checks(self, csrf: str | None) -> bool:
        return csrf is not None and hmac.compare_digest(self.csrf, csrf)


@dataclass
class Sessions:
    idle_seconds: float = IDLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _open: dict[str, Session] = field(default_factory=dict)

    def start(self, staff_id: str, language: str) -> str:
        """A new session id; sessions left idle (never signed out) are forgotten meanwhile."""
        moment = self.clock()
        for idle in [key for key, s in self._open.items() if moment - s.last_seen > self.idle_seconds]:
            del self._open[idle]
        session_id = secrets.token_urlsafe(32)
        self._open[session_id] = Session(staff_id, secrets.token_urlsafe(32), language, moment)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The session, if it is open and was used within the idle time; using it keeps it open."""
        session = self._open.get(session_id or "")
        if session is None:
            return None
        if self.clock() - session.last_seen > self.idle_seconds:
            del self._open[session_id or ""]
            return None
        session.last_seen = self.clock()
        return session

    def __len__(self) -> int:
        return len(self._open)

    def end(self, session_id: str | None) -> None:
        self._open.pop(session_id or "", None)


@dataclass
class Attempts:
    """At most ``allowed`` failed sign-ins per staff id, and per client, within the window."""

    allowed: int = FAILURES_ALLOWED
    window: float = FAILURE_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        """How many staff ids and clients have failures kept."""
        return len(self._failures)

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(key)) >= self.allowed for key in keys)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._failures[key] = self._recent(key)
            self._failures[key].append(self.clock())

    def _recent(self, key: str) -> deque[float]:
        """The key's failures within the window; a key left with none is forgotten, so that guessing
        at many staff ids does not make the table grow."""
        failures = self._failures.get(key, deque())
        while failures and self.clock() - failures[0] > self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures
