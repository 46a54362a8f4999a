"""A table of a service's own PostgreSQL schema, shared by its replicas, with a small pool of
autocommitting connections: what intake's keys and traces stand on (shared/key_table.py,
services/intake/trace_table.py)."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from shared.lease import connection_kwargs
from shared.settings import PostgresSettings


class SchemaTable:
    """``name`` in ``schema``, made if missing by ``definitions`` (each with one ``{}`` for the table)."""

    def __init__(self, postgres: PostgresSettings, schema: str, name: str, *definitions: str) -> None:
        self._table = sql.Identifier(schema, name)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            kwargs=connection_kwargs(postgres) | {"autocommit": True}, min_size=1, max_size=4, open=True
        )
        statements = [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))]
        statements += [sql.SQL(definition).format(self._table) for definition in definitions]
        for statement in statements:
            # Two replicas starting at once: CREATE ... IF NOT EXISTS can still meet the other's.
            with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                self._execute(statement)

    def _execute(self, statement: sql.Composed, *params: object) -> list[tuple[Any, ...]]:
        with self._pool.connection() as connection:
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []

    def close(self) -> None:
        self._pool.close()
