"""Intake's wrapped complaint keys in its PostgreSQL schema, where every replica of intake finds them.

With SQLite, intake is one process and keeps each key as an owner-only file (``IntakeKeys``); with
PostgreSQL, replicas share the store, and a replica that looked for a key another one made in a file
of its own would make a second key for the same complaint. The table holds the same bytes as the
files did: the data key wrapped with the master key, useless without it.

Erasure overwrites the row, then deletes it. PostgreSQL keeps a deleted or overwritten row's old
version on disk until VACUUM reclaims its space (as a journaling file system may keep a shredded
file's blocks); like that copy, it is wrapped, and the key bucket's copy is erased by the server.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from uuid import UUID

from psycopg import sql

from shared.schema_table import SchemaTable
from shared.settings import PostgresSettings


class KeyTable(SchemaTable):
    """The ``patient_keys`` table of a schema: one wrapped key per complaint, made once."""

    def __init__(self, postgres: PostgresSettings, schema: str) -> None:
        super().__init__(
            postgres,
            schema,
            "patient_keys",
            "CREATE TABLE IF NOT EXISTS {} (complaint_id uuid PRIMARY KEY, wrapped bytea NOT NULL)",
        )

    def add(self, complaint_id: UUID, wrapped: bytes) -> None:
        """Keep the wrapped key, unless the complaint has one already (the first one stays)."""
        statement = sql.SQL("INSERT INTO {} VALUES (%s, %s) ON CONFLICT (complaint_id) DO NOTHING")
        self._execute(statement.format(self._table), complaint_id, wrapped)

    def get(self, complaint_id: UUID) -> bytes | None:
        rows = self._execute(
            sql.SQL("SELECT wrapped FROM {} WHERE complaint_id = %s").format(self._table), complaint_id
        )
        return bytes(rows[0][0]) if rows else None

    def destroy(self, complaint_id: UUID) -> None:
        """Overwrite the key with random bytes of its length, then delete it, in one transaction."""
        with self._pool.connection() as connection, connection.transaction():
            connection.execute(
                sql.SQL("UPDATE {} SET wrapped = %s::bytea WHERE complaint_id = %s").format(self._table),
                (secrets.token_bytes(40), complaint_id),
            )
            connection.execute(
                sql.SQL("DELETE FROM {} WHERE complaint_id = %s").format(self._table), (complaint_id,)
            )

    def complaints(self) -> Iterator[UUID]:
        for (complaint_id,) in self._execute(sql.SQL("SELECT complaint_id FROM {}").format(self._table)):
            yield complaint_id
