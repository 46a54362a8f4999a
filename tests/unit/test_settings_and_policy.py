from pathlib import Path

import pytest

from kizuki.launcher import check_store_shape
from shared.policy import PolicyError, load_policy
from shared.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_defaults_match_the_readme() -> None:
    settings = load_settings({})
    assert settings.bus_url == "nats://127.0.0.1:4222"
    assert settings.embedded_nats
    assert settings.http_ports == {
        "intake": 8001, "escalation": 8002, "notifier": 8003, "followup": 8004, "console": 8005
    }  # fmt: skip
    assert settings.console_passwords == Path("var/secrets/console-passwords.json").resolve()
    assert settings.data_dir == Path("var").resolve()
    assert settings.store_env("intake")["SQLITE_DBNAME"].endswith("var/intake/store.sqlite")


def test_environment_overrides() -> None:
    settings = load_settings(
        {"KIZUKI_DATA_DIR": "/tmp/k", "KIZUKI_NATS_PORT": "4333", "KIZUKI_FOLLOWUP_PORT": "9004",
         "NATS_URL": "nats://10.0.0.5:4222"}
    )  # fmt: skip
    assert settings.data_dir == Path("/tmp/k")
    assert settings.http_ports["followup"] == 9004
    assert settings.bus_url == "nats://10.0.0.5:4222"
    assert not settings.embedded_nats


@pytest.mark.parametrize(("name", "value"), [("KIZUKI_INTAKE_PORT", "http"), ("KIZUKI_NATS_PORT", "70000")])
def test_a_bad_port_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_wechat_plaintext_mode_is_off_unless_asked_for() -> None:
    assert not load_settings({}).wechat_plaintext
    assert load_settings({"KIZUKI_WECHAT_PLAINTEXT": "yes"}).wechat_plaintext
    with pytest.raises(SettingsError, match="KIZUKI_WECHAT_PLAINTEXT must be 'yes' or 'no', not 'true'"):
        load_settings({"KIZUKI_WECHAT_PLAINTEXT": "true"})


def test_postgres_stores_get_a_schema_per_service() -> None:
    env = load_settings({"KIZUKI_STORE": "postgres"}).store_env("followup")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_SCHEMA"] == "followup"
    assert env["SINGLE_ROW_TRACKING"] == "n"


def test_the_postgres_password_is_read_from_the_file_named_or_else_from_the_environment(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "postgres-password"
    secret.write_text("s3cret in a file\n")
    given = {"KIZUKI_STORE": "postgres", "KIZUKI_POSTGRES_PASSWORD": "in the environment"}
    assert load_settings(given).store_env("intake")["POSTGRES_PASSWORD"] == "in the environment"
    from_file = load_settings(given | {"KIZUKI_POSTGRES_PASSWORD_FILE": str(secret)})
    assert from_file.postgres is not None
    assert from_file.postgres.password == "s3cret in a file"
    with pytest.raises(SettingsError, match=r"KIZUKI_POSTGRES_PASSWORD_FILE: cannot read .*missing"):
        load_settings(given | {"KIZUKI_POSTGRES_PASSWORD_FILE": str(tmp_path / "missing")})


def test_the_shipped_policy_loads() -> None:
    policy = load_policy(load_settings({}).policy_path)
    assert policy.version
    assert policy.followup.after_first_response_seconds == 86400  # a day
    assert policy.followup.after_closure_seconds == 7 * 86400


def test_a_broken_policy_file_is_refused_with_its_path(tmp_path: Path) -> None:
    broken = tmp_path / "policy.toml"
    broken.write_text('version = ""\n[intake]\ndefault_language = "fr"\n')
    with pytest.raises(PolicyError, match=str(broken)):
        load_policy(broken)
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "missing.toml")


def test_an_embedded_cluster_is_three_nodes_on_loopback_and_every_process_gets_all_three() -> None:
    settings = load_settings({"KIZUKI_DATA_DIR": "/tmp/k", "KIZUKI_NATS_CLUSTER": "3"})
    assert [(node.name, node.port, node.route_port) for node in settings.nats_nodes] == [
        ("kizuki-1", 4222, 6222), ("kizuki-2", 4223, 6223), ("kizuki-3", 4224, 6224)
    ]  # fmt: skip
    assert [node.store_dir for node in settings.nats_nodes] == [
        Path(f"/tmp/k/nats/node-{n}") for n in (1, 2, 3)
    ]
    assert settings.bus_servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"]
    assert settings.nats_replicas == 3
    single = load_settings({"KIZUKI_DATA_DIR": "/tmp/k"})
    assert [(node.name, node.store_dir) for node in single.nats_nodes] == [("kizuki", Path("/tmp/k/nats"))]
    assert single.nats_replicas == 1


def test_nats_url_may_name_several_servers_and_their_replicas() -> None:
    settings = load_settings(
        {"NATS_URL": "nats://n1:4222, nats://n2:4222,nats://n3:4222", "KIZUKI_NATS_REPLICAS": "3"}
    )
    assert settings.bus_servers == ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"]
    assert settings.nats_replicas == 3
    assert load_settings({"NATS_URL": "nats://n1:4222,nats://n2:4222"}).nats_replicas == 1  # unless told


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KIZUKI_NATS_CLUSTER": "2"}, "KIZUKI_NATS_CLUSTER must be 1 or 3"),
        (
            {"KIZUKI_NATS_CLUSTER": "3", "NATS_URL": "nats://n1:4222"},
            "with NATS_URL, set KIZUKI_NATS_REPLICAS",
        ),
        ({"KIZUKI_NATS_REPLICAS": "3"}, "more than the 1 embedded"),
        ({"NATS_URL": "nats://n1:4222", "KIZUKI_NATS_REPLICAS": "7"}, "between 1 and 5"),
        ({"NATS_URL": " , "}, "NATS_URL: no NATS server URL"),
        ({"KIZUKI_NATS_CLUSTER": "3", "KIZUKI_NATS_PORT": "65534"}, "no room for 3 nodes"),
    ],
)
def test_cluster_settings_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_a_cluster_is_not_started_over_a_single_servers_record_nor_the_other_way(tmp_path: Path) -> None:
    single = load_settings({"KIZUKI_DATA_DIR": str(tmp_path)})
    cluster = load_settings({"KIZUKI_DATA_DIR": str(tmp_path), "KIZUKI_NATS_CLUSTER": "3"})
    check_store_shape(single)
    check_store_shape(cluster)  # nothing kept yet: either may start
    (tmp_path / "nats" / "jetstream").mkdir(parents=True)
    check_store_shape(single)
    with pytest.raises(SettingsError, match="holds a single server's record"):
        check_store_shape(cluster)
    (tmp_path / "nats" / "jetstream").rmdir()
    (tmp_path / "nats" / "node-2" / "jetstream").mkdir(parents=True)
    check_store_shape(cluster)
    with pytest.raises(SettingsError, match="holds a cluster node's record"):
        check_store_shape(single)
