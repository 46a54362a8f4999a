"""`kizuki intake reconcile`: per channel, what came in and what became of it, read from the record.

Every message a channel delivered is on the record exactly once, as a new complaint
(ComplaintReceived), a message added to a complaint (ComplaintMessageAppended) or a rejection with
its reason (ChannelMessageRejected): received = registered + appended + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from kizuki.audit import RecordEntry


@dataclass
class ChannelFigures:
    registered: int = 0
    appended: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (message ref, reason)
    possible_duplicates: int = 0

    @property
    def received(self) -> int:
        return self.registered + self.appended + len(self.rejected)


def reconcile(entries: list[RecordEntry], since: datetime) -> dict[str, ChannelFigures]:
    """Figures per channel for what intake recorded since then."""
    figures: dict[str, ChannelFigures] = {}
    channel_of: dict[str, str] = {}
    for entry in entries:
        if entry.service != "intake":
            continue
        body = entry.body
        if entry.event_type == "ComplaintReceived" and entry.complaint_id is not None:
            channel_of[entry.complaint_id] = body["channel"]
        if datetime.fromisoformat(body["recorded_at"]) < since:
            continue
        if entry.event_type == "ComplaintReceived":
            figures.setdefault(body["channel"], ChannelFigures()).registered += 1
        elif entry.event_type == "ComplaintMessageAppended":
            figures.setdefault(body["channel"], ChannelFigures()).appended += 1
        elif entry.event_type == "ChannelMessageRejected":
            figures.setdefault(body["channel"], ChannelFigures()).rejected.append(
                (body["message_ref"], body["reason"])
            )
        elif entry.event_type == "PossibleDuplicateFlagged" and entry.complaint_id in channel_of:
            figures.setdefault(channel_of[entry.complaint_id], ChannelFigures()).possible_duplicates += 1
    return dict(sorted(figures.items()))


def print_reconciliation(figures: dict[str, ChannelFigures], since: datetime, out: TextIO) -> None:
    print(f"intake since {since.isoformat()}", file=out)
    header = f"{'received':>9}{'registered':>11}{'appended':>9}{'rejected':>9}{'duplicates?':>12}"
    print(f"  {'channel':<14}{header}", file=out)
    for channel, counts in figures.items():
        print(
            f"  {channel:<14}{counts.received:>9}{counts.registered:>11}{counts.appended:>9}"
            f"{len(counts.rejected):>9}{counts.possible_duplicates:>12}",
            file=out,
        )
    for channel, counts in figures.items():
        for ref, reason in counts.rejected:
            print(f"  rejected {channel} {ref}: {reason}", file=out)
