"""The local delivery channel: each message is a file. `make run` needs no external account."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from uuid import UUID

from services.notifier.channels import Message
from services.notifier.domain import COMPLAINANT
from shared.privacy import shred
from shared.reference import reference_of


class FileSink:
    """Writes one JSON file per delivery, owner-only (the directory too): a receipt holds the
    complainant's contact, an alert its acknowledgement link. Named so that a person finds a message
    by kind and the complaint's reference, and never by anything about the patient:
    ``receipt-<reference>-<delivery id>.json``, ``alert-<staff id>-<reference>-<delivery id>.json``
    (``ls -t`` sorts them by time).

    The name follows from the message alone, so writing the same delivery again replaces its file
    with the same content (a repeated attempt never makes a second message) without looking through
    the directory. ``erase`` removes a complaint's receipts, their contents overwritten.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)  # made by an earlier version, or by someone else's umask

    async def send(self, message: Message) -> None:
        """Written on the event loop: a small file on the local disk, not synced, takes tens of
        microseconds, less than a trip to a worker thread and back (at 50 complaints/s, six messages
        each, the notifier spent about 1 ms less CPU per complaint without it, in four pairs of runs
        taking turns). By default the disk is the notifier's store's: if it hangs, so does the store.
        A channel that waits on a network (mail) sends from a worker thread or asynchronously."""
        self._write(message)

    def _write(self, message: Message) -> None:
        target = self.directory / _file_name(message)
        partial = target.with_suffix(".partial")
        content = {
            "delivery_id": str(message.delivery_id),
            "complaint_id": str(message.complaint_id),
            "to": message.address,
            "subject": message.subject,
            "text": message.text,
        }
        with open(partial, "w", encoding="utf-8", opener=_owner_only) as file:
            file.write(json.dumps(content, ensure_ascii=False))  # json.dump encodes in Python, piecemeal
        os.replace(partial, target)

    def erase(self, complaint_id: UUID) -> int:
        """Removes the complaint's receipts, each overwritten first; how many there were."""
        erased = 0
        for path in self.directory.glob(f"receipt-{reference_of(complaint_id)}-*.json"):
            with contextlib.suppress(FileNotFoundError, ValueError):  # gone meanwhile, or not ours
                if json.loads(path.read_bytes()).get("complaint_id") == str(complaint_id):
                    shred(path)
                    erased += 1
        return erased


def _file_name(message: Message) -> str:
    reference = reference_of(message.complaint_id)
    if message.recipient == COMPLAINANT:
        return f"receipt-{reference}-{message.delivery_id}.json"
    staff_id = re.sub(r"[^A-Za-z0-9_.-]", "_", message.recipient)
    return f"alert-{staff_id}-{reference}-{message.delivery_id}.json"


def _owner_only(name: str, flags: int) -> int:
    return os.open(name, flags, 0o600)
