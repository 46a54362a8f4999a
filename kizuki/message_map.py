"""`kizuki map`: who reacts to what on the record, printed from the services' contracts
(shared/contracts.py): each event, the service that publishes it and every service that handles it, and
the loops, where a service reacts to what it caused (escalation -> notifier -> escalation)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TextIO

from shared.contracts import ANY_SERVICE, Contract
from shared.events import WIRE_EVENTS, WireEvent

Loop = tuple[str, ...]


def handlers_of(kind: type[WireEvent], contracts: Sequence[Contract]) -> list[str]:
    return [contract.service for contract in contracts if kind in contract.handles]


def loops(contracts: Sequence[Contract]) -> list[Loop]:
    """Every loop of services, each once, starting from its first service in the order of ``contracts``:
    each service in it handles an event the one before it publishes."""
    order = [contract.service for contract in contracts]
    reacting = {
        service: {
            handler
            for kind in WIRE_EVENTS
            if kind.service == service
            for handler in handlers_of(kind, contracts)
        }
        for service in order
    }
    found: list[Loop] = []

    def walk(path: Loop) -> None:
        for service in sorted(reacting[path[-1]], key=order.index):
            if service == path[0]:
                found.append((*path, service))
            elif service not in path and order.index(service) > order.index(path[0]):
                walk((*path, service))

    for start in order:
        walk((start,))
    return found


def print_map(contracts: Sequence[Contract], out: TextIO) -> None:
    found = loops(contracts)
    width = max(len(kind.type_name()) for kind in WIRE_EVENTS)
    print("event".ljust(width), " publisher -> handled by", file=out)
    for kind in WIRE_EVENTS:
        publisher = "every service" if kind.service == ANY_SERVICE else kind.service
        handlers = handlers_of(kind, contracts)
        line = f"{kind.type_name().ljust(width)}  {publisher} -> {', '.join(handlers) or '(the record only)'}"
        through = [loop for loop in found if _steps(loop) & {(kind.service, handler) for handler in handlers}]
        if through:
            line += "   loop: " + "; ".join(" -> ".join(loop) for loop in through)
        print(line, file=out)
    print(file=out)
    print("loops:" if found else "loops: none", file=out)
    for loop in found:
        print("  " + " -> ".join(loop), file=out)


def _steps(loop: Loop) -> set[tuple[str, str]]:
    return set(pairwise(loop))
