"""`kizuki map`: who reacts to what, from the services' contracts, the loops among them marked."""

from __future__ import annotations

import io

import pytest

from kizuki.message_map import loops, print_map
from shared.contracts import CONTRACTS, Contract
from shared.events import AlertRequested, CallbackCompleted, ComplaintReceived

pytestmark = pytest.mark.unit


def test_the_loops_are_the_services_that_react_to_what_they_caused() -> None:
    assert loops(CONTRACTS) == [
        ("escalation", "notifier", "escalation"),
        ("escalation", "followup", "escalation"),
    ]
    one_way = [
        Contract("escalation", handles=(CallbackCompleted,)),
        Contract("notifier", handles=(AlertRequested,)),
        Contract("followup", handles=(ComplaintReceived,)),
    ]
    assert loops(one_way) == []


def test_each_event_is_printed_with_its_publisher_its_handlers_and_its_loop() -> None:
    out = io.StringIO()
    print_map(CONTRACTS, out)
    lines = out.getvalue().splitlines()

    assert any(
        line.split()
        == ["ComplaintReceived", "intake", "->", "escalation,", "notifier,", "followup,", "console"]
        for line in lines
    )
    [alert] = [line for line in lines if line.startswith("AlertRequested ")]
    assert alert.endswith("loop: escalation -> notifier -> escalation")
    [checkpoint] = [line for line in lines if line.startswith("CheckpointSigned ")]
    assert "every service -> (the record only)" in checkpoint
    assert lines[-2:] == ["  escalation -> notifier -> escalation", "  escalation -> followup -> escalation"]
