"""A change of the staff directory takes effect in the running services, without a restart."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import System, of, register, until_record
from tests.integration.test_staff_changes import without
from tests.polling import eventually

pytestmark = pytest.mark.e2e

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "directory.toml"


@pytest.fixture
async def system_with_own_directory(tmp_path: Path) -> AsyncIterator[System]:
    directory = tmp_path / "directory.toml"
    shutil.copy(SHIPPED, directory)
    running = System(tmp_path, env={"KIZUKI_DIRECTORY": str(directory)})
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


def dismiss_n002_and_give_ward_3_another_handler(path: Path) -> None:
    changed = without(path.read_text(encoding="utf-8"), "n-002")
    path.write_text(changed.replace('handler = "hd-003"', 'handler = "hd-010"'), encoding="utf-8")


async def first_response_owner(system: System, http: httpx.AsyncClient) -> str:
    complaint_id = await register(system, http)
    record = await until_record(
        system, "the case to open", lambda record: of(record, complaint_id, "DutyAssigned", "first_response")
    )
    [assigned] = of(record, complaint_id, "DutyAssigned", "first_response")
    return str(assigned["owner"])


async def test_a_new_handler_takes_new_cases_and_a_dismissed_person_is_refused_everywhere(
    system_with_own_directory: System, http: httpx.AsyncClient
) -> None:
    system = system_with_own_directory
    assert await first_response_owner(system, http) == "hd-003"  # Ward 3's handler in the sample
    n002 = system.signed_in("n-002")
    unknown = "00000000-0000-0000-0000-000000000000"
    behind_sign_in = [
        system.url("intake", f"/v1/complaints/{unknown}"),
        system.url("escalation", f"/v1/cases/{unknown}"),
    ]
    for url in behind_sign_in:
        assert (await http.get(url, headers=n002)).status_code == 404

    dismiss_n002_and_give_ward_3_another_handler(system.settings.directory_path)

    async def refused_everywhere() -> bool:
        answers = [(await http.get(url, headers=n002)).status_code for url in behind_sign_in]
        return answers == [401, 401]

    await eventually(refused_everywhere, within=10, what="n-002 refused by intake and escalation")
    # Escalation has read the new directory (the one its sign-in uses): new cases go to the new handler.
    assert await first_response_owner(system, http) == "hd-010"
