"""`kizuki staff`: the directory a newcomer signs in from."""

from pathlib import Path

import pytest

from kizuki.cli import main

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "directory.toml"


def test_the_sample_hospital_is_listed_with_roles_department_line_and_language(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIZUKI_DIRECTORY", str(SAMPLE))
    main(["staff"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "name", "roles", "department", "line", "language"]
    rows = {line.split()[0]: line for line in lines[1:] if line}
    assert rows["n-001"].split() == ["n-001", "Tanaka", "Yui", "front_line", "Ward", "3",
                                     "sv-003", ">", "ex-002", ">", "ex-001", "ja"]  # fmt: skip
    assert "handler of Ward 3" in rows["hd-003"]
    assert "supervisor, administrator, duty manager" in rows["dm-001"]
    assert rows["ex-001"].split()[-2:] == ["-", "ja"]  # at the top: no line above
    assert rows["cb-002"].split()[-1] == "zh"
    assert lines[-1] == "sign in as one of them with `kizuki token <id>`"


def test_a_missing_directory_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIZUKI_DIRECTORY", str(tmp_path / "nowhere.toml"))
    with pytest.raises(SystemExit) as exit_status:
        main(["staff"])
    assert exit_status.value.code == f"kizuki: staff directory not found: {tmp_path / 'nowhere.toml'}"
