"""The auditor's desk says what it cannot do: without the auditor's bus credential it reads no whole
record (and says so, for a verification and for the analysis), and without a trust file it verifies
nothing. Pure: nothing is connected."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.console.record_desk import (
    NO_AUDITOR_CREDENTIAL,
    NO_AUDITOR_CREDENTIAL_TO_ANALYSE,
    NO_TRUST_FILE,
    DeskUnavailable,
    RecordDesk,
)
from shared.policy import load_policy
from shared.settings import load_settings

pytestmark = pytest.mark.unit


def desk_in(tmp_path: Path) -> RecordDesk:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "console.nk").write_text("SU…")
    return RecordDesk(
        load_settings({"KIZUKI_DATA_DIR": str(tmp_path), "KIZUKI_NATS_CREDENTIALS": str(credentials)})
    )


async def test_without_the_auditors_credential_the_desk_says_it_cannot_read_the_whole_record(
    tmp_path: Path,
) -> None:
    desk = desk_in(tmp_path)
    assert not desk.reads_the_whole_record
    with pytest.raises(DeskUnavailable) as refused:
        await desk.verify("au-001")
    assert str(refused.value) == NO_AUDITOR_CREDENTIAL
    assert desk.last is None
    with pytest.raises(DeskUnavailable) as refused:
        await desk.analysis(load_policy(desk.settings.policy_path), "month")
    assert str(refused.value) == NO_AUDITOR_CREDENTIAL_TO_ANALYSE


async def test_with_the_credential_but_no_trust_file_it_says_how_to_get_one(tmp_path: Path) -> None:
    desk = desk_in(tmp_path)
    (tmp_path / "credentials" / "auditor.nk").write_text("SU…")
    assert desk.reads_the_whole_record
    with pytest.raises(DeskUnavailable) as refused:
        await desk.export()
    assert str(refused.value) == NO_TRUST_FILE
