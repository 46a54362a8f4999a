"""The policy file: versioned data, never constants in code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class FollowupPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    callback_delay_seconds: int = Field(ge=0, description="Delay of the first callback after a case opens.")


class IntakePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default_language: Literal["ja", "zh", "en"] = Field(
        description="Language of receipts when the complaint does not say."
    )


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1, description="Recorded on every case that starts under it.")
    intake: IntakePolicy
    followup: FollowupPolicy


class PolicyError(ValueError):
    """The policy file is missing or does not hold a valid policy."""


def load_policy(path: Path) -> Policy:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return Policy.model_validate(raw)
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise PolicyError(f"policy file {path} is not valid: {error}") from None
