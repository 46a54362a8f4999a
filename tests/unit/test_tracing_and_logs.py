"""The pieces of traces and logs that need no running system: settings, the mapper, a log line."""

from __future__ import annotations

import json
import logging
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex
from opentelemetry.sdk.trace import TracerProvider

from shared import tracing
from shared.logs import JsonLines
from shared.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_traces_are_off_unless_an_otlp_endpoint_is_set() -> None:
    assert load_settings({}).otlp_endpoint is None
    assert load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).otlp_endpoint == "http://c:4318"
    both = {"KIZUKI_OTLP_ENDPOINT": "http://k:4318", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert load_settings(both).otlp_endpoint == "http://k:4318"
    with pytest.raises(SettingsError, match="KIZUKI_OTLP_ENDPOINT must be an http:// or https:// URL"):
        load_settings({"KIZUKI_OTLP_ENDPOINT": "collector:4317"})


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", TracerProvider().get_tracer("test"))


def mapper() -> tracing.TracedMapper:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return tracing.TracedMapper(transcoder=transcoder)


class Note(Aggregate):
    def __init__(self, text: str) -> None:
        self.text = text


def an_event() -> DomainEventProtocol[UUID]:
    [created] = Note("a note").collect_events()
    return created


def test_an_event_stored_outside_a_trace_is_stored_as_it_is() -> None:
    event = an_event()
    stored = mapper().to_stored_event(event)
    assert b"traceparent" not in stored.state
    assert mapper().traced_domain_event(stored) == (event, None)


def test_an_event_stored_in_a_span_keeps_its_traceparent_beside_it(traced: None) -> None:
    event = an_event()
    with tracing.handling("followup", "handles CaseClosed", None, "CaseClosed", TRACEPARENT):
        stored = mapper().to_stored_event(event)
    read, traceparent = mapper().traced_domain_event(stored)
    assert read == event
    assert traceparent is not None
    assert traceparent.split("-")[1] == TRACEPARENT.split("-")[1]  # the same trace, a span of its own
    assert mapper().to_domain_event(stored) == event


def log_line(handling: tracing.Handling | None) -> dict[str, str]:
    record = logging.LogRecord("shared.consumer", logging.WARNING, __file__, 1, "set aside %d", (7,), None)
    token = tracing.handling_now.set(handling)
    try:
        return dict(json.loads(JsonLines("escalation").format(record)))
    finally:
        tracing.handling_now.reset(token)


def test_a_log_line_is_json_with_the_complaint_and_event_being_handled() -> None:
    complaint_id = str(uuid4())
    line = log_line(tracing.Handling(complaint_id, "ComplaintReceived"))
    assert line["service"] == "escalation"
    assert line["level"] == "WARNING"
    assert line["message"] == "set aside 7"
    assert (line["complaint_id"], line["event"]) == (complaint_id, "ComplaintReceived")
    assert "trace_id" not in line  # traces are off
    assert "complaint_id" not in log_line(None)


def test_a_call_to_another_service_carries_the_trace_only_when_traces_are_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tracing.handling("console", "handles a form", None, None, TRACEPARENT):
        assert tracing.traceparent_header() == {}
    monkeypatch.setattr(tracing, "_tracer", TracerProvider().get_tracer("test"))
    with tracing.handling("console", "handles a form", None, None, TRACEPARENT):
        [(name, value)] = tracing.traceparent_header().items()
    assert name == "traceparent"
    assert value.split("-")[1] == TRACEPARENT.split("-")[1]
