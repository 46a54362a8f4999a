"""What a store keeps on disk, searched in every file it wrote."""

from __future__ import annotations

from pathlib import Path


def store_files(directory: Path) -> list[Path]:
    """Every file an SQLite store wrote: the database, and its write-ahead log and shared memory (WAL
    mode keeps recent writes in ``-wal`` until a checkpoint) or its rollback journal."""
    return sorted(path for path in directory.glob("store.sqlite*") if path.is_file())


def store_holds(directory: Path, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in store_files(directory))
