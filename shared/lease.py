"""Leases: the work of which exactly one replica of a service may do at a time (its outbox relay, the
notifier's dispatcher), held by whoever took the lease last and renewed it in time.

A lease is a row of the ``leases`` table in the service's own PostgreSQL schema. One statement takes
or renews it, judged by the database's clock, never by the replicas' own:

    INSERT ... ON CONFLICT (name) DO UPDATE SET holder = me, expires_at = now() + ttl
        WHERE leases.holder = me OR leases.expires_at < now()

so a replica takes a lease only once its holder has let it run out: it died (SIGKILL), it hangs, or
it cannot reach the database. The holder renews it every third of the TTL; another replica tries to
take it every ``ttl / 5``, so a dead holder's work waits at most about one TTL and a bit.

A holder knows how long it holds without asking: the database set the expiry at least ``ttl`` after
the holder sent its statement, so the lease is the holder's until ``ttl`` (less a margin) after that
moment by its own monotonic clock. Before each step that cannot be taken back (a publish on the
record, a message handed to a delivery channel) the work checks ``held()`` and stops when it is past:
a holder that was paused past its TTL and wakes up does no more work, though another replica may
have taken over meanwhile. With SQLite a store is one process's file: its lease is trivially held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol

import psycopg
from psycopg import sql

from shared.settings import PostgresSettings

log = logging.getLogger(__name__)

DEFAULT_TTL = 5.0


class LeaseLost(Exception):
    """The lease ran out before this replica renewed it: the work stops, and another replica may take it."""


class Lease(Protocol):
    name: str
    holder: str
    ttl: float

    async def take(self) -> bool:
        """Take the lease or renew it; whether this replica holds it now."""
        ...

    def held(self) -> bool:
        """Whether the lease is surely still this replica's, by its own clock (no round trip)."""
        ...

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so that another replica need not wait out the TTL."""
        ...


def check(lease: Lease | None) -> None:
    """Raise ``LeaseLost`` unless the lease is held (no lease: the work is not leased)."""
    if lease is not None and not lease.held():
        raise LeaseLost(f"the lease {lease.name!r} of {lease.holder} ran out")


def holder_name() -> str:
    """This process, as a lease names its holder: host, pid, and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class HeldAlone:
    """The lease of a store only one process opens (a SQLite file): always held."""

    def __init__(self, name: str, ttl: float = DEFAULT_TTL) -> None:
        self.name = name
        self.holder = holder_name()
        self.ttl = ttl

    async def take(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def connection_kwargs(postgres: PostgresSettings) -> dict[str, Any]:
    return {
        "host": postgres.host,
        "port": postgres.port,
        "user": postgres.user,
        "password": postgres.password,
        "dbname": postgres.dbname,
    }


class PostgresLease:
    """A lease in the ``leases`` table of a schema (see the module's text). Not safe to share between
    event loops; one connection of its own, opened again after a failure."""

    def __init__(
        self,
        postgres: PostgresSettings,
        schema: str,
        name: str,
        ttl: float = DEFAULT_TTL,
        holder: str | None = None,
    ) -> None:
        self.postgres = postgres
        self.schema = schema
        self.name = name
        self.ttl = ttl
        self.holder = holder or holder_name()
        self._until = 0.0  # monotonic: held surely until then
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._table = sql.Identifier(schema, "leases")

    def held(self) -> bool:
        return time.monotonic() < self._until

    @property
    def margin(self) -> float:
        """Given up this much before the lease runs out: clocks of two machines do not run at one rate."""
        return min(1.0, self.ttl / 10)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                **connection_kwargs(self.postgres), autocommit=True, connect_timeout=max(1, int(self.ttl))
            )
            await self._create_table(self._connection)
        return self._connection

    async def _create_table(self, connection: psycopg.AsyncConnection[Any]) -> None:
        for statement in (
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, holder text NOT NULL,"
                " expires_at timestamptz NOT NULL)"
            ).format(self._table),
        ):
            # Two replicas starting at once: CREATE ... IF NOT EXISTS can still meet the other's.
            with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                await connection.execute(statement)

    async def take(self) -> bool:
        sent = time.monotonic()
        statement = sql.SQL(
            "INSERT INTO {table} AS lease (name, holder, expires_at)"
            " VALUES (%(name)s, %(holder)s, now() + %(ttl)s)"
            " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
            " WHERE lease.holder = EXCLUDED.holder OR lease.expires_at < now()"
            " RETURNING holder"
        ).format(table=self._table)
        try:
            connection = await self._connect()
            async with asyncio.timeout(self.ttl / 3):
                cursor = await connection.execute(
                    statement, {"name": self.name, "holder": self.holder, "ttl": timedelta(seconds=self.ttl)}
                )
                taken = await cursor.fetchone() is not None
        except (psycopg.Error, OSError, TimeoutError) as error:
            log.warning("lease %s: the database did not answer (%s)", self.name, type(error).__name__)
            await self._close()
            return self.held()  # still held until it runs out by this replica's clock
        if taken:
            if not self.held():
                log.info("lease %s taken by %s", self.name, self.holder)
            self._until = sent + self.ttl - self.margin
        else:
            if self.held():
                log.warning("lease %s lost by %s", self.name, self.holder)
            self._until = 0.0
        return taken

    async def release(self) -> None:
        self._until = 0.0
        statement = sql.SQL(
            "UPDATE {} SET expires_at = now() - interval '1 second' WHERE name = %s AND holder = %s"
        ).format(self._table)
        with contextlib.suppress(psycopg.Error, OSError):
            connection = await self._connect()
            await connection.execute(statement, (self.name, self.holder))
        await self._close()

    async def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._connection.close()
            self._connection = None


def open_lease(postgres: PostgresSettings | None, schema: str, name: str, ttl: float = DEFAULT_TTL) -> Lease:
    """The lease ``name`` of a service's store: in its PostgreSQL schema, or trivially held with SQLite."""
    if postgres is None:
        return HeldAlone(name, ttl)
    return PostgresLease(postgres, schema, name, ttl)


async def while_held(lease: Lease, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` while this replica holds the lease, taking it first (waiting as long as another
    replica holds it); renew it every third of its TTL; cancel the work the moment it is lost, and
    wait to take it again. The work itself checks ``held()`` before each step that cannot be taken
    back, since a paused process may wake with its lease gone before this loop notices.

    Returns when the work returns; a failure of the work is raised (the lease stays this replica's
    until it runs out, so a restart of the work takes it back at once)."""
    while True:
        while not await lease.take():  # noqa: ASYNC110  # only the database says when: it is asked
            await asyncio.sleep(lease.ttl / 5)
        task = asyncio.create_task(work())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=lease.ttl / 3)
                if done:
                    task.result()  # raises what the work raised (LeaseLost below)
                    return
                if not await lease.take():
                    log.warning("%s stops: its lease %r was lost", lease.holder, lease.name)
                    break
        except LeaseLost:
            log.warning("%s stopped: its lease %r ran out", lease.holder, lease.name)
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
