"""Replicas of intake on PostgreSQL stores: the complaints' keys and their traces for possible
duplicates in tables of intake's schema, where every replica finds them, erased there once for all."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from kizuki.processes import free_port
from services.intake.main import open_intake_store
from shared.key_table import KeyTable
from shared.lease import connection_kwargs
from shared.privacy import IntakeKeys, MasterKey
from shared.settings import PostgresSettings, Settings
from shared.timers import now
from tests.factories import another_patients, registration

pytestmark = pytest.mark.integration


@pytest.fixture
def on_postgres(settings: Settings, postgres_server: PostgresSettings) -> Settings:
    dbname = f"kizuki_keys_{free_port()}"
    with psycopg.connect(**connection_kwargs(postgres_server), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return replace(settings, store="postgres", postgres=replace(postgres_server, dbname=dbname))


def rows_holding(postgres: PostgresSettings, wrapped: bytes) -> int:
    with psycopg.connect(**connection_kwargs(postgres)) as connection:
        row = connection.execute("SELECT count(*) FROM intake.patient_keys WHERE wrapped = %s", (wrapped,))
        [(count,)] = row.fetchall()
        return int(count)


def test_a_replica_finds_the_key_another_made_and_an_erasure_on_one_reaches_both(
    on_postgres: Settings, tmp_path: Path
) -> None:
    assert on_postgres.postgres is not None
    # The second replica on another machine: a data directory of its own, the same secrets.
    elsewhere = replace(on_postgres, data_dir=tmp_path / "elsewhere")
    first, second = open_intake_store(on_postgres), open_intake_store(elsewhere)
    try:
        registration = another_patients(1)
        complaint_id, created = first.register(registration, "desk-1", now())
        assert created
        # The same request again, to the other replica: the same complaint, recognised by its
        # fingerprint, which is keyed with the complaint's data key (a new key would refuse it).
        assert second.register(registration, "desk-1", now()) == (complaint_id, False)
        wrapped = first.keys.wrapped(complaint_id)
        assert wrapped is not None
        assert second.keys.wrapped(complaint_id) == wrapped
        assert rows_holding(on_postgres.postgres, wrapped) == 1
        assert not (on_postgres.service_dir("intake") / "patient-keys").exists()  # no files beside

        assert second.erase(complaint_id, "dm-001", now()) is not None
        assert first.keys.wrapped(complaint_id) is None
        assert rows_holding(on_postgres.postgres, wrapped) == 0
        complaint = first.get_complaint(complaint_id)
        assert complaint is not None
        assert complaint.erased
    finally:
        first.close()
        second.close()


def test_the_key_files_of_an_earlier_version_move_into_the_table(on_postgres: Settings) -> None:
    assert on_postgres.postgres is not None
    directory = on_postgres.service_dir("intake") / "patient-keys"
    master = MasterKey(bytes(range(32)))
    complaint_id = uuid4()
    key = bytes(range(32))
    directory.mkdir(parents=True)
    (directory / str(complaint_id)).write_bytes(master.wrap(key))

    table = KeyTable(on_postgres.postgres, "intake")
    try:
        keys = IntakeKeys(table, master, reporter_key=bytes(32), files=directory)
        assert list(directory.iterdir()) == []  # shredded once in the table
        assert keys.data_key(complaint_id) == key
        assert list(table.complaints()) == [complaint_id]
        keys.destroy(complaint_id)
        assert keys.wrapped(complaint_id) is None
        keys.destroy(complaint_id)  # twice is harmless
    finally:
        table.close()


def test_a_replica_flags_a_duplicate_of_what_another_registered_until_it_is_erased(
    on_postgres: Settings, tmp_path: Path
) -> None:
    elsewhere = replace(on_postgres, data_dir=tmp_path / "elsewhere")
    first, second = open_intake_store(on_postgres), open_intake_store(elsewhere)
    try:
        original, _ = first.register(registration(), None, now())
        again, _ = second.register(registration(), None, now())
        flagged = second.get_complaint(again)
        assert flagged is not None
        assert flagged.possible_duplicate_of == original
        assert not (elsewhere.service_dir("intake") / "traces").exists()  # no files beside

        first.erase(original, "dm-001", now())
        second.erase(again, "dm-001", now())
        later, _ = first.register(registration(), None, now())
        unflagged = first.get_complaint(later)
        assert unflagged is not None
        assert unflagged.possible_duplicate_of is None  # an erased complaint matches nothing
    finally:
        first.close()
        second.close()
