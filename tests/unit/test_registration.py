from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.application import fingerprint
from services.intake.domain import Registration, RegistrationError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
JST = timezone(timedelta(hours=9))


def registration(**changes: object) -> Registration:
    fields: dict[str, object] = {
        "channel": "phone",
        "occurred_at": datetime(2026, 11, 23, 11, 30, tzinfo=JST),
        "heard_by": "n-001",
        "department": "Ward 3",
        "summary": "Waited three hours for pain medication.",
        "complainant_name": "Sato",
        "complainant_contact": "sato@example.org",
        "category": None,
        "tier": None,
        "language": "ja",
    }
    fields.update(changes)
    return Registration(**fields)  # type: ignore[arg-type]


def test_a_complaint_that_occurred_before_now_is_accepted() -> None:
    registration().check(NOW)


def test_a_complaint_cannot_have_occurred_in_the_future() -> None:
    with pytest.raises(RegistrationError) as raised:
        registration(occurred_at=NOW + timedelta(hours=1)).check(NOW)
    assert raised.value.field == "occurred_at"
    assert "future" in raised.value.message


def test_small_clock_differences_are_tolerated() -> None:
    registration(occurred_at=NOW + timedelta(seconds=30)).check(NOW)


def test_occurred_at_must_carry_an_offset() -> None:
    with pytest.raises(RegistrationError, match="occurred_at: must carry a UTC offset"):
        registration(occurred_at=datetime(2026, 11, 23, 2, 0)).check(NOW)


@pytest.mark.parametrize("field", ["heard_by", "department", "summary"])
def test_facts_must_not_be_blank(field: str) -> None:
    with pytest.raises(RegistrationError, match=f"{field}: must not be blank"):
        registration(**{field: "   "}).check(NOW)


def test_the_fingerprint_tells_a_retry_from_a_different_complaint_and_is_keyed() -> None:
    key = bytes(32)
    assert fingerprint(registration(), key) == fingerprint(registration(), key)
    assert fingerprint(registration(), key) != fingerprint(registration(summary="Another story."), key)
    # Keyed with the complaint's own key: once that is destroyed, it confirms no guess about the patient.
    assert fingerprint(registration(), key) != fingerprint(registration(), bytes(range(32)))
