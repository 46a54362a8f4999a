"""Delivery channels: what they are given, how they fail, and how they are configured (one TOML file,
secrets from the environment)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.notifier.domain import RetryRule


@dataclass(frozen=True)
class Message:
    delivery_id: UUID
    idempotency_key: UUID  # the same on every attempt of this delivery on this channel
    complaint_id: UUID
    recipient: str  # COMPLAINANT, or the staff id
    address: str
    subject: str
    text: str


# Why a delivery failed, as the record and the logs say it. A provider's own text is never kept: it
# often echoes the address (in any case, quoted, with a display name, URL-encoded), and the record
# cannot be erased.
FailureKind = Literal[
    "refused",  # the provider answered, and did not take the message
    "rejected_recipient",  # the provider does not take messages for this address
    "auth_failed",  # our credentials were refused
    "rate_limited",
    "server_error",
    "unreachable",  # no connection, or it was dropped
    "timeout",
    "channel_error",  # a fault of ours in the channel
]


class DeliveryFailed(Exception):
    """The channel did not take the message, for a classified reason and, when the provider answered,
    with its status code. Permanent: trying again would not help."""

    def __init__(self, kind: FailureKind, permanent: bool, status: str | None = None) -> None:
        self.kind = kind
        self.permanent = permanent
        self.status = status  # e.g. "SMTP 550", "HTTP 503": a code, never the provider's words
        self.reason = f"{kind} ({status})" if status else kind
        super().__init__(self.reason)


class Channel(Protocol):
    async def send(self, message: Message) -> None:
        """Hand the message over; raises DeliveryFailed when the channel refuses it or cannot be reached."""


class ChannelError(ValueError):
    """The channel configuration cannot be used; the message says where."""


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelSettings(Strict):
    concurrency: int | None = Field(
        default=None,
        gt=0,
        description="Attempts in flight on this channel at once (default: concurrency_per_channel).",
    )


class FileConfig(ChannelSettings):
    kind: Literal["file"]
    directory: Path | None = Field(default=None, description="Default: the notifier's data directory.")


class SmtpConfig(ChannelSettings):
    kind: Literal["smtp"]
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS before auth.")
    ca_file: Path | None = Field(default=None, description="CA certificates to trust; default: the system's.")
    username: str | None = None
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")
    sender: str = Field(description="The From address.")


class WebhookConfig(ChannelSettings):
    kind: Literal["webhook"]
    format: Literal["json", "slack", "line", "wechat"] = Field(
        default="json", description="The body the receiving tool expects."
    )
    url: str | None = Field(default=None, description="Where to POST; or url_env.")
    url_env: str | None = Field(default=None, description="Environment variable holding the URL.")
    token_env: str | None = Field(default=None, description="Environment variable of a bearer token.")


class SmsConfig(ChannelSettings):
    kind: Literal["sms"]
    url: str = Field(description="The provider's send endpoint.")
    encoding: Literal["json", "form"] = "form"
    body: dict[str, str] = Field(
        description="Fields of the request; {to}, {text} and {delivery_id} are filled in."
    )
    username: str | None = Field(default=None, description="For HTTP basic authentication.")
    password_env: str | None = Field(default=None, description="Environment variable of the password.")

    @field_validator("body")
    @classmethod
    def _fills_known_fields_only(cls, body: dict[str, str]) -> dict[str, str]:
        for name, template in body.items():
            try:
                template.format(to="", text="", delivery_id="")
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(
                    f"body.{name}: only {{to}}, {{text}} and {{delivery_id}} are filled in ({error!r})"
                ) from None
        return body


ChannelConfig = Annotated[FileConfig | SmtpConfig | WebhookConfig | SmsConfig, Field(discriminator="kind")]


class DeliveryConfig(Strict):
    timeout_seconds: float = Field(default=10, gt=0, description="An attempt that takes longer failed.")
    concurrency_per_channel: int = Field(default=4, gt=0, description="Attempts in flight on one channel.")
    attempts_per_channel: int = Field(default=4, gt=0, description="Transient failures before moving on.")
    first_retry_seconds: float = Field(default=2, gt=0, description="Doubled after each failure ...")
    max_retry_seconds: float = Field(default=300, gt=0, description="... up to this.")
    link_lifetime_hours: float = Field(default=72, gt=0, description="How long acknowledgement links work.")

    @property
    def retry_rule(self) -> RetryRule:
        return RetryRule(
            self.attempts_per_channel,
            timedelta(seconds=self.first_retry_seconds),
            timedelta(seconds=self.max_retry_seconds),
        )


class ChannelsFile(Strict):
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    channels: dict[str, ChannelConfig] = Field(
        description="By the names used in the staff directory's contacts; 'email' and 'sms' also "
        "carry receipts to complainants."
    )

    def in_flight(self) -> dict[str, int]:
        """How many attempts each channel may have in flight at once."""
        default = self.delivery.concurrency_per_channel
        return {name: channel.concurrency or default for name, channel in self.channels.items()}


def load_channels(path: Path) -> ChannelsFile:
    try:
        return ChannelsFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as error:
        raise ChannelError(f"channel configuration {path}: {error}") from None


def secret_from(env: Mapping[str, str], name: str | None, what: str) -> str | None:
    """The secret held by the environment variable ``name``, which must be set when named."""
    if name is None:
        return None
    value = env.get(name)
    if not value:
        raise ChannelError(f"{what} is to be read from ${name}, which is not set")
    return value
