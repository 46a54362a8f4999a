"""Every service's /metrics on one running system: complaints, a channel that always fails, a message
set aside, a bus that goes away and a store that cannot be written each move the figures that say so,
and no figure carries a patient's data, a complaint's text or an id."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import SERVICES
from tests.e2e.conftest import System, complaint, write_policy
from tests.polling import eventually
from tests.providers import Endpoint, http_endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Due seconds after the complaint is registered: overdue within the test, and a timer that falls due
# while escalation's store is locked.
ACKNOWLEDGEMENT_SECONDS = 8
# A fire taken later than this after its due time counts as late here (a bucket of the histogram).
LATE_SECONDS = 5
STORY = "Waited three hours for pain medication."
PATIENT = "Sato Hanako"

Figures = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def failing_provider() -> Iterator[tuple[str, Endpoint]]:
    with http_endpoint() as (url, endpoint):
        endpoint.statuses = [500] * 100_000  # every attempt, for as long as the module runs
        yield url, endpoint


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(
    tmp_path_factory: pytest.TempPathFactory, failing_provider: tuple[str, Endpoint]
) -> AsyncIterator[System]:
    tmp_path = tmp_path_factory.mktemp("metrics")
    url, _ = failing_provider
    channels = tmp_path / "channels.toml"
    channels.write_text(
        "[delivery]\ntimeout_seconds = 5\nconcurrency_per_channel = 4\nattempts_per_channel = 1\n"
        "first_retry_seconds = 1\nmax_retry_seconds = 1\nlink_lifetime_hours = 72\n\n"
        f'[channels.email]\nkind = "webhook"\nurl = "{url}/hook"\n\n[channels.sms]\nkind = "file"\n',
        encoding="utf-8",
    )
    policy = write_policy(
        tmp_path / "policy.toml", duty_seconds={"supervisor_acknowledgement": ACKNOWLEDGEMENT_SECONDS}
    )
    running = System(tmp_path, policy, env={"KIZUKI_CHANNELS": str(channels)}, services=SERVICES)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def scrape(system: System, http: httpx.AsyncClient, service: str) -> Figures:
    response = await http.get(system.url(service, "/metrics"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    for private in (STORY, PATIENT, "sato@example.org"):
        assert private not in response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def figure(figures: Figures, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels (and any others)."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in figures.items() if sample == name and wanted <= have)


async def register(system: System, http: httpx.AsyncClient) -> str:
    response = await http.post(
        system.url("intake", "/v1/complaints"), json=complaint(), headers=system.signed_in("n-001")
    )
    assert response.status_code == 201, response.text
    return str(response.json()["complaint_id"])


async def test_complaints_and_a_failing_channel_move_requests_deliveries_timers_and_duties(
    system: System, http: httpx.AsyncClient
) -> None:
    before = {service: await scrape(system, http, service) for service in SERVICES}
    complaints = [await register(system, http) for _ in range(2)]

    async def moved() -> dict[str, Figures]:
        now = {service: await scrape(system, http, service) for service in SERVICES}
        changes = {
            "requests": figure(
                now["intake"],
                "kizuki_http_request_duration_seconds_count",
                route="/v1/complaints",
                status="201",
            )
            - figure(
                before["intake"],
                "kizuki_http_request_duration_seconds_count",
                route="/v1/complaints",
                status="201",
            ),
            "failed deliveries": figure(
                now["notifier"], "kizuki_deliveries_total", channel="email", outcome="server_error"
            )
            - figure(before["notifier"], "kizuki_deliveries_total", channel="email", outcome="server_error"),
            "alerts reaching no one": figure(now["notifier"], "kizuki_alerts_reaching_no_one_total")
            - figure(before["notifier"], "kizuki_alerts_reaching_no_one_total"),
            "timers pending": figure(now["escalation"], "kizuki_timers_pending")
            - figure(before["escalation"], "kizuki_timers_pending"),
            "timers fired": figure(now["escalation"], "kizuki_timer_lateness_seconds_count")
            - figure(before["escalation"], "kizuki_timer_lateness_seconds_count"),
            "duties open": figure(now["console"], "kizuki_duties_open", kind="supervisor_report")
            - figure(before["console"], "kizuki_duties_open", kind="supervisor_report"),
            "duties overdue": figure(
                now["console"], "kizuki_duties_overdue", kind="supervisor_acknowledgement"
            )
            - figure(before["console"], "kizuki_duties_overdue", kind="supervisor_acknowledgement"),
        }
        return now if all(change >= 1 for change in changes.values()) else {}

    now = await eventually(moved, within=60, what="every figure moved")
    # Each of the two complaints owes a supervisor's report and is overdue on the acknowledgement.
    assert figure(now["console"], "kizuki_duties_open", kind="supervisor_report") == 2
    text = "".join([(await http.get(system.url(s, "/metrics"))).text for s in SERVICES])
    assert not [complaint_id for complaint_id in complaints if complaint_id in text]
    # A route is named by its template, never by the URL asked for.
    case = await http.get(
        system.url("escalation", f"/v1/cases/{complaints[0]}"), headers=system.signed_in("sv-003")
    )
    assert case.status_code == 200
    escalation = await scrape(system, http, "escalation")
    template = "/v1/cases/{complaint_id}"
    assert figure(escalation, "kizuki_http_request_duration_seconds_count", route=template, status="200") >= 1
    assert figure(escalation, "kizuki_http_request_duration_seconds_count", route="unmatched") == 0


async def test_a_message_set_aside_is_counted(system: System, http: httpx.AsyncClient) -> None:
    assert system.nc is not None
    before = figure(await scrape(system, http, "escalation"), "kizuki_set_aside_messages", stream="EVENTS")
    await system.nc.jetstream().publish(
        "events.followup.CaseReopenRequested", b'{"type": "CaseReopenRequested", "oops": true}'
    )

    async def counted() -> bool:
        figures = await scrape(system, http, "escalation")
        return figure(figures, "kizuki_set_aside_messages", stream="EVENTS") == before + 1

    await eventually(counted, what="the message counted as set aside")


async def test_the_relay_lag_grows_while_the_bus_is_away_and_goes_back_to_nothing(
    system: System, http: httpx.AsyncClient
) -> None:
    assert figure(await scrape(system, http, "intake"), "kizuki_relay_lag_events") == 0
    await system.stop_nats()
    try:
        await register(system, http)  # stored by intake, to be relayed when the bus is back

        async def behind() -> bool:
            return figure(await scrape(system, http, "intake"), "kizuki_relay_lag_events") >= 1

        await eventually(behind, what="intake's relay lag to show the complaint")
    finally:
        await system.start_nats_again()

    async def caught_up() -> bool:
        figures = await scrape(system, http, "intake")
        return ("kizuki_relay_lag_events", frozenset()) in figures and figure(
            figures, "kizuki_relay_lag_events"
        ) == 0

    await eventually(caught_up, within=30, what="intake's relay caught up")


async def test_a_locked_store_shows_messages_pending_redelivered_and_timers_fired_late(
    system: System, http: httpx.AsyncClient
) -> None:
    def late(figures: Figures) -> float:
        """Timer fires taken more than 5 s after their due time."""
        fired = figure(figures, "kizuki_timer_lateness_seconds_count")
        return fired - figure(figures, "kizuki_timer_lateness_seconds_bucket", le=f"{LATE_SECONDS:.1f}")

    before = await scrape(system, http, "escalation")
    await register(system, http)
    due = time.monotonic() + ACKNOWLEDGEMENT_SECONDS  # at the latest

    async def timers_set() -> bool:
        figures = await scrape(system, http, "escalation")
        return figure(figures, "kizuki_timers_pending") > figure(before, "kizuki_timers_pending")

    # The supervisor's acknowledgement falls due while escalation's store cannot be written.
    await eventually(timers_set, what="the new complaint's timers set")
    store = sqlite3.connect(system.settings.service_dir("escalation") / "store.sqlite", isolation_level=None)
    try:
        store.execute("BEGIN EXCLUSIVE")
        await register(system, http)

        async def held() -> Figures:
            figures = await scrape(system, http, "escalation")
            pending = figure(figures, "kizuki_consumer_pending_messages", stream="EVENTS")
            redelivered = figure(figures, "kizuki_consumer_redelivered_messages", stream="EVENTS")
            return figures if pending >= 1 and redelivered >= 1 else {}

        await eventually(held, within=45, what="a message pending and redelivered")
        # Held until the acknowledgement's deadline is late by more than LATE_SECONDS.
        await asyncio.sleep(max(0.0, due + LATE_SECONDS + 1 - time.monotonic()))
    finally:
        store.execute("ROLLBACK")
        store.close()

    async def caught_up() -> bool:
        figures = await scrape(system, http, "escalation")
        pending = figure(figures, "kizuki_consumer_pending_messages", stream="EVENTS")
        redelivered = figure(figures, "kizuki_consumer_redelivered_messages", stream="EVENTS")
        return late(figures) > late(before) and pending == redelivered == 0

    await eventually(caught_up, within=45, what="the deadline taken late, and nothing left in hand")
