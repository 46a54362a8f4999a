"""What each bus user may do follows from the code's declarations."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from kizuki.cli import main
from kizuki.permissions import (
    ADMINISTRATOR,
    AUDITOR,
    Permissions,
    bus_permissions,
    print_permissions,
    service_permissions,
)
from kizuki.processes import free_port
from kizuki.provision import KEY_USES
from kizuki.server_config import (
    channels_with_credentials,
    make_channel_credential,
    server_config,
    write_server_config,
    write_server_configs,
)
from shared.bus import (
    RECORD_STREAM,
    BusUser,
    Subscription,
    services_with_timers,
    timer_subscription,
)
from shared.channel_names import check_channel_name
from shared.contracts import SUBSCRIPTIONS
from shared.settings import SERVICES, load_settings

pytestmark = pytest.mark.unit


def test_every_service_has_a_user_and_only_provisioning_administers() -> None:
    users = bus_permissions(SUBSCRIPTIONS, KEY_USES)
    assert set(users) == {*SERVICES, AUDITOR, ADMINISTRATOR}
    assert [name for name, permissions in users.items() if permissions is None] == [ADMINISTRATOR]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_may_publish_only_its_own_subjects_and_use_only_its_own_consumers(service: str) -> None:
    permissions = service_permissions(service, SUBSCRIPTIONS[service])
    assert f"events.{service}.>" in permissions.publish
    sets_timers = f"timer.{service}.schedule.>" in permissions.publish
    assert sets_timers == (service in services_with_timers(SUBSCRIPTIONS[service]))
    for subscription in SUBSCRIPTIONS[service]:
        consumer = f"{subscription.stream}.{subscription.durable}"
        assert f"$JS.API.CONSUMER.MSG.NEXT.{consumer}" in permissions.publish
        assert f"$JS.ACK.{consumer}.>" in permissions.publish
        assert f"$JS.API.CONSUMER.INFO.{consumer}" in permissions.publish
    reads_timer_stream = f"$JS.API.STREAM.INFO.TIMERS_{service.upper()}" in permissions.publish
    assert reads_timer_stream == sets_timers
    others = [name for name in SERVICES if name != service]
    assert [s for s in permissions.publish if any(f".{other}" in s for other in others)] == []
    reads = ("$JS.API.STREAM.MSG.GET.", "$JS.API.CONSUMER.MSG.NEXT.", "$JS.API.CONSUMER.INFO.")
    own_timers = f"$JS.API.STREAM.INFO.TIMERS_{service.upper()}"
    assert [
        s
        for s in permissions.publish
        if s.startswith("$JS.API.") and not s.startswith(reads) and s != own_timers
    ] == []
    assert permissions.subscribe == (f"_INBOX.{service}.>",)


def test_a_new_consumer_or_service_is_granted_from_its_declaration_alone() -> None:
    declared = {
        "triage": [
            Subscription(RECORD_STREAM, "triage", ["events.intake.ComplaintReceived"]),
            timer_subscription("triage"),
        ]
    }
    triage = bus_permissions(declared, {})["triage"]
    assert triage is not None
    assert {
        "events.triage.>",
        "$JS.API.CONSUMER.MSG.NEXT.EVENTS.triage",
        "timer.triage.schedule.>",
        "$JS.API.CONSUMER.MSG.NEXT.TIMERS_TRIAGE.triage",
        "$JS.ACK.TIMERS_TRIAGE.triage.>",
        "$JS.API.CONSUMER.INFO.EVENTS.triage",
        "$JS.API.CONSUMER.INFO.TIMERS_TRIAGE.triage",
        "$JS.API.STREAM.INFO.TIMERS_TRIAGE",
    } <= set(triage.publish)


def test_the_auditor_may_read_the_record_and_nothing_else() -> None:
    auditor = bus_permissions(SUBSCRIPTIONS, KEY_USES)[AUDITOR]
    assert auditor is not None
    assert all(RECORD_STREAM in subject for subject in auditor.publish)
    assert not any(word in s for s in auditor.publish for word in ("DELETE", "PURGE", "UPDATE", "events."))


def test_the_configuration_names_each_user_by_public_key_with_its_permissions() -> None:
    users = bus_permissions({"intake": []}, {})
    config = server_config({name: (f"U{name.upper()}", permissions) for name, permissions in users.items()})
    assert '{nkey: "UADMIN"}' in config
    assert 'publish: {allow: ["events.intake.>", "$JS.API.STREAM.MSG.GET.EVENTS"' in config
    assert 'subscribe: {allow: ["_INBOX.auditor.>"]}' in config


def test_the_permissions_are_printed_for_a_cluster_as_json() -> None:
    out = io.StringIO()
    print_permissions(bus_permissions(SUBSCRIPTIONS, KEY_USES), out)
    printed = json.loads(out.getvalue())
    assert printed[ADMINISTRATOR] is None
    assert printed["intake"] == {
        "publish": [
            "events.intake.>",
            "$JS.API.STREAM.MSG.GET.EVENTS",
            # The channels' submissions: one read by its sequence when a set-aside one is taken up.
            "$JS.API.STREAM.MSG.GET.SUBMISSIONS",
            "$JS.API.CONSUMER.MSG.NEXT.SUBMISSIONS.intake",
            "$JS.API.CONSUMER.INFO.SUBMISSIONS.intake",
            "$JS.ACK.SUBMISSIONS.intake.>",
            "$JS.API.STREAM.INFO.KV_PATIENT_KEYS",
            "$JS.API.STREAM.MSG.GET.KV_PATIENT_KEYS",
            "$KV.PATIENT_KEYS.>",
            "$JS.API.STREAM.MSG.DELETE.KV_PATIENT_KEYS",
        ],
        "subscribe": ["_INBOX.intake.>"],
    }
    # Only intake may put or destroy a patient's key.
    for service in ("escalation", "notifier", "followup"):
        assert "$KV.PATIENT_KEYS.>" not in printed[service]["publish"]


def test_a_channel_may_publish_on_its_own_submission_subject_and_hear_only_its_own_answers() -> None:
    users = bus_permissions(SUBSCRIPTIONS, KEY_USES, ["call-centre", "kiosk-2"])
    assert users["channel-call-centre"] == Permissions(
        publish=("submissions.call-centre",), subscribe=("_INBOX.channel-call-centre.>",)
    )
    assert users["channel-kiosk-2"] == Permissions(
        publish=("submissions.kiosk-2",), subscribe=("_INBOX.channel-kiosk-2.>",)
    )
    # Never a service's inbox, whatever the channel is called.
    named_like_a_service = bus_permissions({}, {}, ["intake"])["channel-intake"]
    assert named_like_a_service is not None
    assert named_like_a_service.subscribe == ("_INBOX.channel-intake.>",)


@pytest.mark.parametrize("name", ["call-centre", "kiosk2", "a", "x" * 40])
def test_a_channel_name_is_one_lowercase_subject_token(name: str) -> None:
    check_channel_name(name)


@pytest.mark.parametrize(
    "name", ["", "Call-Centre", "call centre", "call.centre", "call-", "-call", "a--b", "*", ">", "x" * 41]
)
def test_anything_else_is_not_a_channel_name(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase letters, digits and single hyphens"):
        check_channel_name(name)


def test_the_channels_with_a_credential_are_the_servers_users(tmp_path: Path) -> None:
    settings = load_settings({"KIZUKI_DATA_DIR": str(tmp_path / "var")})
    assert settings.nats_credentials is not None
    user, made = make_channel_credential(settings, "call-centre")
    assert (user, made) == (
        BusUser("channel-call-centre", settings.nats_credentials / "channel-call-centre.nk"),
        True,
    )
    seed = user.seed_file.read_bytes()
    assert stat.S_IMODE(user.seed_file.stat().st_mode) == 0o600
    assert make_channel_credential(settings, "call-centre") == (user, False)  # kept, never made again
    assert user.seed_file.read_bytes() == seed
    assert channels_with_credentials(settings.nats_credentials) == ["call-centre"]
    config = write_server_config(settings).read_text()
    assert "# channel-call-centre" in config
    assert 'publish: {allow: ["submissions.call-centre"]}' in config
    with pytest.raises(ValueError, match="not 'Kiosk'"):
        make_channel_credential(settings, "Kiosk")


def test_credentials_live_with_the_embedded_server_or_where_the_environment_says() -> None:
    embedded = load_settings({"KIZUKI_DATA_DIR": "/tmp/k"})
    assert embedded.bus_user("intake") == BusUser("intake", Path("/tmp/k/nats/credentials/intake.nk"))
    assert load_settings({"NATS_URL": "nats://10.0.0.5:4222"}).bus_user("intake") is None
    given = load_settings({"NATS_URL": "nats://10.0.0.5:4222", "KIZUKI_NATS_CREDENTIALS": "/run/secrets"})
    assert given.bus_user("notifier") == BusUser("notifier", Path("/run/secrets/notifier.nk"))


def test_the_command_makes_a_credential_only_for_a_channel_the_policy_declares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIZUKI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KIZUKI_NATS_PORT", str(free_port()))  # no server there: it is taken in at the start
    for undeclared in ("kiosk", "Call-Centre"):
        with pytest.raises(SystemExit, match=f"the policy declares no channel '{undeclared}'"):
            main(["channel-credential", undeclared])
    main(["channel-credential", "call-centre"])
    assert "`kizuki run` takes it in when it starts" in capsys.readouterr().out
    main(["permissions"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["channel-call-centre"] == {
        "publish": ["submissions.call-centre"],
        "subscribe": ["_INBOX.channel-call-centre.>"],
    }


def test_each_node_of_a_cluster_has_the_same_users_and_routes_to_the_others(tmp_path: Path) -> None:
    settings = load_settings({"KIZUKI_DATA_DIR": str(tmp_path / "var"), "KIZUKI_NATS_CLUSTER": "3"})
    nodes = write_server_configs(settings)
    configs = [node.config.read_text() for node in nodes]
    password = (settings.nats_dir / "route-password").read_text()
    assert stat.S_IMODE((settings.nats_dir / "route-password").stat().st_mode) == 0o600
    for node, config in zip(nodes, configs, strict=True):
        assert stat.S_IMODE(node.config.stat().st_mode) == 0o600
        assert f'server_name: "{node.name}"' in config
        assert 'jetstream {sync_interval: "always"}' in config
        assert f'listen: "127.0.0.1:{node.route_port}"' in config
        routes = [f"nats://route:{password}@127.0.0.1:{other.route_port}" for other in nodes if other != node]
        assert f"routes = {json.dumps(routes)}" in config
        assert config.split("authorization {\n  users")[1] == configs[0].split("authorization {\n  users")[1]
    assert write_server_configs(settings) == nodes  # written again at every start, the password kept
    assert (settings.nats_dir / "route-password").read_text() == password
