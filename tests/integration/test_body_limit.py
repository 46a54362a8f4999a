"""The request body limit over a real socket, on intake's app served by a real uvicorn in a process of
its own: a chunked body (no Content-Length) is cut off at the limit and never taken into memory."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from kizuki.processes import free_port, stop, wait_for_port
from services.intake.channels import wechat_signature
from shared.service import MAX_BODY_BYTES
from shared.settings import Settings
from shared.timers import now
from tests.chunked import post_chunked, post_declaring
from tests.conftest import Headers
from tests.factories import AES_KEY

pytestmark = pytest.mark.integration

EIGHT_MIB = 8 * 1024 * 1024


# Every route that reads a body: FastAPI's JSON parsing, the form and the two webhooks (request.body()).
# WeChat's push is read only once its query is found signed (an unsigned one is 401 unread).
def paths() -> list[str]:
    stamp = str(int(now().timestamp()))
    signed = urlencode(
        {"signature": wechat_signature(WECHAT_TOKEN, stamp, "1"), "timestamp": stamp, "nonce": "1"}
    )
    return ["/v1/complaints", "/form", "/v1/channels/line", f"/v1/channels/wechat?{signed}", "/v1/imports"]


WECHAT_TOKEN = "kizuki-wechat"
# Taking an 8 MiB body in would raise the high-water mark by at least that much; streaming it past
# the limit costs a few buffers.
MEMORY_ALLOWED = 2 * 1024 * 1024

SERVE = """
import uvicorn
from services.intake.main import create_app
from shared.settings import load_settings

settings = load_settings()
uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.http_ports["intake"],
            lifespan="off", log_level="warning")
"""


def peak_memory(pid: int) -> int:
    """The process's resident high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def intake(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """Intake's app in uvicorn, without its bus work (lifespan off): (host, port, pid)."""
    port = free_port()
    env = {
        "KIZUKI_DATA_DIR": str(settings.data_dir),
        "KIZUKI_INTAKE_PORT": str(port),
        "KIZUKI_INTAKE_SMTP_PORT": str(free_port()),
        "PATH": "/usr/bin:/bin",
    }
    settings.line_channel_secret.write_bytes(b"8c570fa6dd201bb328f1c1eac23a96d8")
    settings.wechat_token.write_text(WECHAT_TOKEN)
    settings.wechat_aes_key.write_text(AES_KEY)
    with (tmp_path / "intake.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process)
        yield "127.0.0.1", port, process.pid
    finally:
        stop(process)


async def test_a_chunked_body_over_the_limit_is_refused_as_it_streams_and_never_taken_in(
    intake: tuple[str, int, int], signed_in: Headers
) -> None:
    host, port, pid = intake
    nurse = signed_in("n-001")
    as_json = {"Content-Type": "application/json"}
    complaint = {
        "channel": "phone",
        "occurred_at": "2026-11-23T09:30:00+09:00",
        "department": "Ward 3",
        "summary": "Waited three hours for pain medication.",
    }
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as http:
        assert (await http.post("/v1/complaints", json=complaint, headers=nurse)).status_code == 201
        before = peak_memory(pid)
        for path in paths():
            answer = await post_chunked(host, port, path, b"x" * EIGHT_MIB, nurse | as_json)
            assert answer.status == 413, (path, answer)
            limit = f"{MAX_BODY_BYTES:,} bytes"
            assert answer.json() == {
                "error": f"the request body is larger than {limit}, the most this service takes"
            }
        assert peak_memory(pid) - before < MEMORY_ALLOWED

        # A declared size over the limit is answered before anything is read.
        for path in paths():
            declared = await post_declaring(host, port, path, EIGHT_MIB)
            assert declared.status == 413, (path, declared)
        # An ordinary request still works, chunked or not.
        again = await http.post("/v1/complaints", json=complaint | {"summary": "Again."}, headers=nurse)
        assert again.status_code == 201
        body = json.dumps(complaint | {"summary": "Chunked."}).encode()
        chunked = await post_chunked(host, port, "/v1/complaints", body, nurse | as_json)
        assert chunked.status == 201
