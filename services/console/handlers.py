"""What the console reads from the record: the events its pages show, each folded into its read model."""

from __future__ import annotations

from typing import Any, cast

from eventsourcing.persistence import Tracking

from services.console.application import ConsoleApplication
from shared.consumer import Consumer
from shared.contracts import CONSOLE
from shared.events import AnyEvent, WireEvent
from shared.messages import Handles, On


def consumers(store: ConsoleApplication) -> list[Consumer[Any]]:
    def when_the_record_changes_update_the_pages(shown: WireEvent, tracking: Tracking) -> None:
        store.note(cast(AnyEvent, shown), tracking)  # one of the kinds below, each a member of AnyEvent

    # Every event a page shows is folded into the read model the same way.
    rows = (On(shown, when_the_record_changes_update_the_pages) for shown in CONSOLE.handles)
    return Handles(CONSOLE, *rows).consumers()
