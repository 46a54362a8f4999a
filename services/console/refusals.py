"""What a person is told when an action is not done, in their language. The services answer in
English for those who call their APIs; the console recognises the refusals a person can meet through
its forms by the service's status and the start of its words, and says each with a catalogue message:
the duties still open and the fields to check by their names on the page; any other refusal by its
status alone. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.console import labels
from services.console.i18n import translations

# The start of a service's words, and what the person is told instead (a catalogue message id).
KNOWN = (
    ("the case has open duties", "The case cannot be closed yet. Still open: %(duties)s."),
    (
        "a case closes with a corrective measure",
        "A case closes once a corrective measure and the person responsible for it are recorded.",
    ),
    ("the case is closed", "The case is closed."),
    ("the callback is not due yet", "The callback is not due yet: record its outcome once it is due."),
    ("the callback is ", "This callback is no longer open."),
    ("reports go to an executive", "A report goes to one of the executives."),
)
# Any other refusal, by the service's status.
BY_STATUS = {
    400: "The service could not read what was sent: open the page again and send it once more.",
    401: "The service did not accept your sign-in: sign out and sign in again.",
    403: "This is not yours to do here: it is for the people of the case and their chain.",
    404: "The service does not know this case.",
    409: "This does not fit the case as it is now: open the page again to see where it stands.",
    422: "Something entered was not accepted: check the form and send it again.",
}
OTHER = "The %(service)s service could not do this (status %(status)s): try again in a moment."
NOT_ANSWERING = "The %(service)s service is not answering: try again in a moment."
FIELDS_TO_CHECK = "Check: %(fields)s."
# Between the items of a list in a sentence ("、" in Japanese and Chinese).
LIST_SEPARATOR = ", "
# The services' field names (as their 422 answers name them), by the label the form shows.
FIELDS = {
    "occurred_at": "When it happened",
    "summary": "What happened (facts only)",
    "department": "Department",
    "complainant.name": "Complainant's name (optional)",
    "complainant.contact": "Complainant's phone or e-mail (optional)",
    "complainant_contact": "Complainant's phone or e-mail (optional)",
    "text": "Report (one line is enough)",
    "notes": "Notes",
    "measure": "Measure against recurrence",
    "responsible": "Person responsible",
    "satisfaction": "Satisfaction (1 worst, 5 best)",
    "comments": "What the patient said",
}
_FIELD = re.compile(r"^([a-z_.]+): ")


@dataclass(frozen=True)
class Refusal:
    """A catalogue message, with the values it names; ``duties`` and ``fields`` are said by their
    names on the page."""

    message: str
    values: dict[str, str] = field(default_factory=dict)
    duties: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def said(self, language: str) -> str:
        gettext = translations(language).gettext
        separator, values = gettext(LIST_SEPARATOR), dict(self.values)
        if self.duties:
            values["duties"] = separator.join(gettext(labels.DUTIES.get(kind, kind)) for kind in self.duties)
        sentence = gettext(self.message) % values if values else gettext(self.message)
        if self.fields:
            named = separator.join(gettext(FIELDS[name]) for name in self.fields)
            sentence += " " + gettext(FIELDS_TO_CHECK) % {"fields": named}
        return sentence


def not_answering(service: str) -> Refusal:
    return Refusal(NOT_ANSWERING, {"service": service})


def refused(service: str, status: int, answer: object) -> Refusal:
    """A service's refusal (its status and its JSON answer, or None) as the person is told it."""
    detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
    words = str(detail.get("error", "")) if isinstance(detail, dict) else str(detail or "")
    for start, message in KNOWN:
        if words.startswith(start):
            open_duties = detail.get("open_duties", []) if isinstance(detail, dict) else []
            return Refusal(message, duties=tuple(str(kind) for kind in open_duties))
    if status in BY_STATUS:
        return Refusal(BY_STATUS[status], fields=_fields(detail) if status == 422 else ())
    return Refusal(OTHER, {"service": service, "status": str(status)})


def _fields(detail: object) -> tuple[str, ...]:
    """The fields a 422 names (each problem's, or its one sentence's), those the forms show."""
    problems = detail.get("problems", []) if isinstance(detail, dict) else [detail]
    named = []
    for problem in problems:
        name = problem.get("field") if isinstance(problem, dict) else None
        if name is None:
            found = _FIELD.match(str(problem))
            name = found.group(1) if found else None
        if name in FIELDS and name not in named:
            named.append(name)
    return tuple(named)
