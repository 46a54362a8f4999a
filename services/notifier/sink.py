"""The local delivery channel: each message is a file. `make run` needs no external account."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from services.notifier.channels import Message


class FileSink:
    """Writes one JSON file per delivery, named by its delivery id.

    Writing the same delivery again replaces the file with the same content, so a repeated attempt
    never makes a second message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: Message) -> None:
        target = self.directory / f"{message.delivery_id}.json"
        partial = target.with_suffix(".partial")
        content = {
            "delivery_id": str(message.delivery_id),
            "to": message.address,
            "subject": message.subject,
            "text": message.text,
        }
        partial.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, target)
