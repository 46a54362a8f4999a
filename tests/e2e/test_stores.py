"""The same complaint through all four services, with their stores in SQLite files or in PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from kizuki.processes import free_port
from shared.settings import PostgresSettings
from tests.e2e.conftest import FLOW_COUNTS, System, of, register, until_record

pytestmark = pytest.mark.e2e


def postgres_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings of stores in a new database of the session's PostgreSQL server."""
    server: PostgresSettings = request.getfixturevalue("postgres_server")
    dbname = f"kizuki_e2e_{free_port()}"
    with psycopg.connect(
        host=server.host, port=server.port, user=server.user, dbname=server.dbname, autocommit=True
    ) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return {
        "KIZUKI_STORE": "postgres",
        "KIZUKI_POSTGRES_HOST": server.host,
        "KIZUKI_POSTGRES_PORT": str(server.port),
        "KIZUKI_POSTGRES_USER": server.user,
        "KIZUKI_POSTGRES_PASSWORD": server.password,
        "KIZUKI_POSTGRES_DBNAME": dbname,
    }


@pytest.fixture(params=["sqlite", "postgres"])
async def system_on(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    running = System(tmp_path, env=postgres_env(request) if request.param == "postgres" else {})
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


def stored_in_postgres(system: System) -> dict[str, int]:
    """How many events each service's schema holds (in its application's ``*_events`` table)."""
    postgres = system.settings.postgres
    assert postgres is not None
    counts = {}
    with psycopg.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, dbname=postgres.dbname
    ) as connection:
        for service in system.service_names:
            [table] = connection.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name LIKE '%%\\_events'",
                (service,),
            ).fetchall()
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(service, table[0]))
            [(counts[service],)] = connection.execute(query).fetchall()
    return counts


async def test_a_complaint_reaches_every_service_and_an_acknowledgement_is_recorded(
    system_on: System, http: httpx.AsyncClient
) -> None:
    system = system_on
    complaint_id = await register(system, http)
    await system.wait_for_flow([complaint_id])

    cases = system.url("escalation", f"/v1/cases/{complaint_id}")
    acknowledged = await http.post(
        f"{cases}/duties/supervisor_acknowledgement/acknowledge", headers=system.signed_in("sv-003")
    )
    assert acknowledged.status_code == 200, acknowledged.text
    response = {"patient_reached": True, "notes": "apologised"}
    responded = await http.post(f"{cases}/first-response", json=response, headers=system.signed_in("hd-003"))
    assert responded.status_code == 200, responded.text
    record = await until_record(
        system,
        "the callback after the first response scheduled",
        lambda record: of(record, complaint_id, "CallbackScheduled"),
    )
    assert [body["by"] for body in of(record, complaint_id, "AlertAcknowledged")] == ["sv-003"]

    events = await system.events_of(complaint_id)
    assert events >= FLOW_COUNTS
    assert {
        kind: events[kind] for kind in ("AlertAcknowledged", "FirstResponseRecorded", "CallbackScheduled")
    } == {
        "AlertAcknowledged": 1,
        "FirstResponseRecorded": 1,
        "CallbackScheduled": 1,
    }
    assert {entry.service for entry in record if entry.complaint_id == complaint_id} == set(
        system.service_names
    )
    if system.settings.store == "postgres":
        # Each service's events are in its own schema, and no SQLite store was made beside them.
        assert all(count > 0 for count in stored_in_postgres(system).values())
        assert list(system.settings.data_dir.glob("*/store.sqlite")) == []
    else:
        assert len(list(system.settings.data_dir.glob("*/store.sqlite"))) == len(system.service_names)
    assert Counter(entry.event_type for entry in record if entry.complaint_id == complaint_id) == events
