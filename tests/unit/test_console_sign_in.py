"""The console's sign-in rules: Argon2id hashes, idle expiry, limited attempts, complete catalogues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from services.console import analysis, labels, record_desk, signin, web
from services.console.i18n import LANGUAGES, translations
from services.console.sessions import Attempts, Sessions
from shared.directory import load_directory
from shared.passwords import PasswordError, check_password, set_password
from shared.settings import load_settings

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(load_settings({}).directory_path)
TEMPLATES = Path(signin.__file__).parent / "templates"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_password_is_kept_as_an_argon2id_hash_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "console-passwords.json"
    set_password(path, "n-001", "long enough secret", DIRECTORY)
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())["n-001"]
    assert stored.startswith("$argon2id$")
    assert "long enough secret" not in path.read_text()
    assert check_password(path, "n-001", "long enough secret")
    assert not check_password(path, "n-001", "long enough secreT")
    assert not check_password(path, "n-002", "long enough secret")  # no password set for n-002


def test_a_password_is_refused_for_someone_unknown_or_when_short(tmp_path: Path) -> None:
    with pytest.raises(PasswordError, match="not in the staff directory"):
        set_password(tmp_path / "p.json", "nobody", "long enough secret", DIRECTORY)
    with pytest.raises(PasswordError, match="at least 8"):
        set_password(tmp_path / "p.json", "n-001", "short", DIRECTORY)


def test_a_session_ends_after_the_idle_time_and_each_use_keeps_it_open() -> None:
    clock = Clock()
    sessions = Sessions(idle_seconds=60, clock=clock)
    session_id = sessions.start("n-001", "ja")
    clock.now += 59
    assert sessions.get(session_id) is not None  # used: the idle time starts again
    clock.now += 59
    assert sessions.get(session_id) is not None
    clock.now += 61
    assert sessions.get(session_id) is None
    assert sessions.get(None) is None
    sessions.start("n-002", "zh")  # a session never signed out is forgotten once idle
    clock.now += 61
    sessions.start("sv-003", "ja")
    assert len(sessions) == 1


def test_failed_sign_ins_are_limited_per_staff_id_and_per_client_within_the_window() -> None:
    clock = Clock()
    attempts = Attempts(allowed=3, window=60, clock=clock)
    for _ in range(3):
        assert not attempts.blocked("staff:n-001", "client:a")
        attempts.failed("staff:n-001", "client:a")
    assert attempts.blocked("staff:n-001", "client:b")  # another machine, the same person
    assert attempts.blocked("staff:sv-003", "client:a")  # the same machine, another person
    assert not attempts.blocked("staff:sv-003", "client:b")
    clock.now += 61
    assert not attempts.blocked("staff:n-001", "client:a")
    assert len(attempts) == 0  # nothing is kept of failures past the window


def test_every_string_of_the_pages_is_in_each_catalogue() -> None:
    wanted = {
        signin.WRONG,
        signin.TOO_MANY,
        signin.EXPIRED,
        signin.SIGN_ON_FAILED,
        web.STALE_FORM,
        *labels.ALL.values(),
        analysis.NOT_A_PERIOD,
        analysis.NOT_A_FORM,
        record_desk.NO_AUDITOR_CREDENTIAL_TO_ANALYSE,
        *analysis.PERIOD_LABELS.values(),
        *analysis.SECTIONS.values(),
        *analysis.TRENDS.values(),
        *analysis.ANSWERS.values(),
        *analysis.AFTERWARDS.values(),
    }
    for template in TEMPLATES.glob("*.html"):
        with template.open("rb") as source:
            wanted |= {
                message
                for _, _, message, _ in babel_extract(source, ["_"], [], {})
                if isinstance(message, str)
            }
    for language in LANGUAGES:
        catalogue = translations(language)
        missing = sorted(m for m in wanted if language != "en" and catalogue.gettext(m) == m)
        assert missing == [], f"{language} lacks {missing}"
