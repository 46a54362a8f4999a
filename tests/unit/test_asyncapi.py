"""Each service's AsyncAPI document: derived from its contract, and the one the repository keeps is the
one the code makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.asyncapi import DOCS, asyncapi_document, asyncapi_json
from shared.contracts import CONTRACTS, ESCALATION, INTAKE

pytestmark = pytest.mark.unit


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def test_a_document_has_a_channel_message_and_operation_for_each_subject_sent_or_received() -> None:
    document = asyncapi_document(ESCALATION)

    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "kizuki escalation"
    channels, operations = document["channels"], document["operations"]
    assert channels["EscalationStarted"]["address"] == "events.escalation.EscalationStarted"
    assert channels["ComplaintReceived"]["address"] == "events.intake.ComplaintReceived"
    assert channels["MessageRejected"]["address"] == "events.escalation.MessageRejected"
    assert channels["TimerFired"]["address"] == "timer.escalation.due.{key}"
    assert operations["sendEscalationStarted"]["action"] == "send"
    assert operations["receiveComplaintReceived"]["action"] == "receive"
    assert operations["receiveTimerFired"]["channel"] == {"$ref": "#/channels/TimerFired"}
    assert {operation["action"] for operation in operations.values()} == {"send", "receive"}
    for ref in refs(document):
        assert resolve(document, ref) is not None, ref
    payload = resolve(document, document["components"]["messages"]["ComplaintReceived"]["payload"]["$ref"])
    assert {"complaint_id", "patient_data", "type", "version"} <= set(payload["properties"])


def test_intake_receives_from_the_record_nothing_and_from_channel_systems_their_submissions() -> None:
    document = asyncapi_document(INTAKE)
    operations = document["operations"]

    received = [name for name, operation in operations.items() if operation["action"] == "receive"]
    assert received == ["receiveSubmission"]
    assert "sendComplaintReceived" in operations
    channel = document["channels"]["Submission"]
    assert channel["address"] == "submissions.{channel}"
    assert "channel" in channel["parameters"]
    schema = document["components"]["schemas"]["Submission"]
    assert {"message_id", "summary"} <= set(schema["properties"])


def test_the_documents_in_the_repository_are_the_ones_the_code_makes() -> None:
    kept = sorted(path.name for path in DOCS.glob("*.json"))
    assert kept == sorted(f"{contract.service}.json" for contract in CONTRACTS), "run `make docs`"
    for contract in CONTRACTS:
        made = asyncapi_json(contract)
        assert (DOCS / f"{contract.service}.json").read_text(encoding="utf-8") == made, (
            f"docs/asyncapi/{contract.service}.json differs from what the code makes: run `make docs`"
        )
        assert json.loads(made) == asyncapi_document(contract)
