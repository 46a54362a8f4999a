from datetime import UTC, datetime
from uuid import UUID

import pytest

from services.notifier.domain import RECEIPT_TEXT, receipt_text, reference_of

pytestmark = pytest.mark.unit

COMPLAINT = UUID("77353f1b-5811-5e84-8845-e255d1631473")
DUE = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize("language", sorted(RECEIPT_TEXT))
def test_every_receipt_gives_the_reference_and_the_deadline_in_the_complainants_language(
    language: str,
) -> None:
    text = receipt_text(language, COMPLAINT, DUE, "Asia/Tokyo")
    assert "77353F1B" in text
    assert text == RECEIPT_TEXT[language].format(reference="77353F1B", due="2026-11-23 12:30")


def test_the_reference_is_short_enough_to_read_out_on_the_phone() -> None:
    assert reference_of(COMPLAINT) == "77353F1B"
