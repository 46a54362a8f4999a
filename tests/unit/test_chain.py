import pytest

from shared.chain import START, Link, SigningKey, chained, checkpoint_statement, new_seed, signature_holds

pytestmark = pytest.mark.unit

HEADERS = {"Nats-Msg-Id": "intake:1", "Kizuki-Event-Type": "ComplaintReceived", "Kizuki-Event-Version": "1"}


def test_a_link_covers_the_subject_the_identifying_headers_the_payload_and_its_place() -> None:
    first = chained("events.intake.ComplaintReceived", HEADERS, b"{}", START)
    assert first["Kizuki-Chain-Index"] == "1"
    assert first["Kizuki-Chain-Previous"] == "0" * 64
    variants = [
        chained("events.intake.Other", HEADERS, b"{}", START),
        chained("events.intake.ComplaintReceived", HEADERS | {"Nats-Msg-Id": "intake:2"}, b"{}", START),
        chained("events.intake.ComplaintReceived", HEADERS, b"{ }", START),
        chained("events.intake.ComplaintReceived", HEADERS, b"{}", Link(1, first["Kizuki-Chain-Hash"])),
    ]
    hashes = {first["Kizuki-Chain-Hash"], *(variant["Kizuki-Chain-Hash"] for variant in variants)}
    assert len(hashes) == 5


def test_a_signature_holds_only_for_its_key_and_statement() -> None:
    key, other = SigningKey(new_seed()), SigningKey(new_seed())
    statement = checkpoint_statement("intake", Link(3, "ab" * 32))
    signature = key.sign(statement)
    assert signature_holds(key.public_key, statement, signature)
    assert not signature_holds(other.public_key, statement, signature)
    assert not signature_holds(key.public_key, checkpoint_statement("intake", Link(4, "ab" * 32)), signature)
    assert not signature_holds("not a key", statement, signature)
    assert not signature_holds(key.public_key, statement, "not base64!")
