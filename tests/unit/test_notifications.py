"""A notification's way through its recipient's channels, and the acknowledgement link's token."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.notifier.domain import Notification, NotPending, RetryRule
from services.notifier.links import LinkRefused, LinkSigner

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RULE = RetryRule(attempts_per_channel=3, first_delay=timedelta(seconds=2), max_delay=timedelta(seconds=5))


def alert(**contacts: str) -> Notification:
    return Notification(
        id=uuid4(),
        complaint_id=uuid4(),
        recipient="sv-003",
        contacts=contacts,
        subject="[kizuki] Case X",
        text="...",
        duty="supervisor_acknowledgement",
        alert_number=1,
        language="ja",
        at=AT,
    )


def events_of(notification: Notification) -> list[str]:
    return [type(event).__name__ for event in notification.collect_events()]


def test_transient_failures_are_retried_with_growing_delays_then_the_next_channel_is_tried() -> None:
    notification = alert(email="ito@hospital.example", slack="U123")
    retries = []
    for _ in range(3):
        notification.start_attempt(AT)
        notification.fail_attempt("HTTP 503", permanent=False, at=AT, rule=RULE)
        retries.append(notification.retry_at)
    assert retries == [AT + timedelta(seconds=2), AT + timedelta(seconds=4), None]
    assert notification.channel == "slack"
    key = notification.idempotency_key
    notification.start_attempt(AT)
    notification.deliver(AT)
    assert notification.outcome == "delivered by slack"
    assert notification.attempts == 4
    assert key == notification.idempotency_key != alert().id
    with pytest.raises(NotPending):
        notification.start_attempt(AT)


def test_a_permanent_failure_moves_on_at_once_and_the_last_one_gives_up() -> None:
    notification = alert(email="ito@hospital.example", sms="+81-90-0000-0004")
    notification.start_attempt(AT)
    notification.fail_attempt("rejected_recipient (SMTP 550)", permanent=True, at=AT, rule=RULE)
    assert notification.channel == "sms"
    notification.start_attempt(AT)
    notification.fail_attempt("refused (HTTP 400)", permanent=True, at=AT, rule=RULE)
    assert not notification.pending
    recorded = notification.collect_events()
    assert [type(event).__name__ for event in recorded][-2:] == ["AttemptFailed", "GaveUp"]
    reasons = [event.reason for event in recorded if isinstance(event, Notification.AttemptFailed)]
    # Reasons go on the record as the channels classified them (never a provider's text).
    assert reasons == ["rejected_recipient (SMTP 550)", "refused (HTTP 400)"]


def test_an_alert_is_acknowledged_once_by_its_recipient() -> None:
    notification = alert(email="ito@hospital.example")
    assert notification.acknowledge(AT)
    assert not notification.acknowledge(AT)
    assert notification.acknowledged_by == "sv-003"
    assert events_of(notification) == ["Requested", "Acknowledged"]


def test_a_link_token_names_its_alert_until_it_expires() -> None:
    signer = LinkSigner(b"s" * 32)
    delivery_id = uuid4()
    token = signer.token(delivery_id, AT + timedelta(hours=1))
    assert signer.verify(token, AT) == delivery_id
    with pytest.raises(LinkRefused) as expired:
        signer.verify(token, AT + timedelta(hours=1))
    assert expired.value.expired


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token.replace(token[0], "f" if token[0] != "f" else "e", 1),  # another alert
        lambda token: token.rsplit(".", 2)[0] + ".9999999999." + token.rsplit(".", 1)[1],  # later expiry
        lambda token: LinkSigner(b"x" * 32).token(uuid4(), AT + timedelta(hours=1)),  # another key
        lambda token: "not-a-token",
    ],
)
def test_a_forged_or_altered_token_is_refused(tamper: Callable[[str], str]) -> None:
    signer = LinkSigner(b"s" * 32)
    token = signer.token(uuid4(), AT + timedelta(hours=1))
    with pytest.raises(LinkRefused) as refused:
        signer.verify(tamper(token), AT)
    assert not refused.value.expired
