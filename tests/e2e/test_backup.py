"""The drill: a day of complaints, a backup while the system runs, the machine lost, a restore into a
new data directory, and the same system again: same case views, callback lists and audit report, the
record verified, the timer that was pending fires, and new complaints flow."""

from __future__ import annotations

import asyncio
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from shared.settings import SERVICES
from shared.timers import now
from tests.e2e.conftest import FLOW_COUNTS, System, of, register, until_record, write_policy
from tests.e2e.test_stores import postgres_env
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.beside]

DAY = 12
# The apology call is due an hour after the complaint occurred: pending for the day's complaints, and
# for the last one due seconds after the backup, so that it is pending when the system goes down.
FIRST_RESPONSE_SECONDS = 3600
FIRES_AFTER_BACKUP = timedelta(seconds=45)  # time to read, back up, stop, restore and start again


async def views(system: System, http: httpx.AsyncClient, complaints: list[str]) -> dict[str, bytes]:
    """Every case view and callback list, byte for byte, and the audit report."""
    seen: dict[str, bytes] = {}
    for complaint_id in complaints:
        case = await http.get(
            system.url("escalation", f"/v1/cases/{complaint_id}"), headers=system.signed_in("n-001")
        )
        callbacks = await http.get(
            system.url("followup", f"/v1/complaints/{complaint_id}/callbacks"),
            headers=system.signed_in("n-001"),
        )
        assert case.status_code == callbacks.status_code == 200, (case.text, callbacks.text)
        seen[f"case {complaint_id}"] = case.content
        seen[f"callbacks {complaint_id}"] = callbacks.content
    report = await system.kizuki("audit", "report")
    assert report.returncode == 0, report.stderr
    seen["report"] = report.stdout.encode()
    return seen


def owner_only(backup: Path) -> list[str]:
    """Whatever in the backup someone other than its owner could read."""
    return [str(path) for path in [backup, *backup.rglob("*")] if stat.S_IMODE(path.stat().st_mode) & 0o077]


