"""The record of the running system proves itself: `kizuki audit verify` and `prove` as commands."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from kizuki.processes import stop
from tests.e2e.conftest import System, complaint

pytestmark = pytest.mark.e2e


async def test_the_record_verifies_across_a_crash_exports_reports_and_proves_one_complaint_offline(
    system: System, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    complaints, nurse = system.url("intake", "/v1/complaints"), system.signed_in("n-001")
    first = (await http.post(complaints, json=complaint(), headers=nurse)).json()["complaint_id"]
    await system.wait_for_flow([first])
    # Right after the flow, the last links of each chain may await their checkpoint: not a failure.
    live = await system.kizuki("audit", "verify")
    assert live.returncode == 0, live.stdout + live.stderr
    assert live.stdout.splitlines()[-1].startswith("verified: ")
    system.kill("escalation")  # no checkpoint on the way down: the restarted relay goes on from the record
    await system.restart("escalation")
    second = (await http.post(complaints, json=complaint(), headers=nurse)).json()["complaint_id"]
    await system.wait_for_flow([second])
    for process in system.services.values():
        stop(process)  # a clean shutdown: each service signs its chain's head

    verified = await system.kizuki("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[-1].startswith("verified: ")
    assert "3 chains" in verified.stdout  # followup has nothing to record before an apology call

    exported = tmp_path / "record.jsonl"
    assert (await system.kizuki("audit", "export", str(exported))).returncode == 0
    from_bundle = await system.kizuki("audit", "verify", "--bundle", str(exported))
    assert from_bundle.stdout.splitlines()[-1] == verified.stdout.splitlines()[-1]
    report = await system.kizuki("audit", "report", "--json")
    assert [row["complaint_id"] for row in json.loads(report.stdout)["complaints"]] == [first, second]
    assert (
        await system.kizuki("audit", "report", "--json", "--bundle", str(exported))
    ).stdout == report.stdout

    proof = tmp_path / "proof.jsonl"
    proved = await system.kizuki("audit", "prove", first, str(proof))
    assert proved.returncode == 0, proved.stderr
    assert second not in proof.read_text(encoding="utf-8")  # other complaints' links by hash only
    trust = str(system.settings.trust_file)
    offline = await system.kizuki("audit", "verify", "--bundle", str(proof), "--trust", trust)
    assert offline.returncode == 0, offline.stdout + offline.stderr

    lines = proof.read_text(encoding="utf-8").splitlines()
    tampered = next(i for i, line in enumerate(lines) if '"ComplaintReceived"' in line)
    line = json.loads(lines[tampered])
    line["data"] = base64.b64encode(base64.b64decode(line["data"]).replace(b"Ward 3", b"Ward 4")).decode()
    lines[tampered] = json.dumps(line)
    proof.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = await system.kizuki("audit", "verify", "--bundle", str(proof), "--trust", trust)
    assert refused.returncode == 1
    assert f"seq {line['seq']}: changed" in refused.stdout
