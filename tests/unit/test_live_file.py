"""A data file read again when it changes; a change that cannot be used leaves the content in force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.live_file import LiveFile

pytestmark = pytest.mark.unit


def load_number(path: Path) -> int:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, int):
        raise ValueError(f"{path} does not hold a number")
    return value


def test_a_change_is_read_and_a_bad_or_missing_file_keeps_what_was_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "number.json"
    path.write_text("1", encoding="utf-8")
    live = LiveFile(path, load_number, check_every=0)
    assert live.current == 1

    path.write_text("22", encoding="utf-8")
    assert live.current == 22
    path.write_text('"not a number"', encoding="utf-8")
    assert live.current == 22
    assert "cannot be used; the previous content stays in force" in caplog.text
    path.unlink()
    assert live.current == 22
    path.write_text("3", encoding="utf-8")
    assert live.current == 3


def test_the_file_is_looked_at_no_more_often_than_asked(tmp_path: Path) -> None:
    path = tmp_path / "number.json"
    path.write_text("1", encoding="utf-8")
    live = LiveFile(path, load_number, check_every=3600)
    path.write_text("2", encoding="utf-8")
    assert live.current == 1


def test_a_file_that_cannot_be_used_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "number.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="does not hold a number"):
        LiveFile(path, load_number)
