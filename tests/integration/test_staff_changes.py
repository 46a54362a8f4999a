"""Staff changes take effect while the services run: the directory and the revoked tokens are read again
when their files change, and a token lives no longer than the system allows."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from services.intake.main import create_app
from shared.auth import AuthError, issue_token, token_id
from shared.directory import Directory, load_directory
from shared.revocations import revoke_staff_tokens, revoke_token
from shared.settings import Settings
from shared.timers import now
from tests.e2e.conftest import KIZUKI
from tests.polling import until

pytestmark = pytest.mark.integration

# Any path behind authentication: 404 (no such complaint) means the caller was let in.
BEHIND_SIGN_IN = "/v1/complaints/00000000-0000-0000-0000-000000000000"
HOURS_12 = timedelta(hours=12)


@pytest.fixture
def own_directory(settings: Settings, tmp_path: Path) -> Settings:
    """Settings whose staff directory is a copy this test may change."""
    copy = tmp_path / "directory.toml"
    shutil.copy(settings.directory_path, copy)
    return replace(settings, directory_path=copy)


def bearer(settings: Settings, staff_id: str, lifetime: timedelta = timedelta(hours=1)) -> dict[str, str]:
    token = issue_token(
        settings.token_signing_key, staff_id, load_directory(settings.directory_path), lifetime
    )
    return {"Authorization": f"Bearer {token}"}


def status_of(client: TestClient, headers: dict[str, str]) -> int:
    status: int = client.get(BEHIND_SIGN_IN, headers=headers).status_code
    return status


def without(directory: str, staff_id: str) -> str:
    """The directory's text with one member's table taken out (nobody else refers to n-002)."""
    head, _, rest = directory.partition(f"[staff.{staff_id}]")
    assert rest, f"{staff_id} is not in the sample directory"
    return head + rest[rest.index("\n[") + 1 :]


def test_a_person_taken_out_of_the_directory_is_refused_at_the_next_request(
    own_directory: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(own_directory))
    nurse = bearer(own_directory, "n-002")
    assert status_of(client, nurse) == 404
    text = own_directory.directory_path.read_text(encoding="utf-8")

    # A mistake in the new file is logged and refused; the directory in force stays.
    with caplog.at_level(logging.ERROR):
        own_directory.directory_path.write_text(text + "\nnot toml [", encoding="utf-8")
        until(
            lambda: status_of(client, nurse) == 404 and "cannot be used" in caplog.text,
            within=10,
            what="the invalid directory logged and n-002 still let in",
        )

    own_directory.directory_path.write_text(without(text, "n-002"), encoding="utf-8")
    until(lambda: status_of(client, nurse) == 401, within=10, what="n-002 refused")
    response = client.get(BEHIND_SIGN_IN, headers=nurse)
    assert response.json()["detail"] == "n-002 is no longer in the staff directory"
    assert status_of(client, bearer(own_directory, "n-001")) == 404  # everyone else is untouched


def test_a_revoked_token_is_refused_and_the_others_are_not(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    first, second = bearer(settings, "n-001"), bearer(settings, "n-001")
    supervisor = bearer(settings, "sv-003")
    assert status_of(client, first) == status_of(client, second) == status_of(client, supervisor) == 404

    revoke_token(settings.revoked_tokens_path, token_id(first["Authorization"][7:]), now(), HOURS_12)
    until(lambda: status_of(client, first) == 401, within=10, what="the revoked token refused")
    assert client.get(BEHIND_SIGN_IN, headers=first).json()["detail"] == "this token has been revoked"
    assert status_of(client, second) == 404

    revoke_staff_tokens(settings.revoked_tokens_path, "n-001", now(), HOURS_12)
    until(lambda: status_of(client, second) == 401, within=10, what="every token of n-001 refused")
    assert status_of(client, supervisor) == 404
    # A token issued after the revocation's second is good again.
    until(lambda: status_of(client, bearer(settings, "n-001")) == 404, within=10, what="a new token taken")


def test_the_token_command_revokes_by_id_and_by_person(settings: Settings) -> None:
    env = {
        "KIZUKI_DATA_DIR": str(settings.data_dir),
        "KIZUKI_DIRECTORY": str(settings.directory_path),
        "PATH": "/usr/bin:/bin",
    }
    issued = subprocess.run(
        [KIZUKI, "token", "n-001", "--hours", "1"], env=env, capture_output=True, text=True, check=True
    )
    jti = token_id(issued.stdout.strip())
    assert jti in issued.stderr  # shown, so that it can be revoked by it
    client = TestClient(create_app(settings))
    headers = {"Authorization": f"Bearer {issued.stdout.strip()}"}
    assert status_of(client, headers) == 404
    subprocess.run([KIZUKI, "token", "revoke", "--id", jti], env=env, check=True, capture_output=True)
    until(lambda: status_of(client, headers) == 401, within=10, what="the revoked token refused")

    too_long = subprocess.run(
        [KIZUKI, "token", "n-001", "--hours", "13"], env=env, capture_output=True, text=True
    )
    assert too_long.returncode != 0
    assert "12 h at most" in too_long.stderr
    nothing = subprocess.run([KIZUKI, "token", "revoke"], env=env, capture_output=True, text=True)
    assert nothing.returncode != 0
    assert "--id TOKEN_ID or --staff STAFF_ID" in nothing.stderr


def test_a_token_may_not_live_longer_than_the_system_allows(settings: Settings, directory: Directory) -> None:
    with pytest.raises(AuthError, match="12 h at most"):
        issue_token(settings.token_signing_key, "n-001", directory, timedelta(hours=13))
    # Signed with the real key (someone who held it, or an older version without the limit).
    forever = issue_token(
        settings.token_signing_key, "n-001", directory, timedelta(days=365), max_lifetime=timedelta.max
    )
    client = TestClient(create_app(settings))
    response = client.get(BEHIND_SIGN_IN, headers={"Authorization": f"Bearer {forever}"})
    assert response.status_code == 401
    assert "longer than the 12 h" in response.json()["detail"]
    # A lower maximum is a setting, enforced by the services on every token.
    strict = TestClient(create_app(replace(settings, token_max_lifetime=timedelta(minutes=30))))
    assert status_of(strict, bearer(settings, "n-001", timedelta(hours=1))) == 401
    assert status_of(strict, bearer(settings, "n-001", timedelta(minutes=30))) == 404


def test_a_token_without_an_id_is_refused(settings: Settings) -> None:
    """Every token can be revoked by its id, so one without an id is not taken."""
    key = settings.token_signing_key.read_bytes()
    issued = now()
    claims = {
        "sub": "n-001",
        "iss": "kizuki",
        "aud": "kizuki",
        "iat": issued,
        "exp": issued + timedelta(hours=1),
    }
    token = jwt.encode(claims, key, algorithm="EdDSA")
    client = TestClient(create_app(settings))
    assert status_of(client, {"Authorization": f"Bearer {token}"}) == 401


def test_the_services_check_tokens_without_the_signing_key(settings: Settings, tmp_path: Path) -> None:
    """The signing key lives apart from the secrets the services read, and no service needs or opens it:
    with it gone, every service that takes staff tokens starts and lets a valid token in."""
    from services.escalation.main import create_app as escalation
    from services.followup.main import create_app as followup

    assert settings.token_signing_key.parent != settings.token_verify_key.parent
    nurse, callback_staff = bearer(settings, "n-001"), bearer(settings, "cb-001")
    shutil.move(settings.token_signing_key.parent, tmp_path / "issuer-elsewhere")
    opened: list[str] = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
    unknown = "00000000-0000-0000-0000-000000000000"
    for create, path, headers in (
        (create_app, BEHIND_SIGN_IN, nurse),
        (escalation, f"/v1/cases/{unknown}", nurse),
        (followup, f"/v1/callbacks/{unknown}", callback_staff),
    ):
        assert TestClient(create(settings)).get(path, headers=headers).status_code == 404, path
    assert str(settings.token_verify_key) in opened
    assert [path for path in opened if "token-signing" in path or "token-issuer" in path] == []
