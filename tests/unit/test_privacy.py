"""Sealing patient data with a key of its own complaint, and what destroying the key does."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from shared.privacy import (
    IntakeKeys,
    MasterKey,
    PatientData,
    Unreadable,
    seal_patient_data,
    unseal_patient_data,
)

pytestmark = pytest.mark.unit

PATIENT = PatientData(name="Sato Hanako", contact="+81-90-1234-5678", summary="Waited three hours.")


def test_sealed_data_opens_only_with_its_key_and_for_its_complaint() -> None:
    key, complaint_id = bytes(range(32)), uuid4()
    sealed = seal_patient_data(key, complaint_id, PATIENT)
    assert unseal_patient_data(key, complaint_id, sealed) == PATIENT
    with pytest.raises(Unreadable):
        unseal_patient_data(bytes(32), complaint_id, sealed)
    with pytest.raises(Unreadable):  # bound to its complaint: not movable to another
        unseal_patient_data(key, uuid4(), sealed)
    assert seal_patient_data(key, complaint_id, PATIENT) != sealed  # a fresh nonce each time


def test_a_data_key_is_made_once_kept_owner_only_and_destroyed_for_good(tmp_path: Path) -> None:
    master = MasterKey(bytes(range(32)))
    keys = IntakeKeys(tmp_path / "keys", master, reporter_key=bytes(32))
    complaint_id = uuid4()
    key = keys.data_key(complaint_id)
    assert keys.data_key(complaint_id) == key  # a retried registration seals with the same key
    stored = tmp_path / "keys" / str(complaint_id)
    assert stored.stat().st_mode & 0o077 == 0
    assert key not in stored.read_bytes()  # wrapped, never in clear
    with pytest.raises(Unreadable):
        MasterKey(bytes(32)).unwrap(stored.read_bytes())

    keys.destroy(complaint_id)
    assert keys.wrapped(complaint_id) is None
    assert not stored.exists()
    keys.destroy(complaint_id)  # twice is harmless


def test_a_sealed_reporter_opens_only_for_its_complaint(tmp_path: Path) -> None:
    keys = IntakeKeys(tmp_path / "keys", MasterKey(bytes(32)), reporter_key=bytes(range(32)))
    complaint_id = uuid4()
    sealed = keys.seal_reporter(complaint_id, "n-001")
    assert keys.open_reporter(complaint_id, sealed) == "n-001"
    with pytest.raises(Unreadable):
        keys.open_reporter(uuid4(), sealed)
