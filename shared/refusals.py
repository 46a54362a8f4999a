"""What an aggregate says when it refuses a person's action. Pure: the HTTP API turns these into 403
and 409 (see ``shared.service.applied``)."""

from __future__ import annotations


class NotPermitted(ValueError):
    """The person may not take this action here; the message says why."""


class NotPossible(ValueError):
    """The action does not fit the state of the aggregate; the message says why."""

    def detail(self) -> str | dict[str, object]:
        """What the 409 answer says."""
        return str(self)
