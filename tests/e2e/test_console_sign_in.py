"""The console's sign-in over HTTP: cookies, CSRF, attempts, and the content security policy."""

from __future__ import annotations

import re
from uuid import uuid4

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.test_console_browser import PASSWORD, set_password

pytestmark = pytest.mark.e2e


async def sign_in_form(console: httpx.AsyncClient) -> str:
    page = await console.get("/sign-in")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def sign_in(console: httpx.AsyncClient, staff_id: str, password: str = PASSWORD) -> httpx.Response:
    csrf = await sign_in_form(console)
    return await console.post("/sign-in", data={"staff_id": staff_id, "password": password, "csrf": csrf})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_sign_in_sets_a_strict_cookie_checks_forms_limits_attempts_and_signs_out(
    system: System,
) -> None:
    set_password(system, "sv-003")
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    async with httpx.AsyncClient(base_url=system.url("console", ""), headers=english, timeout=10) as console:
        first = await console.get("/")
        assert (first.status_code, first.headers["location"]) == (303, "/sign-in")
        page = await console.get("/sign-in")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]

        no_token = await console.post("/sign-in", data={"staff_id": "sv-003", "password": PASSWORD})
        assert no_token.status_code == 403
        wrong = await sign_in(console, "sv-003", "not the password")
        assert wrong.status_code == 401
        assert "The staff id or the password is wrong." in wrong.text

        signed_in = await sign_in(console, "sv-003")
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Secure" not in cookie  # served over plain HTTP here
        work = await console.get("/")
        assert work.status_code == 200

        # A form without its token is refused and carries nothing out.
        forged = await console.post("/sign-out", data={})
        assert forged.status_code == 403
        assert "このフォームは古くなっています" in forged.text  # sv-003 reads Japanese (the directory)
        action = await console.post(
            f"/cases/{uuid4()}/acknowledge", data={"duty": "supervisor_acknowledgement"}
        )
        assert action.status_code == 403
        assert (await console.get("/")).status_code == 200  # still signed in
        out = await console.post("/sign-out", data={"csrf": csrf_of(work)})
        assert out.status_code == 303
        assert (await console.get("/")).status_code == 303

        # Five wrong passwords for one staff id (one above), then even the right one waits.
        for _ in range(4):
            assert (await sign_in(console, "sv-003", "guess")).status_code == 401
        blocked = await sign_in(console, "sv-003")
        assert blocked.status_code == 429
        assert "Too many attempts" in blocked.text
