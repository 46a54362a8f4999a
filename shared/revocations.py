"""Revoked staff tokens: by token id, or every token of a person issued up to a moment.

`kizuki token revoke` writes the file; every service reads it again when it changes (see LiveFile),
so a revoked token is refused at its next request.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Revocations(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: dict[str, datetime] = Field(
        default_factory=dict, description="Token id (jti) to when it was revoked."
    )
    staff: dict[str, int] = Field(
        default_factory=dict,
        description="Staff id to a Unix time: their tokens issued up to that second are revoked.",
    )

    def reason(self, token_id: str, staff_id: str, issued_at: int) -> str | None:
        """Why the token is revoked, or None if it is not."""
        if token_id in self.tokens:
            return "this token has been revoked"
        if issued_at <= self.staff.get(staff_id, -1):
            return f"the tokens of {staff_id} issued before {_when(self.staff[staff_id])} have been revoked"
        return None

    def without_expired(self, now: datetime, max_lifetime: timedelta) -> Revocations:
        """Less what no longer matters: a token revoked longer ago than the longest lifetime a token may
        have has expired anyway (a token longer than that maximum is refused whatever this file says)."""
        oldest = now - max_lifetime
        return Revocations(
            tokens={token: at for token, at in self.tokens.items() if at >= oldest},
            staff={staff: up_to for staff, up_to in self.staff.items() if up_to >= oldest.timestamp()},
        )


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def load_revocations(path: Path) -> Revocations:
    """The revoked tokens; no file means none is revoked."""
    try:
        return Revocations.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return Revocations()
    except ValidationError as error:
        raise ValueError(f"the revoked tokens file {path} is not valid: {error}") from None


def _write(path: Path, revocations: Revocations) -> None:
    """Whole or not at all: a service reading meanwhile sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(revocations.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def revoke_token(path: Path, token_id: str, at: datetime, max_lifetime: timedelta) -> None:
    revocations = load_revocations(path).without_expired(at, max_lifetime)
    _write(path, revocations.model_copy(update={"tokens": revocations.tokens | {token_id: at}}))


def revoke_staff_tokens(path: Path, staff_id: str, at: datetime, max_lifetime: timedelta) -> None:
    """Every token of ``staff_id`` issued up to that second (tokens carry their issue time in seconds)."""
    revocations = load_revocations(path).without_expired(at, max_lifetime)
    second = max(int(at.timestamp()), revocations.staff.get(staff_id, -1))
    _write(path, revocations.model_copy(update={"staff": revocations.staff | {staff_id: second}}))
