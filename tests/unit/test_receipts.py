from datetime import UTC, datetime
from uuid import UUID

import pytest

from services.notifier.domain import RECEIPT_TEXT, receipt_text

pytestmark = pytest.mark.unit

COMPLAINT = UUID("77353f1b-5811-5e84-8845-e255d1631473")
DUE = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize("language", sorted(RECEIPT_TEXT))
def test_every_receipt_gives_the_reference_and_the_deadline_in_the_complainants_language(
    language: str,
) -> None:
    text = receipt_text(language, COMPLAINT, DUE, "Asia/Tokyo")
    assert "REZA-8VYH" in text  # the reference the form's page shows, and every API takes
    assert text == RECEIPT_TEXT[language].format(reference="REZA-8VYH", due="2026-11-23 12:30")
