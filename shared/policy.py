"""The policy file: versioned data, never constants in code."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from shared.channel_names import CHANNEL_NAME, MAX_CHANNEL_NAME
from shared.events import Channel, DutyKind, HcatCategory, Tier


class FollowupPolicy(BaseModel):
    """When callback visits (回访) fall due, how often a patient not reached is tried, and until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_first_response_seconds: int = Field(ge=0, description="Callback after the first response.")
    after_closure_seconds: int = Field(ge=0, description="Callback after the case closes.")
    after_discharge_seconds: int = Field(ge=0, description="Call to a discharged patient, after discharge.")
    retry_interval_seconds: int = Field(gt=0, description="Next attempt after a patient was not reached.")
    max_attempts: int = Field(gt=0, description="Attempts before the callback is abandoned.")
    complete_within_seconds: int = Field(
        gt=0, description="After the first due time; a callback not done by then is overdue."
    )
    working_days_only: bool = Field(
        description="Callbacks fall due on working days of the calendar only (never in quiet hours)."
    )


class RecordingPolicy(BaseModel):
    """How long after the fact a time may still be typed in (see ``shared.entered``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_response_within_seconds: int = Field(
        gt=0, description="The apology call's time: at most this long before it is recorded."
    )
    discharge_within_seconds: int = Field(
        gt=0, description="A patient's discharge time: at most this long before it is recorded."
    )


class Inbox(BaseModel):
    """A channel account no person answers: whose inbox it is (the first hearer) and its department."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heard_by: str = Field(min_length=1, description="Staff id of the account's owner, the first hearer.")
    department: str = Field(min_length=1, description="Department its complaints are registered for.")


class Mailbox(Inbox):
    address: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", description="The address complaints are written to; others are refused."
    )
    max_message_bytes: int = Field(
        gt=0, description="Largest message taken (announced as SIZE); a larger one is refused with 552."
    )
    messages_per_sender: int = Field(
        gt=0, description="Messages one sender address may send per period (more: 451, try later) ..."
    )
    messages_per_client: int = Field(
        gt=0, description="... and one client (IP address: a relaying mail server is one client) ..."
    )
    period_seconds: int = Field(gt=0, description="... in this many seconds.")


class WebForm(BaseModel):
    """The public complaint form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inboxes: dict[str, str] = Field(
        min_length=1,
        description="Department (as offered on the form) to the staff id who owns its web inbox, the "
        "first hearer of what is sent for it.",
    )
    submissions_per_client: int = Field(gt=0, description="Complaints one client may send per period ...")
    period_seconds: int = Field(gt=0, description="... of this many seconds; more are refused, saying so.")


class BusChannel(BaseModel):
    """A channel system that publishes submissions on the bus (a call centre, a chat gateway, a kiosk),
    as an API key does over HTTP: its inbox's owner is the first hearer of what it submits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heard_by: str = Field(min_length=1, description="Staff id of its inbox's owner, the first hearer.")
    channels: list[Channel] = Field(
        min_length=1,
        description="How its complaints reach the hospital (phone, walk_in, ...): its "
        "submissions may name these; a rejected one is recorded under the first when it names none of them.",
    )


BusChannelName = Annotated[str, StringConstraints(pattern=CHANNEL_NAME.pattern, max_length=MAX_CHANNEL_NAME)]


class IntakePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default_language: Literal["ja", "zh", "en"] = Field(
        description="Language of receipts when the complaint does not say."
    )
    line: Inbox = Field(description="The hospital's LINE official account.")
    wechat: Inbox = Field(description="The hospital's WeChat official account.")
    email: Mailbox = Field(description="The complaints mailbox that intake's SMTP receiver takes mail for.")
    web: WebForm
    bus_channels: dict[BusChannelName, BusChannel] = Field(
        default_factory=dict,
        description="Channel systems that publish submissions on submissions.<name>, by name; each needs "
        "its credential (`kizuki channel-credential <name>`).",
    )

    def inbox_owners(self) -> set[str]:
        """Every staff id the channels name as first hearer."""
        return {
            self.line.heard_by,
            self.wechat.heard_by,
            self.email.heard_by,
            *self.web.inboxes.values(),
            *(channel.heard_by for channel in self.bus_channels.values()),
        }

    append_window_seconds: int = Field(
        ge=0,
        description="A chat message from someone whose complaint on that channel is this recent is "
        "added to it instead of opening a new one.",
    )
    duplicate_window_seconds: int = Field(
        ge=0, description="A complaint is compared with the complaints this recent from the same contact."
    )
    duplicate_similarity: float = Field(
        gt=0,
        le=1,
        description="Likeness of the texts (0 to 1) from which it is flagged a possible duplicate.",
    )


