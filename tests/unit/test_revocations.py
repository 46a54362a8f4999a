"""Revoked tokens: by id, or every token of a person up to a second; what has expired anyway is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.revocations import load_revocations, revoke_staff_tokens, revoke_token

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 9, 0, 30, 500_000, tzinfo=UTC)
MAX = timedelta(hours=12)


def test_a_token_is_revoked_by_id_and_a_person_up_to_the_second(tmp_path: Path) -> None:
    path = tmp_path / "revoked.json"
    assert load_revocations(path).reason("t1", "n-001", int(NOW.timestamp())) is None  # no file: none
    revoke_token(path, "t1", NOW, MAX)
    revoke_staff_tokens(path, "sv-003", NOW, MAX)
    revocations = load_revocations(path)
    second = int(NOW.timestamp())
    assert revocations.reason("t1", "n-001", second) == "this token has been revoked"
    assert revocations.reason("t2", "n-001", second) is None
    assert revocations.reason("t2", "sv-003", second) is not None  # issued in that second: revoked too
    assert revocations.reason("t2", "sv-003", second + 1) is None  # issued after: good


def test_what_has_expired_anyway_is_dropped_when_the_file_is_written(tmp_path: Path) -> None:
    path = tmp_path / "revoked.json"
    revoke_token(path, "old", NOW, MAX)
    revoke_staff_tokens(path, "n-001", NOW, MAX)
    later = NOW + MAX + timedelta(seconds=1)
    revoke_token(path, "new", later, MAX)
    revocations = load_revocations(path)
    assert set(revocations.tokens) == {"new"}
    assert revocations.staff == {}


def test_a_file_that_is_not_a_revocation_list_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "revoked.json"
    path.write_text('{"tokens": "all"}', encoding="utf-8")
    with pytest.raises(ValueError, match="revoked tokens file"):
        load_revocations(path)
