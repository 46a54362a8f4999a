"""`kizuki run --replicas`: what is asked for, where each replica listens, and a refusal with SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kizuki.cli import main
from kizuki.launcher import ReplicasRefused, check_replicas, replica_env, replica_name
from shared.settings import PostgresSettings, SettingsError, load_settings, parse_replicas


def test_replicas_are_read_from_service_equals_count_and_a_wrong_entry_says_what_is_expected() -> None:
    assert parse_replicas(["intake=2", "notifier=3"]) == {"intake": 2, "notifier": 3}
    assert load_settings({"KIZUKI_REPLICAS": "intake=2,console=1"}).replicas == {"intake": 2, "console": 1}
    with pytest.raises(SettingsError, match="names no service"):
        parse_replicas(["intkae=2"])
    with pytest.raises(SettingsError, match="positive whole number"):
        parse_replicas(["intake=0"])
    assert load_settings({}).lease_seconds == 5.0
    assert load_settings({"KIZUKI_LEASE_SECONDS": "2"}).lease_seconds == 2.0
    with pytest.raises(SettingsError, match="KIZUKI_LEASE_SECONDS must be a number of seconds between"):
        load_settings({"KIZUKI_LEASE_SECONDS": "0"})


def test_replicas_need_postgresql_and_each_listens_on_ports_of_its_own(tmp_path: Path) -> None:
    settings = replace(load_settings({"KIZUKI_DATA_DIR": str(tmp_path)}), replicas={"notifier": 2})
    with pytest.raises(ReplicasRefused, match="replicas of notifier need PostgreSQL"):
        check_replicas(settings)
    check_replicas(replace(settings, replicas={"notifier": 1}))  # one process: SQLite will do
    postgres = PostgresSettings("127.0.0.1", 5432, "kizuki", "", "kizuki")
    on_postgres = replace(settings, store="postgres", postgres=postgres)
    check_replicas(on_postgres)

    assert replica_env(on_postgres, {"A": "1"}, "intake", 0) == {"A": "1"}
    assert replica_env(on_postgres, {"A": "1"}, "intake", 2) == {
        "A": "1",
        "KIZUKI_INTAKE_PORT": "8201",
        "KIZUKI_INTAKE_SMTP_PORT": "8225",
    }
    assert replica_env(on_postgres, {}, "notifier", 1) == {"KIZUKI_NOTIFIER_PORT": "8103"}
    assert [replica_name("notifier", replica) for replica in range(3)] == [
        "notifier",
        "notifier-2",
        "notifier-3",
    ]


def test_kizuki_run_refuses_replicas_on_sqlite_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIZUKI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("KIZUKI_STORE", raising=False)
    with pytest.raises(SystemExit) as refused:
        main(["run", "--replicas", "intake=2"])
    assert "replicas of intake need PostgreSQL stores" in str(refused.value.code)
    assert "KIZUKI_STORE=postgres" in str(refused.value.code)
    assert not (tmp_path / "var" / "nats").exists()  # nothing was started