DUTY_KINDS: tuple[DutyKind, ...] = (
    "supervisor_acknowledgement",
    "supervisor_report",
    "first_hearer_report",
    "first_response",
    "patient_feedback",
)


class Window(BaseModel):
    """How long something may take: a clock duration or working days of the calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    within_seconds: int | None = Field(default=None, gt=0, description="A clock duration.")
    within_working_days: int | None = Field(
        default=None, gt=0, description="Working days of the calendar, at the same time of day."
    )

    @model_validator(mode="after")
    def _one_measure(self) -> Window:
        if (self.within_seconds is None) == (self.within_working_days is None):
            raise ValueError("give exactly one of within_seconds and within_working_days")
        return self


class DutyRule(Window):
    """How long a duty may take, and from which moment."""

    anchor: Literal["occurred_at", "registered_at"] = Field(
        description="The moment the deadline is measured from: when the complaint occurred or was registered."
    )


class ClassificationRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: Tier = Field(description="The tier a complaint gets when the rule matches.")
    categories: list[str] = Field(default_factory=list, description="Categories that make the rule match.")
    keywords: list[str] = Field(
        default_factory=list, description="Words that, found in the summary, make the rule match."
    )

    @model_validator(mode="after")
    def _matches_something(self) -> ClassificationRule:
        if not self.categories and not self.keywords:
            raise ValueError("a classification rule needs categories or keywords")
        return self


class Classification(BaseModel):
    """How a complaint is tiered when the channel gave no tier: the first matching rule wins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_tier: Tier
    rules: list[ClassificationRule] = Field(default_factory=list)


class CalendarPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str = Field(
        min_length=2, description="Holiday calendar (ISO country code of the holidays package)."
    )
    timezone: str = Field(description="The organisation's time zone, e.g. Asia/Tokyo.")
    quiet_hours_start: time = Field(description="Reminders wait from this local time ...")
    quiet_hours_end: time = Field(description="... until this one (the next morning when it is earlier).")


class ChasePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repeat_interval_seconds: int = Field(
        gt=0, description="Time between alerts to a person who has not answered."
    )
    attempts: int = Field(gt=0, description="Alerts to one person before the chain goes up.")


class EscalationPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: CalendarPolicy
    chase: ChasePolicy
    classification: Classification
    duties: dict[DutyKind, DutyRule]
    learning_notices: Window = Field(
        description="How long each department has to answer a learning notice, from when it is issued."
    )

    @model_validator(mode="after")
    def _every_duty(self) -> EscalationPolicy:
        missing = [kind for kind in DUTY_KINDS if kind not in self.duties]
        if missing:
            raise ValueError(f"escalation.duties lacks {', '.join(missing)}")
        return self


class HcatPolicy(BaseModel):
    """How the hospital's own categories map onto the HCAT taxonomy: a suggestion, the coder decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    map: dict[str, HcatCategory] = Field(
        default_factory=dict,
        description="The hospital's category (as given at intake, compared without case) to the HCAT "
        "category suggested for it.",
    )

    def suggestion(self, category: str | None) -> HcatCategory | None:
        """The HCAT category the policy suggests for a hospital category, if it maps it."""
        if category is None:
            return None
        folded = category.casefold()
        return next((hcat for own, hcat in self.map.items() if own.casefold() == folded), None)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1, description="Recorded on every case that starts under it.")
    intake: IntakePolicy
    escalation: EscalationPolicy
    hcat: HcatPolicy = Field(default_factory=HcatPolicy)
    followup: FollowupPolicy
    recording: RecordingPolicy

    @model_validator(mode="after")
    def _no_discharge_callback_overdue_on_arrival(self) -> Policy:
        latest = self.followup.after_discharge_seconds + self.followup.complete_within_seconds
        if self.recording.discharge_within_seconds >= latest:
            raise ValueError(
                "recording.discharge_within_seconds must be less than followup.after_discharge_seconds + "
                f"followup.complete_within_seconds ({latest}): a discharge recorded that late would make "
                "its callback overdue the moment it is created"
            )
        return self


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
