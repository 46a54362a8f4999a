"""Secrets as files: readable by their owner only, from the moment they exist."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, content: bytes) -> None:
    """Write a secret readable by its owner only, created with those permissions from the start."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)
    with open(path, "xb", opener=lambda name, flags: os.open(name, flags, 0o600)) as file:
        file.write(content)
