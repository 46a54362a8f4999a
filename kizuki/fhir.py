"""`kizuki fhir`: the complaints' handling and the safety events as FHIR R5 resources, a Bundle a period.

- Task: one a complaint (its handling), coded with HCAT; inputs carry each category's severity, the
  harm and the stage of care.
- Communication: the apology call (first response) and the feedback to the patient, part of the Task.
- AdverseEvent: each staff (adverse-event) report, with the complaints linked to it (SafetyEventLinked).

HCAT codes use the code system HCAT_SYSTEM (its codes are the category names of shared/events.py).
Nothing identifies the patient: the record holds the patient's data only sealed with the complaint's
own key, and this reads the record alone; an AdverseEvent's required subject is a Reference that
says only that the patient is not identified. The ids are the record's random UUIDs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from fhir.resources.bundle import Bundle

from kizuki.analysis import CATEGORIES, DOMAIN_OF, Case
from kizuki.analysis_figures import Periods

HCAT_SYSTEM = "urn:kizuki:hcat"  # HCAT categories: quality, safety, environment, ...
HCAT_DOMAIN_SYSTEM = "urn:kizuki:hcat-domain"  # clinical, management, relationships
HCAT_FIELD_SYSTEM = "urn:kizuki:hcat-field"  # what a Task input is: severity-<category>, harm, stage
COMPLAINT_SYSTEM = "urn:kizuki:complaint"  # the complaint id on the record
NOT_IDENTIFIED = {"type": "Patient", "display": "patient not identified in this export"}


def fhir_export(cases: list[Case], periods: Periods) -> dict[str, Any]:
    """A collection Bundle of one Bundle a period; each is validated with the fhir.resources models."""
    by_period: dict[str, list[dict[str, Any]]] = {}
    reports = {case.timeline.complaint_id: case for case in cases if case.staff_report}
    linked: dict[str, list[str]] = {}
    for case in cases:
        for adverse_event in case.adverse_events:
            linked.setdefault(adverse_event, []).append(case.timeline.complaint_id)
    for case in cases:
        period = by_period.setdefault(periods.of(_at(case.timeline.occurred_at)), [])
        if case.staff_report:
            period.append(_adverse_event(case, linked.get(case.timeline.complaint_id, [])))
        else:
            period.extend([_task(case), *_communications(case)])
    for adverse_event, complaints in sorted(linked.items()):
        if adverse_event not in reports:  # a report outside the period asked for: still shown, linked
            first = next(c for c in cases if c.timeline.complaint_id == complaints[0])
            by_period[periods.of(_at(first.timeline.occurred_at))].append(
                _adverse_event(None, complaints, adverse_event)
            )
    bundles = [_bundle(name, resources, "collection") for name, resources in sorted(by_period.items())]
    for bundle in bundles:
        Bundle.model_validate(bundle)
    return _bundle("all", bundles, "collection")


def _bundle(name: str, resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid5(NAMESPACE_URL, f"urn:kizuki:period:{name}")),
        "identifier": {"system": "urn:kizuki:period", "value": name},
        "type": kind,
        "entry": [{"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource} for resource in resources],
    }


def _at(value: datetime | None) -> datetime:
    assert value is not None  # only complaints with an occurrence are exported
    return value


def hcat_concept(categories: tuple[str, ...] | list[str]) -> dict[str, Any]:
    codings = [{"system": HCAT_SYSTEM, "code": c, "display": c.replace("_", " ")} for c in categories]
    domains = sorted({DOMAIN_OF[c] for c in categories})
    codings += [{"system": HCAT_DOMAIN_SYSTEM, "code": d} for d in domains]
    return {"coding": codings, "text": ", ".join(categories)} if codings else {"text": "not coded"}


def _task(case: Case) -> dict[str, Any]:
    t = case.timeline
    coded = case.coding.present() if case.coding else ()
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": t.complaint_id,
        "identifier": [{"system": COMPLAINT_SYSTEM, "value": t.complaint_id}],
        "status": "completed" if t.closed_at else "in-progress",
        "intent": "order",
        "code": hcat_concept(coded),
        "businessStatus": {
            "text": f"tier {t.tier or 'none'}; department {t.department}; channel {t.channel}"
        },
        "authoredOn": _iso(t.registered_at),
        "executionPeriod": {"start": _iso(t.occurred_at)}
        | ({"end": _iso(t.closed_at)} if t.closed_at else {}),
    }
    if case.coding is not None:
        inputs = [(f"severity-{c}", case.coding.severity(c)) for c in CATEGORIES]
        task["input"] = [_input(name, {"valueInteger": value}) for name, value in inputs] + [
            _input("harm", {"valueInteger": case.coding.harm}),
            _input("stage", {"valueCode": case.coding.stage}),
        ]
    return task


def _input(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": {"coding": [{"system": HCAT_FIELD_SYSTEM, "code": name}]}} | value


def _communications(case: Case) -> list[dict[str, Any]]:
    t = case.timeline
    done = (("first-response", t.first_response_at), ("feedback", t.feedback_at))
    coded = case.coding.present() if case.coding else ()
    return [
        {
            "resourceType": "Communication",
            "id": str(uuid5(NAMESPACE_URL, f"urn:kizuki:{t.complaint_id}:{what}")),
            "partOf": [{"reference": f"urn:uuid:{t.complaint_id}"}],
            "status": "completed",
            "category": [{"coding": [{"system": "urn:kizuki:communication", "code": what}]}],
            "topic": hcat_concept(coded),
            "sent": _iso(at),
        }
        for what, at in done
        if at is not None
    ]


def _adverse_event(case: Case | None, complaints: list[str], known_id: str | None = None) -> dict[str, Any]:
    event_id = case.timeline.complaint_id if case is not None else str(known_id)
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": event_id,
        "identifier": [{"system": COMPLAINT_SYSTEM, "value": event_id}],
        "status": "completed" if case is not None and case.timeline.closed_at else "in-progress",
        "actuality": "actual",
        "subject": NOT_IDENTIFIED,
        "supportingInfo": [{"itemReference": {"reference": f"urn:uuid:{c}"}} for c in sorted(complaints)],
    }
    if case is not None:
        resource["occurrenceDateTime"] = _iso(case.timeline.occurred_at)
        resource["recordedDate"] = _iso(case.timeline.registered_at)
        resource["category"] = [hcat_concept(case.coding.present() if case.coding else ())]
    return resource


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
