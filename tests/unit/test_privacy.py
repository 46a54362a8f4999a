"""Sealing patient data with a key of its own complaint, and what destroying the key does."""

from __future__ import annotations

import stat
from pathlib import Path
from uuid import uuid4

import pytest

from shared.key_table import SQLiteKeyTable
from shared.privacy import (
    IntakeKeys,
    MasterKey,
    PatientData,
    Unreadable,
    seal_patient_data,
    unseal_patient_data,
)
from tests.at_rest import store_files, store_holds

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


def test_a_data_key_is_made_once_kept_wrapped_and_destroyed_for_good(tmp_path: Path) -> None:
    master = MasterKey(bytes(range(32)))
    store = tmp_path / "store.sqlite"
    table = SQLiteKeyTable(store)
    keys = IntakeKeys(table, master, reporter_key=bytes(32))
    complaint_id = uuid4()
    key = keys.data_key(complaint_id)
    assert keys.data_key(complaint_id) == key  # a retried registration seals with the same key
    wrapped = keys.wrapped(complaint_id)
    assert wrapped is not None
    assert key not in wrapped  # wrapped, never in clear
    assert store_holds(tmp_path, wrapped)
    assert [stat.S_IMODE(path.stat().st_mode) for path in store_files(tmp_path)] == [0o600] * 3
    with pytest.raises(Unreadable):
        MasterKey(bytes(32)).unwrap(wrapped)
    # Committed when made, synced with its complaint's commit: intake started again (another
    # connection) finds the same key, and every later write of the table is synced at once again.
    assert table._connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    again = SQLiteKeyTable(store)
    assert again.get(complaint_id) == wrapped
    again.close()

    keys.destroy(complaint_id)
    assert keys.wrapped(complaint_id) is None
    assert not store_holds(tmp_path, wrapped)  # not in the file, not in its write-ahead log
    keys.destroy(complaint_id)  # twice is harmless
    keys.table.close()


def test_the_key_files_of_an_earlier_version_move_into_the_table(tmp_path: Path) -> None:
    master = MasterKey(bytes(range(32)))
    files, complaint_id = tmp_path / "patient-keys", uuid4()
    files.mkdir()
    wrapped = master.wrap(bytes(range(32)))
    (files / str(complaint_id)).write_bytes(wrapped)
    (files / "notes.txt").write_bytes(b"not a key")
    table = SQLiteKeyTable(tmp_path / "store.sqlite")
    keys = IntakeKeys(table, master, reporter_key=bytes(32), files=files)
    assert [path.name for path in files.iterdir()] == ["notes.txt"]  # each key shredded once in the table
    assert keys.data_key(complaint_id) == bytes(range(32))
    assert list(table.complaints()) == [complaint_id]
    table.close()


def test_a_sealed_reporter_opens_only_for_its_complaint(tmp_path: Path) -> None:
    table = SQLiteKeyTable(tmp_path / "store.sqlite")
    keys = IntakeKeys(table, MasterKey(bytes(32)), reporter_key=bytes(range(32)))
    complaint_id = uuid4()
    sealed = keys.seal_reporter(complaint_id, "n-001")
    assert keys.open_reporter(complaint_id, sealed) == "n-001"
    with pytest.raises(Unreadable):
        keys.open_reporter(uuid4(), sealed)
