"""A service's message table: what it publishes (a domain event becomes a wire event) and what it handles
(a wire event goes to a handler typed for it), bound to its contract (shared/contracts.py).

Every service declares the same two parts the same way; the subjects and decoders of its consumers
follow from them, and a table that publishes another service's events, leaves one of its own
unpublished, handles an event its subscription does not carry or carries one it does not handle, fails
when it is built, not when a message comes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import AggregateEvent, DomainEventProtocol
from eventsourcing.persistence import Tracking
from nats.aio.msg import Msg

from shared.consumer import Consumer, body_only, complaint_id_of
from shared.contracts import Contract
from shared.events import WireEvent, decoder, subject_of
from shared.privacy import KeyVault
from shared.store import ServiceApplication
from shared.timers import Timer

Domain = TypeVar("Domain", bound=AggregateEvent)
Read = TypeVar("Read")
Wire = TypeVar("Wire", bound=WireEvent)


class Happened(Protocol):
    """A domain event of an aggregate that says when it happened in the world (``at``)."""

    @property
    def originator_id(self) -> UUID: ...

    @property
    def at(self) -> datetime: ...


def _nothing_given(_: object) -> Mapping[str, Any]:
    return {}


def _always(_: object) -> bool:
    return True


@dataclass(frozen=True)
class Publish(Generic[Domain, Wire]):
    """A domain event of this kind goes on the record as that wire event: every field of the same name
    copied (``ServiceApplication.copied_to_wire``), ``given`` the ones renamed or computed. ``when``:
    for a domain event that becomes one wire event or another, the first row whose test holds."""

    domain: type[Domain]
    wire: type[Wire]
    given: Callable[[Domain], Mapping[str, Any]] = _nothing_given
    when: Callable[[Domain], bool] = _always


class Publishes:
    """What a service publishes: its rows in order, every one of its contract's events among them."""

    def __init__(self, contract: Contract, *rows: Publish[Any, Any]) -> None:
        foreign = _names(row.wire for row in rows if row.wire.service != contract.service)
        if foreign:
            raise ValueError(f"{contract.service} cannot publish {foreign}: they are another service's")
        unpublished = _names(set(contract.publishes) - {row.wire for row in rows})
        if unpublished:
            raise ValueError(f"{contract.service} publishes {unpublished} from no domain event")
        self.contract = contract
        self.rows = rows

    def wire_event(
        self, store: ServiceApplication, domain_event: DomainEventProtocol[UUID]
    ) -> WireEvent | None:
        """The wire event of a stored domain event, or None when no row takes it (it stays inside)."""
        for row in self.rows:
            if isinstance(domain_event, row.domain) and row.when(domain_event):
                wire: WireEvent = store.copied_to_wire(row.wire, domain_event, **row.given(domain_event))
                return wire
        return None


@dataclass(frozen=True)
class On(Generic[Wire]):
    """When an event of this kind comes, this handler records its effects with the tracking record."""

    wire: type[Wire]
    handle: Callable[[Wire, Tracking], None]


@dataclass(frozen=True)
class Submitted(Generic[Read]):
    """When a channel system submits on the bus (``submissions.<channel>``): how its message is read,
    from its subject (which names the channel) and body, and the handler that records what it does."""

    decode: Callable[[str, bytes], Read]
    handle: Callable[[Read, Tracking], None]


class Handles:
    """What a service does with the events of its record subscription, one handler for each, with
    its timer fires and with what channel systems submit; its consumers are made from these."""

    def __init__(
        self,
        contract: Contract,
        *rows: On[Any],
        timer_fired: Callable[[Timer, Tracking], None] | None = None,
        submitted: Submitted[Any] | None = None,
        opening_with: KeyVault | None = None,
    ) -> None:
        """``opening_with``: the vault the handlers open sealed patient data with; the keys of a batch's
        events that carry it are read together before the batch (``KeyVault.keys_at_hand``)."""
        handled = [row.wire for row in rows]
        unsubscribed = _names(kind for kind in handled if kind not in contract.handles)
        if unsubscribed:
            raise ValueError(
                f"{contract.service} handles {unsubscribed}, which its subscription does not carry"
            )
        unhandled = _names(kind for kind in contract.handles if kind not in handled)
        if unhandled:
            raise ValueError(f"{contract.service} subscribes to {unhandled} and handles none of them")
        twice = _names(kind for kind, rows_of_it in Counter(handled).items() if rows_of_it > 1)
        if twice:
            raise ValueError(f"{contract.service} has two handlers for {twice}")
        if contract.timers and timer_fired is None:
            raise ValueError(f"{contract.service} sets timers and has no handler for their fires")
        if timer_fired is not None and not contract.timers:
            raise ValueError(f"{contract.service} has a handler for timer fires and sets no timers")
        if contract.submissions is not None and submitted is None:
            raise ValueError(f"{contract.service} takes submissions and has no handler for them")
        if submitted is not None and contract.submissions is None:
            raise ValueError(f"{contract.service} has a handler for submissions and takes none")
        self.contract = contract
        self.handlers: dict[type[WireEvent], Callable[[Any, Tracking], None]] = {
            row.wire: row.handle for row in rows
        }
        self.timer_fired = timer_fired
        self.submitted = submitted
        self.opening_with = opening_with

    def handle(self, event: WireEvent, tracking: Tracking) -> None:
        """Hand the event to the handler of its kind (the decoder lets no other kind through)."""
        self.handlers[type(event)](event, tracking)

    def consumers(self) -> list[Consumer[Any]]:
        record, timer = self.contract.record, self.contract.timer
        consumers: list[Consumer[Any]] = []
        if record is not None:
            handled = self.contract.handles
            vault, sealed = self.opening_with, _carrying_patient_data(handled)
            prepare = partial(_keys_of_sealed, vault, sealed) if vault is not None and sealed else None
            consumers.append(Consumer(record, body_only(decoder(*handled)), self.handle, prepare))
        if timer is not None and self.timer_fired is not None:
            consumers.append(Consumer(timer, body_only(Timer.decode), self.timer_fired))
        submissions = self.contract.submitted
        if submissions is not None and self.submitted is not None:
            consumers.append(Consumer(submissions, self.submitted.decode, self.submitted.handle))
        return consumers


def _carrying_patient_data(kinds: Iterable[type[WireEvent]]) -> frozenset[str]:
    """The subjects of the events among these that carry sealed patient data."""
    return frozenset(subject_of(kind) for kind in kinds if "patient_data" in kind.model_fields)


def _keys_of_sealed(
    vault: KeyVault, sealed: frozenset[str], messages: Sequence[Msg]
) -> AbstractAsyncContextManager[None]:
    """The keys of the complaints whose sealed data these messages carry, read together."""
    carrying = [complaint_id_of(message.headers) for message in messages if message.subject in sealed]
    return vault.keys_at_hand(complaint_id for complaint_id in carrying if complaint_id is not None)


def _names(kinds: Iterable[type[WireEvent]]) -> str:
    return ", ".join(sorted(kind.type_name() for kind in kinds))
