"""Who may do what on the bus, derived from the code's declarations, never from a hand-kept list.

A service may publish its own record events and set timers in its own timer stream (if it consumes
their fires), pull and acknowledge its own durable consumers and read their state, read the record's
messages one at a time (the relay resumes from the last) and, for its metrics, its timer stream's state.
The auditor may read the record. A channel system may publish its submissions on its own subject and
nothing else. Only the administrator, used by provisioning, may manage streams and consumers.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, TextIO

from shared.bus import (
    KEY_BUCKET,
    KEY_STREAM,
    RECORD_STREAM,
    Subscription,
    channel_user,
    inbox_prefix,
    record_subjects,
    schedule_subject,
    services_with_timers,
    submission_subject,
    timer_stream,
)

ADMINISTRATOR = "admin"
AUDITOR = "auditor"

JS_API = "$JS.API"


@dataclass(frozen=True)
class Permissions:
    """The subjects a bus user may publish to and subscribe to; everything else is refused."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


# What a service does with the patient data keys (shared/privacy.py): intake keeps them (puts and
# destroys), others read them to open what they need. A service not named here never sees one.
KeyUse = Literal["keeps", "reads"]


def key_permissions(use: KeyUse | None) -> tuple[str, ...]:
    if use is None:
        return ()
    reading = (f"{JS_API}.STREAM.INFO.{KEY_STREAM}", f"{JS_API}.STREAM.MSG.GET.{KEY_STREAM}")
    if use == "reads":
        return reading
    return (*reading, f"$KV.{KEY_BUCKET}.>", f"{JS_API}.STREAM.MSG.DELETE.{KEY_STREAM}")


def service_permissions(
    service: str, subscriptions: Sequence[Subscription], key_use: KeyUse | None = None
) -> Permissions:
    consumers = [(subscription.stream, subscription.durable) for subscription in subscriptions]
    # Only its own schedule subjects: a schedule's target must be in the same stream, the service's own.
    has_timers = service in services_with_timers(subscriptions)
    timers = [schedule_subject(service, ">")] if has_timers else []
    return Permissions(
        publish=(
            record_subjects(service),
            *timers,
            f"{JS_API}.STREAM.MSG.GET.{RECORD_STREAM}",
            # A set-aside message is read again by its sequence when an administrator takes it up.
            *(
                f"{JS_API}.STREAM.MSG.GET.{stream}"
                for stream in sorted({s for s, _ in consumers} - {RECORD_STREAM})
            ),
            *(f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}" for stream, durable in consumers),
            # Its consumers' state: for /health and /metrics, and for a rebuild of its store from the record.
            *(f"{JS_API}.CONSUMER.INFO.{stream}.{durable}" for stream, durable in consumers),
            *(f"$JS.ACK.{stream}.{durable}.>" for stream, durable in consumers),
            # For /metrics: its timers pending.
            *([f"{JS_API}.STREAM.INFO.{timer_stream(service)}"] if has_timers else []),
            *key_permissions(key_use),
        ),
        subscribe=(f"{inbox_prefix(service)}.>",),
    )


def auditor_permissions() -> Permissions:
    """Read the record through an ordered consumer or one message at a time; write nothing."""
    return Permissions(
        publish=(
            f"{JS_API}.STREAM.INFO.{RECORD_STREAM}",
            f"{JS_API}.STREAM.MSG.GET.{RECORD_STREAM}",
            f"{JS_API}.CONSUMER.CREATE.{RECORD_STREAM}",
            f"$JS.FC.{RECORD_STREAM}.>",
        ),
        subscribe=(f"{inbox_prefix(AUDITOR)}.>",),
    )


def channel_permissions(channel: str) -> Permissions:
    """Publish submissions on its own subject, and receive the server's answers to them (the stream's
    acknowledgement) on its own inbox: it can neither read a submission, its own included, nor the
    record, nor publish anywhere else."""
    return Permissions(
        publish=(submission_subject(channel),), subscribe=(f"{inbox_prefix(channel_user(channel))}.>",)
    )


def bus_permissions(
    subscriptions: Mapping[str, Sequence[Subscription]],
    key_uses: Mapping[str, KeyUse],
    channels: Collection[str] = (),
) -> dict[str, Permissions | None]:
    """Every bus user and what it may do: one user per service, the auditor, one per channel that
    publishes submissions, and the administrator (``None``: no limit)."""
    return {
        **{
            service: service_permissions(service, declared, key_uses.get(service))
            for service, declared in subscriptions.items()
        },
        AUDITOR: auditor_permissions(),
        **{channel_user(channel): channel_permissions(channel) for channel in sorted(channels)},
        ADMINISTRATOR: None,
    }


def print_permissions(users: Mapping[str, Permissions | None], out: TextIO) -> None:
    """As JSON: each user's allowed publish and subscribe subjects; ``null`` for no limit."""
    shown = {
        name: None if permissions is None else asdict(permissions) for name, permissions in users.items()
    }
    print(json.dumps(shown, indent=2), file=out)
