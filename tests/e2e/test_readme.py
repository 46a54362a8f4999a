"""The README's main flow and follow-up section, run from the README itself against `kizuki run`.

The blocks to run are the README's fenced ``sh try=<step>`` blocks, in order, in one bash session
whose working directory holds `.venv` (this test's) and `var/` (the system's data directory), as a
clone's does. The only change to the text is the port of each service and of the NATS server: the
system listens on free ports, the README names the defaults. Between steps the test waits for what
a person's pause gives: the effects of the last step on the record.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from shared.reference import reference_of
from tests.e2e.conftest import FLOW_COUNTS, KIZUKI, system_env
from tests.e2e.test_run_command import Launcher
from tests.polling import until

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
STEP = re.compile(r"^```sh try=(?P<name>[\w-]+)\n(?P<commands>.*?)^```$", re.MULTILINE | re.DOTALL)
DEFAULT_PORTS = {"intake": 8001, "escalation": 8002, "notifier": 8003, "followup": 8004}
DONE = "::step-done::"


def readme_steps(env: dict[str, str]) -> dict[str, str]:
    """The README's steps, by name, with the system's ports for the default ones."""
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    for service, port in DEFAULT_PORTS.items():
        text = text.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{env[f'KIZUKI_{service.upper()}_PORT']}/")
    text = text.replace("nats://127.0.0.1:4222", f"nats://127.0.0.1:{env['KIZUKI_NATS_PORT']}")
    return {match["name"]: match["commands"] for match in STEP.finditer(text)}


class Shell:
    """One bash session, as a person's terminal: variables set by a step stay for the next."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=directory, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send("set -eo pipefail\n")  # a command that fails ends the session: the step is not done

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def run(self, name: str, commands: str) -> str:
        """What the step printed; it fails the test when a command of it fails."""
        self._send(f"{commands}\nprintf '\\n%s\\n' '{DONE}'\n")
        printed: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=120)
            except queue.Empty:
                raise AssertionError(f"step {name} did not finish:\n{''.join(printed)}") from None
            if line is None:
                raise AssertionError(f"step {name} failed:\n{commands}\nit printed:\n{''.join(printed)}")
            if line.strip() == DONE:
                return "".join(printed)
            printed.append(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def documents(printed: str) -> list[Any]:
    """Each JSON document in what a step printed (curl ends none with a newline)."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (start := _next_document(printed, position)) >= 0:
        try:
            document, position = decoder.raw_decode(printed, start)
        except ValueError:
            position = start + 1
            continue
        found.append(document)
    return found


def _next_document(text: str, position: int) -> int:
    starts = [index for index in (text.find("{", position), text.find("[", position)) if index >= 0]
    return min(starts, default=-1)


def record_of(env: dict[str, str], complaint_id: str) -> list[dict[str, Any]]:
    output = subprocess.run(
        [KIZUKI, "audit", "replay", "--json", "--complaint", complaint_id],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [json.loads(line) for line in output.splitlines()]


def wait_for(env: dict[str, str], complaint_id: str, wanted: Counter[str], what: str) -> list[dict[str, Any]]:
    def there() -> list[dict[str, Any]]:
        record = record_of(env, complaint_id)
        return record if Counter(entry["event_type"] for entry in record) >= wanted else []

    return until(there, within=60, what=what)


def events(record: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [entry["event"] for entry in record if entry["event_type"] == kind]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A working directory as a user's clone has it, with this test's virtual environment."""
    directory = tmp_path / "kizuki"
    directory.mkdir()
    (directory / ".venv").symlink_to(Path(sys.prefix))
    return directory


def test_the_readmes_main_flow_and_follow_up_work_as_pasted(clone: Path) -> None:
    env = system_env(clone / "var", REPOSITORY / "deploy" / "policy.toml")
    steps = readme_steps(env)
    assert list(steps) == ["register", "read", "act", "callbacks", "channel", "work-list"]
    system = Launcher(env)
    shell = Shell(clone, env)
    try:
        system.wait_ready()

        [created] = documents(shell.run("register", steps["register"]))
        complaint_id = created["complaint_id"]
        assert created["reference"] == reference_of(UUID(complaint_id))
        reference = created["reference"]
        record = wait_for(env, complaint_id, FLOW_COUNTS, "the whole flow of the README's complaint")
        # Times relative to now: no duty is late on arrival, whatever the date.
        assert [duty["late_on_arrival"] for duty in events(record, "DutyAssigned")] == [False] * 5

        printed = shell.run("read", steps["read"])
        assert f"Case {reference}  (complaint {complaint_id}" in printed
        case, receipt = documents(printed)[:2]
        assert (case["reference"], len(case["duties"])) == (reference, 5)
        assert receipt["to"] == "sato@example.org"
        assert reference in receipt["text"]
        assert f"complaint {complaint_id}" in printed  # audit replay

        acknowledged, responded = documents(shell.run("act", steps["act"]))
        statuses = {duty["duty"]: duty["status"] for duty in acknowledged["duties"]}
        assert statuses["supervisor_acknowledgement"] == "done"
        statuses = {duty["duty"]: duty["status"] for duty in responded["duties"]}
        assert statuses["first_response"] == "done"
        record = wait_for(
            env, complaint_id, Counter({"CallbackScheduled": 1}), "the callback after the apology call"
        )
        [call] = events(record, "FirstResponseRecorded")
        assert (call["by"], call["patient_reached"], call["within_window"]) == ("hd-003", True, True)

        printed = shell.run("callbacks", steps["callbacks"])
        [callbacks] = documents(printed)
        [callback] = callbacks
        assert (callback["complaint_id"], callback["purpose"]) == (complaint_id, "after_first_response")
        assert callback["status"] == "scheduled"
        assert re.search(r"first_response +hd-003 +due .* done on time", printed)
        assert re.search(rf"after_first_response +{callback['assignee']} +due", printed)

        printed = shell.run("channel", steps["channel"])
        assert "the running nats-server lets call-centre in: it may publish now" in printed
        assert re.search(r"SUBMISSIONS #1 taken\nSUBMISSIONS #1 duplicate: taken already", printed), printed

        def submitted() -> list[dict[str, Any]]:
            replayed = subprocess.run(
                [KIZUKI, "audit", "replay", "--json"], env=env, capture_output=True, text=True, check=True
            ).stdout
            entries = [json.loads(line) for line in replayed.splitlines()]
            return [
                entry["event"]
                for entry in entries
                if entry["event_type"] == "ComplaintReceived" and entry["event"]["channel"] == "phone"
            ]

        [received] = until(submitted, within=60, what="the call centre's submission on the record")
        assert (received["heard_by"], received["department"]) == ("n-002", "Outpatients")

        [work_list] = documents(shell.run("work-list", steps["work-list"]))
        assert callback["callback_id"] in [listed["callback_id"] for listed in work_list]
    finally:
        shell.close()
        assert system.stop(signal.SIGTERM) == 0