async def test_a_backup_taken_while_running_restores_the_same_system_on_a_new_machine(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    policy = write_policy(tmp_path / "policy.toml", duty_seconds={"first_response": FIRST_RESPONSE_SECONDS})
    (tmp_path / "before").mkdir()
    system = System(tmp_path / "before", policy, services=SERVICES)
    await system.start()
    pinned = shutil.copy(system.settings.trust_file, tmp_path / "pinned-trust.json")
    try:
        day = [await register(system, http, summary=f"Complaint {n} of the day.") for n in range(DAY)]
        await system.wait_for_flow(day)
        cases = [system.url("escalation", f"/v1/cases/{complaint_id}") for complaint_id in day]
        for case in cases[::2]:
            answer = await http.post(
                f"{case}/duties/supervisor_acknowledgement/acknowledge", headers=system.signed_in("sv-003")
            )
            assert answer.status_code == 200, answer.text
        for case in cases[::3]:
            answer = await http.post(
                f"{case}/first-response",
                json={"patient_reached": True, "notes": "Apologised."},
                headers=system.signed_in("hd-003"),
            )
            assert answer.status_code == 200, answer.text
        called = day[::3]
        await until_record(
            system,
            "the acknowledgements, and the callbacks scheduled and due",
            lambda record: (
                len([e for e in record if e.event_type == "AlertAcknowledged"]) >= len(cases[::2])
                and all(of(record, complaint_id, "CallbackDue") for complaint_id in called)
            ),
        )
        # The last complaint's apology call falls due just after the backup: a timer pending across it.
        due = now() + FIRES_AFTER_BACKUP
        pending = await register(
            system, http, occurred_at=(due - timedelta(seconds=FIRST_RESPONSE_SECONDS)).isoformat()
        )
        complaints = [*day, pending]
        await system.wait_for_flow(complaints)
        before = await views(system, http, complaints)

        backup = tmp_path / "backup"
        taken = await system.kizuki("backup", str(backup))
        assert taken.returncode == 0, taken.stderr
    finally:
        await system.stop()
    assert owner_only(backup) == []
    # The auditor checks the backup's record offline, against the trust file they pinned.
    offline = await system.kizuki(
        "audit", "verify", "--bundle", str(backup / "record.jsonl"), "--trust", str(pinned)
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert (backup / "files" / "secrets" / "master.key").is_file()
    shutil.rmtree(system.settings.data_dir)

    (tmp_path / "after").mkdir()
    restored = System(tmp_path / "after", policy, services=SERVICES)

    # A backup whose file was changed is refused, naming the file, and nothing is restored.
    altered = tmp_path / "altered"
    shutil.copytree(backup, altered)
    with (altered / "files" / "secrets" / "master.key").open("r+b") as key:
        first = key.read(1)
        key.seek(0)
        key.write(bytes([first[0] ^ 0xFF]))  # changed whatever it was (a byte written over may be the same)
    refused = await restored.kizuki("restore", str(altered))
    assert refused.returncode != 0
    assert "changed: files/secrets/master.key" in refused.stderr, refused.stderr
    assert not restored.settings.data_dir.exists()

    done = await restored.kizuki("restore", str(backup))
    assert done.returncode == 0, done.stderr
    again = await restored.kizuki("restore", str(backup))
    assert again.returncode != 0
    assert "--force" in again.stderr, again.stderr

    await restored.start()
    try:
        started = now()
        assert await views(restored, http, complaints) == before
        verified = await restored.kizuki("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # The timer pending at the backup fires in the restored system.
        record = await until_record(
            restored,
            "the apology call's deadline, pending at the backup, to pass",
            lambda record: of(record, pending, "DeadlinePassed", "first_response"),
            within=60,
        )
        (passed,) = of(record, pending, "DeadlinePassed", "first_response")
        assert datetime.fromisoformat(passed["recorded_at"]) >= started
        new = await register(restored, http, summary="The first complaint after the restore.")
        await restored.wait_for_flow([new])
    finally:
        await restored.stop()
    # Told to, a restore moves the data directory that is there aside, and restores all the same.
    forced = await restored.kizuki("restore", "--force", str(backup))
    assert forced.returncode == 0, forced.stderr
    assert [path.name for path in (tmp_path / "after").glob("var.before-restore-*")], forced.stdout
    assert (restored.settings.data_dir / "intake" / "store.sqlite").is_file()


# Enough to have events in flight while the backup is taken, few enough to flow soon on two cores.
MOST_DURING = 40
# What the services do exactly once per complaint whatever happens (deliveries to the outside may be
# tried again after a crash, and so after a restore, which is one).
EXACTLY_ONCE = (
    "ComplaintReceived",
    "EscalationStarted",
    "DutyAssigned",
    "ComplainantAcknowledged",
)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_backup_taken_under_load_restores_every_complaint_it_holds_to_its_whole_flow_once(
    tmp_path: Path, http: httpx.AsyncClient, request: pytest.FixtureRequest, store: str
) -> None:
    def stores() -> dict[str, str]:
        """The stores' settings; for PostgreSQL, a new database each time: a new machine's."""
        return postgres_env(request) if store == "postgres" else {}

    (tmp_path / "before").mkdir()
    policy = write_policy(tmp_path / "policy.toml")
    system = System(tmp_path / "before", policy, stores(), SERVICES)
    await system.start()
    backup = tmp_path / "backup"
    posting = asyncio.Event()
    during: list[str] = []

    async def keep_posting() -> None:
        while not posting.is_set() and len(during) < MOST_DURING:
            during.append(
                await register(system, http, summary=f"Registered during the backup ({len(during)}).")
            )

    try:
        registered_before = [await register(system, http) for _ in range(3)]
        load = asyncio.create_task(keep_posting())

        async def some_posted() -> bool:
            return len(during) >= 3

        await eventually(some_posted, what="complaints posted while the system runs")
        taken = await system.kizuki("backup", str(backup))
        posting.set()
        await load
        assert taken.returncode == 0, taken.stderr
        # The system went on after the backup: its consumers were resumed.
        await system.wait_for_flow(registered_before + during)
    finally:
        await system.stop()
    shutil.rmtree(system.settings.data_dir)

    (tmp_path / "after").mkdir()
    restored = System(tmp_path / "after", policy, stores(), SERVICES)
    done = await restored.kizuki("restore", str(backup))
    assert done.returncode == 0, done.stderr
    await restored.start()
    try:
        # Every complaint on the record copy, and every one intake had stored when the backup copied its
        # store (published then or not: it publishes the rest now), goes through its whole flow, once.
        on_record = {entry.complaint_id for entry in await restored.record() if entry.complaint_id}
        complaints = sorted(on_record | set(registered_before))
        record = await restored.wait_for_flow(complaints)
        for complaint_id in complaints:
            for kind in EXACTLY_ONCE:
                assert len(of(record, complaint_id, kind)) == FLOW_COUNTS[kind], (complaint_id, kind)
        verified = await restored.kizuki("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # New events follow the store's own, none taken for published already: a store behind its
        # record copy would reuse the numbers of events it lost, and its relay would skip them.
        new = [await register(restored, http, summary=f"After the restore ({n}).") for n in range(3)]
        await restored.wait_for_flow(new)
    finally:
        await restored.stop()
