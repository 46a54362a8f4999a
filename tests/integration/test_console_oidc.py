"""Signing in to the console with the hospital's OpenID Connect sign-on, against a real provider on
loopback (tests/oidc_provider.py): the code flow with PKCE opens a session for the staff id its ID
token carries, and a token that does not verify (signature, issuer, audience, expiry, nonce), an
answer for another browser or a staff id the directory does not know opens none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from kizuki.provision import provision_secrets
from services.console.main import create_app
from shared.settings import load_settings
from tests.oidc_provider import Fault, Provider, running_provider

pytestmark = pytest.mark.integration

CONSOLE = "http://127.0.0.1:8005"
CLIENT_ID, CLIENT_SECRET = "kizuki-console", "a client secret"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider(CLIENT_ID, CLIENT_SECRET, f"{CONSOLE}/sign-in/oidc/callback") as running:
        yield running


@pytest.fixture
def console_app(tmp_path: Path, provider: Provider) -> FastAPI:
    """The console's own app, served in the test (its consumer is not started: no bus needed here)."""
    secret = tmp_path / "oidc-client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    settings = load_settings(
        {
            "KIZUKI_DATA_DIR": str(tmp_path / "var"),
            "KIZUKI_CONSOLE_OIDC_ISSUER": provider.issuer,
            "KIZUKI_CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
            "KIZUKI_CONSOLE_OIDC_CLIENT_SECRET_FILE": str(secret),
            "KIZUKI_CONSOLE_OIDC_REDIRECT_URL": f"{CONSOLE}/sign-in/oidc/callback",
        }
    )
    provision_secrets(settings)
    return create_app(settings)


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The way to the provider, as a browser follows the console's redirect."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def console_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)


async def sign_on(
    console: httpx.AsyncClient, browser: httpx.AsyncClient, provider: Provider
) -> httpx.Response:
    """From the sign-in page's link to the console's answer to the provider's redirect back."""
    page = await console.get("/sign-in")
    assert 'href="/sign-in/oidc"' in page.text
    leaving = await console.get("/sign-in/oidc")
    assert leaving.status_code == 303, leaving.text
    authorize = leaving.headers["location"]
    assert authorize.startswith(f"{provider.issuer}/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert (query["code_challenge_method"], query["scope"]) == (["S256"], ["openid"])
    back = await browser.get(authorize)
    assert back.status_code == 303, back.text
    return await console.get(back.headers["location"])


async def test_the_sign_on_opens_a_session_for_the_staff_id_in_the_verified_id_token(
    console_app: FastAPI, browser: httpx.AsyncClient, provider: Provider
) -> None:
    async with console_of(console_app) as console:
        assert (await console.get("/")).status_code == 303  # no session yet
        signed_in = await sign_on(console, browser, provider)
        assert signed_in.status_code == 200, signed_in.text
        assert 'http-equiv="refresh"' in signed_in.text
        work = await console.get("/")
        assert work.status_code == 200
        assert "(sv-003)" in work.text


@pytest.mark.parametrize("fault", ["signature", "issuer", "audience", "expired", "nonce"])
async def test_an_id_token_that_does_not_verify_opens_no_session(
    console_app: FastAPI, browser: httpx.AsyncClient, provider: Provider, fault: Fault
) -> None:
    provider.fault = fault
    async with console_of(console_app) as console:
        refused = await sign_on(console, browser, provider)
        assert refused.status_code == 401, refused.text
        assert 'class="refusal"' in refused.text
        assert (await console.get("/")).status_code == 303


async def test_an_answer_for_another_browser_or_an_unknown_staff_id_opens_no_session(
    console_app: FastAPI, browser: httpx.AsyncClient, provider: Provider
) -> None:
    async with console_of(console_app) as console, console_of(console_app) as another:
        leaving = await console.get("/sign-in/oidc")
        back = await browser.get(leaving.headers["location"])
        stolen = await another.get(back.headers["location"])  # without the state cookie of the first
        assert stolen.status_code == 401
        assert (await another.get("/")).status_code == 303
    provider.staff_id = "nobody"
    async with console_of(console_app) as console:
        assert (await sign_on(console, browser, provider)).status_code == 401
        assert (await console.get("/")).status_code == 303
