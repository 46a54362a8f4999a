"""Traces: one per complaint, from the POST that brings it through every service that handles it.

Off unless an OTLP/HTTP endpoint is configured (``configure``): then nothing here creates a span or
parses a header. On, a request to a service's HTTP API is a span, continued from its W3C
``traceparent`` header if it has one; a handler storing an event stores the ``traceparent`` of its span
beside the event (``TracedMapper``, in the store, not in the event's fields), the relay sends it as the
``traceparent`` header of the event on the record (headers outside the chain's content, so the chain
and deduplication do not change), and each consumer handles a message in a span continued from it.
Spans carry ids and event types, never a patient's data or a complaint's text.

What a log line says about the message being handled (``handling``) is kept here too, traced or not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.events import COMPLAINT_ID_HEADER

TRACEPARENT = "traceparent"
EVENT_HEADER = "Kizuki-Event-Type"

_propagator = TraceContextTextMapPropagator()
_tracer: Tracer | None = None  # set by ``configure`` when traces are exported


@dataclass(frozen=True)
class Handling:
    """What a service is handling now, for its log lines."""

    complaint_id: str | None
    event: str | None


handling_now: ContextVar[Handling | None] = ContextVar("handling_now", default=None)


def configure(service: str, endpoint: str | None) -> None:
    """Export this process's spans to an OTLP/HTTP collector (``endpoint`` as ``http://host:4318``);
    no endpoint, no traces."""
    global _tracer
    if endpoint is None:
        return
    # Imported here: a service without traces does not load the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
    )
    _tracer = provider.get_tracer("kizuki")


def enabled() -> bool:
    return _tracer is not None


def current_traceparent() -> str | None:
    """The ``traceparent`` of the span this code runs in; None when traces are off or there is none."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def handling_message(headers: Mapping[str, str] | None, service: str) -> AbstractContextManager[None]:
    """Handle one bus message: ``handling`` its complaint and event (a timer's fire has neither),
    continuing its ``traceparent``."""
    headers = headers or {}
    event = headers.get(EVENT_HEADER)
    return handling(
        service,
        f"handles {event or 'a timer'}",
        headers.get(COMPLAINT_ID_HEADER),
        event,
        headers.get(TRACEPARENT),
    )


@contextlib.contextmanager
def handling(
    service: str, action: str, complaint_id: str | None, event: str | None, traceparent: str | None
) -> Iterator[None]:
    """Work on one complaint's event: the complaint and event type in the log lines, and, with traces
    on, a span named ``<service> <action>`` continued from ``traceparent`` (a new trace if None)."""
    token = handling_now.set(Handling(complaint_id, event))
    try:
        if _tracer is None:
            yield
            return
        attributes = {"kizuki.service": service}
        if complaint_id is not None:
            attributes["kizuki.complaint_id"] = complaint_id
        with _tracer.start_as_current_span(
            f"{service} {action}",
            context=_propagator.extract({TRACEPARENT: traceparent}) if traceparent else None,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            yield
    finally:
        handling_now.reset(token)


@contextlib.contextmanager
def serving(service: str, method: str, headers: Mapping[str, str]) -> Iterator[Span | None]:
    """One HTTP request: with traces on, a server span continued from the request's ``traceparent``
    (None when traces are off)."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        f"{service} {method}",
        context=_propagator.extract(headers),
        kind=SpanKind.SERVER,
        attributes={"kizuki.service": service, "http.request.method": method},
    ) as span:
        yield span


def traceparent_header() -> dict[str, str]:
    """The header that carries the current trace to another service's HTTP API; none when off."""
    traceparent = current_traceparent()
    return {} if traceparent is None else {TRACEPARENT: traceparent}


def trace_id() -> str | None:
    """The current trace's id in hex, for a log line; None when traces are off or there is none."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class TracedMapper(Mapper[UUID]):
    """The store's mapper: an event stored inside a span keeps the span's ``traceparent`` in its stored
    state (under ``traceparent``), for the relay to put on the record; read back, the domain event is
    the same as without it."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        traceparent = current_traceparent()
        if traceparent is None:
            return super().to_stored_event(domain_event)
        traced = object.__new__(type(domain_event))
        object.__setattr__(traced, "__dict__", {**vars(domain_event), TRACEPARENT: traceparent})
        return super().to_stored_event(traced)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.traced_domain_event(stored_event)[0]

    def traced_domain_event(self, stored_event: StoredEvent) -> tuple[DomainEventProtocol[UUID], str | None]:
        """The domain event, and the ``traceparent`` of the span that stored it (None if none)."""
        domain_event = super().to_domain_event(stored_event)
        return domain_event, vars(domain_event).pop(TRACEPARENT, None)
