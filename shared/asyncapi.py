"""Each service's AsyncAPI 3.0 document, derived from its contract (shared/contracts.py): a channel per
subject it publishes or handles, each message's payload the JSON Schema of its pydantic wire class, and
a send or receive operation for each.

Served as JSON at ``/asyncapi.json`` beside the OpenAPI document, and written into the repository by
``make docs`` (``python -m shared.asyncapi``), where a test holds it to what the code says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from eventsourcing.utils import resolve_topic
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.bus import due_subject, schedule_subject, submission_subject
from shared.contracts import ANY_SERVICE, CONTRACTS, Contract
from shared.events import WIRE_EVENTS, WireEvent, subject_of
from shared.timers import Timer

DOCS = Path(__file__).parents[1] / "docs" / "asyncapi"
# The documents' own version; each message carries its version in its payload.
DOCUMENT_VERSION = "1.0.0"
SCHEMAS = "#/components/schemas/{model}"
TIMER_KEY = {"key": {"description": "The timer's key: its rule, aggregate, part and attempt."}}
CHANNEL_NAME = {"channel": {"description": "The channel system's name, as the policy declares it."}}


def asyncapi_document(contract: Contract) -> dict[str, Any]:
    service = contract.service
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    models: list[type[BaseModel]] = []

    def add(
        name: str, address: str, model: type[BaseModel], action: Literal["send", "receive"], summary: str
    ) -> None:
        channel: dict[str, Any] = {
            "address": address,
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
        if "{key}" in address:
            channel["parameters"] = TIMER_KEY
        if "{channel}" in address:
            channel["parameters"] = CHANNEL_NAME
        channels[name] = channel
        operations[f"{action}{name}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{model.__name__}"}],
            "summary": summary,
        }
        messages[model.__name__] = {
            "name": model.__name__,
            "title": model.__name__,
            "summary": " ".join((model.__doc__ or model.__name__).split()),
            "contentType": "application/json",
            "payload": {"$ref": SCHEMAS.format(model=model.__name__)},
        }
        models.append(model)

    for kind in [*contract.publishes, *_of_any_service()]:
        add(kind.type_name(), contract.published_subject(kind), kind, "send", f"{service} publishes it.")
    for kind in contract.handles:
        add(kind.type_name(), subject_of(kind), kind, "receive", f"{service} handles it from the record.")
    if contract.submissions is not None:
        summary = (
            "A channel system's complaint, published with its own credential on its own subject: "
            f"{service} registers it once per message id, or records why not (ChannelMessageRejected)."
        )
        add(
            "Submission",
            submission_subject("{channel}"),
            resolve_topic(contract.submissions),
            "receive",
            summary,
        )
    if contract.timers:
        summary = "A timer it sets for itself: a NATS message schedule on its own timer stream."
        add("TimerSet", schedule_subject(service, "{key}"), Timer, "send", summary)
        summary = "The timer's fire, the same body, delivered by the server when it falls due."
        add("TimerFired", due_subject(service, "{key}"), Timer, "receive", summary)

    _, schemas = models_json_schema(
        [(model, "validation") for model in dict.fromkeys(models)], ref_template=SCHEMAS
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"kizuki {service}",
            "version": DOCUMENT_VERSION,
            "description": f"What the {service} service publishes on the bus and what it handles.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas.get("$defs", {})},
    }


def _of_any_service() -> list[type[WireEvent]]:
    return [kind for kind in WIRE_EVENTS if kind.service == ANY_SERVICE]


def asyncapi_json(contract: Contract) -> str:
    """The document as the repository keeps it: keys sorted, two-space indent, a final newline."""
    return json.dumps(asyncapi_document(contract), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_documents(directory: Path = DOCS) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for contract in CONTRACTS:
        (directory / f"{contract.service}.json").write_text(asyncapi_json(contract), encoding="utf-8")


if __name__ == "__main__":
    write_documents()
