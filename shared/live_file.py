"""A data file that services read again when it changes: the staff directory, the revoked tokens."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often the file's metadata is looked at, at most: a stat, no read, while nothing changes.
CHECK_EVERY_SECONDS = 1.0


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class LiveFile(Generic[T]):
    """The content of a file, read again when its inode, size or times change.

    A change that does not load (half written, invalid) is logged once and the content in force
    stays: a mistake in the file never takes a service down and never empties what it holds.
    """

    def __init__(self, path: Path, load: Callable[[Path], T], check_every: float = CHECK_EVERY_SECONDS):
        self.path = path
        self._load = load
        self._check_every = check_every
        self._lock = threading.Lock()
        self._seen = _signature(path)
        self._content = load(path)  # at start an invalid file is an error: there is nothing to keep
        self._checked = time.monotonic()

    @property
    def current(self) -> T:
        with self._lock:
            if time.monotonic() - self._checked >= self._check_every:
                self._checked = time.monotonic()
                self._reload_if_changed()
            return self._content

    def _reload_if_changed(self) -> None:
        signature = _signature(self.path)
        if signature == self._seen:
            return
        self._seen = signature
        try:
            self._content = self._load(self.path)
        except (OSError, ValueError) as error:
            log.error(
                "%s changed but cannot be used; the previous content stays in force: %s", self.path, error
            )
            return
        log.info("%s changed: reloaded", self.path)
