"""Metrics in the Prometheus text format, at each service's /metrics (README: Metrics).

Counted where each thing happens, an increment and nothing more on the hot path: deliveries by
channel and outcome, alerts that reached no one, timer fires and how late, HTTP requests. Measured
when scraped, from what the service knows already: the relay's lag, each consumer's pending and
redelivered messages (the bus's consumer info), what is set aside, the timers pending, and whatever
a service adds (the console's open and overdue duties). A label never carries a patient's data, a
complaint's text, an id or a raw URL: a route is its template, a failure its classified reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.bus import Subscription, timer_stream
from shared.set_aside import OUTBOX

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

# A `_created` series beside each counter doubles the output for nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

# The process's own counters and histograms; what is measured at scrape time is not registered here.
REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Histogram(
    "kizuki_http_request_duration_seconds",
    "HTTP requests by route template, method and status, and the seconds each took to answer",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "kizuki_deliveries",
    "Delivery attempts by channel and outcome: delivered, or the classified reason of the failure",
    ["channel", "outcome"],
    registry=REGISTRY,
)
ALERTS_REACHING_NO_ONE = Counter(
    "kizuki_alerts_reaching_no_one",
    "Staff alerts given up: every channel of the recipient failed, or none of theirs is configured",
    registry=REGISTRY,
)
TIMER_LATENESS = Histogram(
    "kizuki_timer_lateness_seconds",
    "Timer fires taken, by rule, and the seconds from the timer's due time to the fire being taken",
    ["rule"],
    buckets=(1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)

# What a service measures at scrape time beyond what every service does (run in a worker thread).
Measure = Callable[[], list[Metric]]

# How long a scrape waits for each answer of the bus before leaving its figures out.
BUS_TIMEOUT = 2.0


def gauge(
    name: str, documentation: str, labels: Sequence[str], values: Iterable[tuple[Sequence[str], float]]
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


class Measured(Collector):
    """Figures measured for one scrape."""

    def __init__(self, figures: list[Metric]) -> None:
        self.figures = figures

    def collect(self) -> Iterable[Metric]:
        return self.figures


async def consumer_infos(
    runtime: ServiceRuntime, answer_within: float = BUS_TIMEOUT
) -> list[ConsumerInfo | None]:
    """Each of the service's consumers as the server keeps it, in the order of ``runtime.loops``
    (one request each, at once); None where the server does not answer, or the bus is not connected."""
    if runtime.nc is None or not runtime.nc.is_connected:
        return [None for _ in runtime.loops]
    js = runtime.nc.jetstream()
    asked = [_consumer_info(js, loop.consumer.subscription, answer_within) for loop in runtime.loops]
    return await asyncio.gather(*asked)


async def _consumer_info(
    js: JetStreamContext, subscription: Subscription, answer_within: float
) -> ConsumerInfo | None:
    stream, durable = subscription.stream, subscription.durable
    try:
        info: ConsumerInfo = await js.consumer_info(stream, durable, timeout=answer_within)
    except Exception as error:  # left out of this answer; /health says what fails
        log.warning("no consumer info for %s on %s (%s)", durable, stream, type(error).__name__)
        return None
    return info


async def _timers_pending(js: JetStreamContext, service: str, fires: ConsumerInfo | None) -> int | None:
    """The schedules waiting in the service's timer stream: its messages less the fires its consumer
    has not acknowledged (a fire acknowledged is removed, a schedule stays until it fires)."""
    if fires is None:
        return None
    try:
        stream = await js.stream_info(timer_stream(service))
    except Exception as error:
        log.warning("no stream info for %s (%s)", timer_stream(service), type(error).__name__)
        return None
    return max(stream.state.messages - _unacknowledged(fires), 0)


def _unacknowledged(info: ConsumerInfo) -> int:
    """Not delivered yet, or delivered and not acknowledged yet."""
    return (info.num_pending or 0) + (info.num_ack_pending or 0)


async def measured(runtime: ServiceRuntime) -> list[Metric]:
    """What one scrape measures: one store read (the relay's lag) and one bus request per consumer."""
    figures: list[Metric] = []
    set_aside: list[tuple[Sequence[str], float]] = []
    if runtime.relay is not None:
        set_aside.append(((OUTBOX,), runtime.relay.set_aside))
        try:  # only the replica holding the relay's lease relays: the others know no lag
            lag = await runtime.relay.lag() if runtime.relay_lease.held() else None
        except Exception as error:
            log.warning("no relay lag (%s)", type(error).__name__)
            lag = None
        if lag is not None:
            figures.append(
                gauge("kizuki_relay_lag_events", "Events stored but not yet on the record", [], [((), lag)])
            )
    set_aside += [((loop.consumer.subscription.stream,), loop.set_aside) for loop in runtime.loops]
    figures.append(
        gauge(
            "kizuki_set_aside_messages",
            "Messages set aside until an administrator takes them up: from a stream the service "
            "consumes, or its own events the bus refused (outbox)",
            ["stream"],
            set_aside,
        )
    )
    if runtime.nc is not None and runtime.nc.is_connected:
        figures += await _bus_figures(runtime)
    for measure in runtime.measures:
        figures += await asyncio.to_thread(measure)
    return figures


async def _bus_figures(runtime: ServiceRuntime) -> list[Metric]:
    assert runtime.nc is not None
    js = runtime.nc.jetstream()
    subscriptions = [loop.consumer.subscription for loop in runtime.loops]
    infos = await consumer_infos(runtime)
    by_stream = {s.stream: info for s, info in zip(subscriptions, infos, strict=True)}
    known = [(stream, info) for stream, info in by_stream.items() if info is not None]
    figures = [
        gauge(
            "kizuki_consumer_pending_messages",
            "Messages of a stream the service consumes that it has not acknowledged yet",
            ["stream"],
            [((stream,), _unacknowledged(info)) for stream, info in known],
        ),
        gauge(
            "kizuki_consumer_redelivered_messages",
            "Messages delivered more than once and not acknowledged yet (failing, or put back)",
            ["stream"],
            [((stream,), info.num_redelivered or 0) for stream, info in known],
        ),
    ]
    service = runtime.store.service
    if timer_stream(service) in by_stream:
        pending = await _timers_pending(js, service, by_stream[timer_stream(service)])
        if pending is not None:
            figures.append(
                gauge("kizuki_timers_pending", "Timers set and not yet fired", [], [((), pending)])
            )
    return figures
