"""The services' refusals as the console says them: in the person's language, every word from the
catalogues."""

from __future__ import annotations

import pytest

from services.console import refusals
from services.console.i18n import LANGUAGES, translations
from services.console.refusals import not_answering, refused

pytestmark = pytest.mark.unit


def test_closing_refused_names_the_open_duties_in_the_persons_language() -> None:
    answer = {"detail": {"error": "the case has open duties", "open_duties": ["first_response"]}}
    said = refused("escalation", 409, answer)
    assert said.said("en") == "The case cannot be closed yet. Still open: Apology call."
    assert said.said("ja") == "この案件はまだ終結できません。未完了: お詫びの電話。"
    assert "first_response" not in said.said("zh")


def test_a_refusal_not_known_by_its_words_is_said_by_its_status_with_the_fields_to_check() -> None:
    problems = {"error": "the request is not valid", "problems": [{"field": "summary", "message": "..."}]}
    assert refused("intake", 422, {"detail": problems}).said("en") == (
        "Something entered was not accepted: check the form and send it again. "
        "Check: What happened (facts only)."
    )
    in_one_sentence = refused("intake", 422, {"detail": "occurred_at: is in the future"})
    assert in_one_sentence.said("en").endswith("Check: When it happened.")
    forbidden = refused("followup", 403, {"detail": "cb-001 may not do this"})
    assert forbidden.said("en") == refusals.BY_STATUS[403]
    assert refused("intake", 500, None).said("en") == (
        "The intake service could not do this (status 500): try again in a moment."
    )


def test_every_refusal_is_in_each_catalogue() -> None:
    wanted = {
        *(message for _, message in refusals.KNOWN),
        *refusals.BY_STATUS.values(),
        *refusals.FIELDS.values(),
        refusals.OTHER,
        refusals.NOT_ANSWERING,
        refusals.FIELDS_TO_CHECK,
        refusals.LIST_SEPARATOR,
    }
    for language in ("ja", "zh"):
        catalogue = translations(language)
        assert sorted(m for m in wanted if catalogue.gettext(m) == m) == [], language
    assert not_answering("escalation").said("zh") == "escalation 服务没有响应：请稍后再试。"
    assert set(LANGUAGES) == {"ja", "zh", "en"}
