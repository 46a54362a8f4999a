"""The local delivery channel: each message is a file. Real channels come with the notifier issue."""

from __future__ import annotations

import json
import os
from pathlib import Path
from uuid import UUID


class FileSink:
    """Writes one JSON file per delivery, named by its delivery id.

    Writing the same delivery again replaces the file with the same content, so a redelivered
    bus message never makes a second message.
    """

    channel = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def deliver(self, delivery_id: UUID, recipient: str, text: str) -> None:
        target = self.directory / f"{delivery_id}.json"
        partial = target.with_suffix(".partial")
        partial.write_text(
            json.dumps({"delivery_id": str(delivery_id), "to": recipient, "text": text}, ensure_ascii=False),
            encoding="utf-8",
        )
        os.replace(partial, target)
