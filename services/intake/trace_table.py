"""Intake's traces of complaints in its PostgreSQL schema, where every replica of intake finds them.

With SQLite, intake is one process and keeps each trace as a file (``MatchIndex``); with PostgreSQL,
replicas share the store, and one that looked only at its own files would miss a complainant's
complaint another replica registered: the possible duplicate would go unflagged, and a chat message
would open a new complaint instead of joining the recent one. The table holds what the files did:
keyed digests and sketches, which cannot be read back.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from psycopg import sql

from services.intake.matching import Trace
from shared.schema_table import SchemaTable
from shared.settings import PostgresSettings


class TraceTable(SchemaTable):
    """The ``traces`` table of a schema: one row per complaint, looked up by contact digest."""

    def __init__(self, postgres: PostgresSettings, schema: str) -> None:
        super().__init__(
            postgres,
            schema,
            "traces",
            "CREATE TABLE IF NOT EXISTS {} (complaint_id uuid PRIMARY KEY, contact text NOT NULL,"
            " channel text NOT NULL, sketch bigint[] NOT NULL, registered_at timestamptz NOT NULL)",
            "CREATE INDEX IF NOT EXISTS traces_by_contact ON {} (contact, registered_at)",
        )

    def add(self, trace: Trace) -> None:
        statement = sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING")
        self._execute(
            statement.format(self._table),
            trace.complaint_id,
            trace.contact,
            trace.channel,
            list(trace.sketch),
            trace.registered_at,
        )

    def traces(self, contact: str, since: datetime) -> list[Trace]:
        statement = sql.SQL(
            "SELECT complaint_id, channel, contact, sketch, registered_at FROM {}"
            " WHERE contact = %s AND registered_at >= %s"
        ).format(self._table)
        return [
            Trace(complaint_id, channel, contact, tuple(sketch), registered_at)
            for complaint_id, channel, contact, sketch, registered_at in self._execute(
                statement, contact, since
            )
        ]

    def remove(self, complaint_id: UUID) -> None:
        self._execute(sql.SQL("DELETE FROM {} WHERE complaint_id = %s").format(self._table), complaint_id)

    def prune(self, before: datetime) -> None:
        self._execute(sql.SQL("DELETE FROM {} WHERE registered_at < %s").format(self._table), before)
