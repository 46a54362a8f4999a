"""Intake's wrapped complaint keys: a table beside its store, written when a complaint is registered.

With PostgreSQL, the ``patient_keys`` table of intake's schema, where every replica of intake finds a
key another one made (a replica that looked in a place of its own would make a second key for the same
complaint). With SQLite, the same table in intake's store file. Both hold the data key wrapped with the
master key, useless without it, and both are in the backup's copy of the store.

A new complaint's key is committed before the complaint is stored, but not synced by itself
(``synced=False``): the complaint's own commit, which comes after it in the same write-ahead log
(SQLite's file, PostgreSQL's log) and is synced, makes the key durable with it, as a log is synced
whole up to that point. So a stored complaint always has its key, even after a power loss (a key file
written without a sync once left complaints whose patient data nothing could open), and a
registration waits for one sync, not two; a key whose complaint was never stored may be lost in a
crash, with nothing that needs it. Any other write (a key moved in from an earlier version's file, an
erasure) is synced at once.

Erasure overwrites the row, then deletes it. PostgreSQL keeps a deleted or overwritten row's old
version on disk until VACUUM reclaims its space; SQLite zeroes what it deletes (``secure_delete``) and
then checkpoints its write-ahead log, whose freed blocks the file system may keep (as a journaling
file system may keep a shredded file's blocks); like those copies, it is wrapped, and the key bucket's
copy is erased by the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

from psycopg import sql

from shared.schema_table import SchemaTable
from shared.settings import PostgresSettings

log = logging.getLogger(__name__)

OWNER_ONLY = 0o600


class KeyTable(SchemaTable):
    """The ``patient_keys`` table of a schema: one wrapped key per complaint, made once."""

    def __init__(self, postgres: PostgresSettings, schema: str) -> None:
        super().__init__(
            postgres,
            schema,
            "patient_keys",
            "CREATE TABLE IF NOT EXISTS {} (complaint_id uuid PRIMARY KEY, wrapped bytea NOT NULL)",
        )

    def add(self, complaint_id: UUID, wrapped: bytes, synced: bool = True) -> None:
        """Keep the wrapped key, unless the complaint has one already (the first one stays);
        ``synced=False``: by the complaint's commit (see the module's docstring)."""
        statement = sql.SQL("INSERT INTO {} VALUES (%s, %s) ON CONFLICT (complaint_id) DO NOTHING")
        with self._pool.connection() as connection, connection.transaction():
            if not synced:
                connection.execute("SET LOCAL synchronous_commit TO OFF")
            connection.execute(statement.format(self._table), (complaint_id, wrapped))

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


class SQLiteKeyTable:
    """The ``patient_keys`` table of intake's SQLite store file, the same as ``KeyTable``'s: one wrapped
    key per complaint, made once. One connection, shared by the threads that register and erase."""

    def __init__(self, path: Path, lock_timeout: float = 10.0) -> None:
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, as the key files were: the store file, and its log and index (SQLite makes those
        # with the file's own mode; an earlier version's are made so here).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, OWNER_ONLY))
        for made in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))):
            with contextlib.suppress(FileNotFoundError):
                made.chmod(OWNER_ONLY)
        self._connection = sqlite3.connect(
            path, timeout=lock_timeout, isolation_level=None, check_same_thread=False
        )
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON"):
            self._connection.execute(f"PRAGMA {pragma}")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS patient_keys (complaint_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL)"
        )

    def add(self, complaint_id: UUID, wrapped: bytes, synced: bool = True) -> None:
        """Keep the wrapped key, unless the complaint has one already (the first one stays);
        ``synced=False``: by the complaint's commit (see the module's docstring)."""
        with self._lock:
            connection = self._connection
            if not synced:  # in WAL mode, NORMAL commits without syncing the log
                connection.execute("PRAGMA synchronous=NORMAL")
            try:
                connection.execute(
                    "INSERT OR IGNORE INTO patient_keys VALUES (?, ?)", (str(complaint_id), wrapped)
                )
            finally:
                connection.execute("PRAGMA synchronous=FULL")

    def get(self, complaint_id: UUID) -> bytes | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT wrapped FROM patient_keys WHERE complaint_id = ?", (str(complaint_id),)
            ).fetchone()
        return bytes(row[0]) if row else None

    def destroy(self, complaint_id: UUID) -> None:
        """Overwrite the key with random bytes of its length, then delete it, in one transaction; then
        move the log's pages into the file, where the deleted row is zeroes, and empty the log."""
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(
                    "UPDATE patient_keys SET wrapped = randomblob(length(wrapped)) WHERE complaint_id = ?",
                    (str(complaint_id),),
                )
                connection.execute("DELETE FROM patient_keys WHERE complaint_id = ?", (str(complaint_id),))
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("the log still holds the erased key's old row until the store's next checkpoint")

    def complaints(self) -> Iterator[UUID]:
        with self._lock:
            rows = self._connection.execute("SELECT complaint_id FROM patient_keys").fetchall()
        for (complaint_id,) in rows:
            yield UUID(complaint_id)

    def close(self) -> None:
        with self._lock:
            self._connection.close()
