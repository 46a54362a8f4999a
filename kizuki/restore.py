"""`kizuki restore DIR`: a fresh machine brought to the state of a backup.

Every file is checked against the manifest first (nothing is written if one is missing or changed);
an existing data directory is left alone unless told (``--force``, which moves it aside). The files
and stores go where this machine's settings put them; the streams are restored into the embedded
nats-server (started for the purpose on the new data directory, then stopped) or into the server at
``NATS_URL``, which must not have them yet. The consumers come back at their positions, resumed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kizuki.backup import connect_as_administrator, streams_in_order
from kizuki.backup_files import (
    CONFIG_DIR,
    OWNER_ONLY_DIR,
    BackupRefused,
    checked_manifest,
    destination,
    write_owner_only,
)
from kizuki.processes import start_nats, stop
from kizuki.server_config import write_server_config
from kizuki.snapshots import restore
from kizuki.store_copies import restore_store
from shared.settings import SERVICES, Settings


def _make_room(settings: Settings, force: bool) -> Path | None:
    """Refuse an existing data directory, or with ``force`` move it aside; returns where it went."""
    data = settings.data_dir
    if not data.exists() or not any(data.iterdir()):
        return None
    if not force:
        raise BackupRefused(
            f"the data directory {data} is not empty: restore into a new one (KIZUKI_DATA_DIR), "
            "or add --force to move this one aside"
        )
    aside = data.with_name(f"{data.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    data.rename(aside)
    return aside


def _write_files_and_stores(settings: Settings, backup: Path, manifest: dict[str, Any]) -> None:
    for name in manifest["files"]:
        if name.startswith("files/"):
            write_owner_only(destination(settings, name.removeprefix("files/")), (backup / name).read_bytes())
    for service in SERVICES:
        restore_store(settings, service, backup)


async def _restore_streams(settings: Settings, backup: Path) -> dict[str, int]:
    nc = await connect_as_administrator(settings)
    restored = {}
    try:
        js = nc.jetstream()
        for stream in streams_in_order():
            meta = json.loads((backup / "streams" / f"{stream}.json").read_text(encoding="utf-8"))
            state = await restore(nc, stream, meta, backup / "streams" / f"{stream}.tar.s2")
            restored[stream] = int(state["messages"])
            # The snapshot kept the pause the backup put on each consumer.
            for consumer in await js.consumers_info(stream):
                await js.resume_consumer(stream, consumer.name)
    finally:
        await nc.close()
    return restored


def restore_backup(settings: Settings, backup: Path, force: bool) -> list[str]:
    """Restore the backup in ``backup``; returns what the operator should know, a line each."""
    manifest = checked_manifest(backup)
    if settings.embedded_nats and settings.nats_cluster > 1:
        raise BackupRefused(
            "a backup is restored into one embedded nats-server: restore with KIZUKI_NATS_CLUSTER=1"
        )
    if manifest["store"] != settings.store:
        raise BackupRefused(
            f"the backup holds {manifest['store']} stores and this machine is set up for {settings.store} "
            "(KIZUKI_STORE): restore it into the same kind"
        )
    aside = _make_room(settings, force)
    settings.data_dir.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    _write_files_and_stores(settings, backup, manifest)
    nats = None
    if settings.embedded_nats:
        logs = settings.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        config = write_server_config(settings)
        nats = start_nats(settings.nats_port, settings.nats_dir, logs / "nats-server.log", config)
    try:
        restored = asyncio.run(_restore_streams(settings, backup))
    finally:
        if nats is not None:
            stop(nats)
    notes = [f"the backup of {manifest['started_at']} is restored into {settings.data_dir}"]
    if aside is not None:
        notes.append(f"the data directory that was there is now {aside}")
    notes += [f"{stream}: {count} messages" for stream, count in restored.items()]
    for name, path in (("policy", settings.policy_path), ("directory", settings.directory_path),
                       ("channels", settings.channels_path)):  # fmt: skip
        kept = settings.data_dir / CONFIG_DIR / f"{name}.toml"
        if kept.is_file() and (not path.is_file() or path.read_bytes() != kept.read_bytes()):
            notes.append(f"the {name} file in use then differs from {path}: it is kept in {kept}")
    return notes
