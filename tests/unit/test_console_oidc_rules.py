"""The sign-on's pure parts: PKCE's challenge as RFC 7636 gives it, and its settings. Pure."""

from __future__ import annotations

import pytest

from services.console.oidc import challenge_of
from shared.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_the_pkce_challenge_is_rfc_7636s_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636, appendix B
    assert challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_sign_on_is_off_unless_its_issuer_is_set_and_then_needs_its_client() -> None:
    assert load_settings({}).console_oidc is None
    with pytest.raises(SettingsError, match="KIZUKI_CONSOLE_OIDC_CLIENT_ID"):
        load_settings({"KIZUKI_CONSOLE_OIDC_ISSUER": "https://sso.example"})
    settings = load_settings(
        {
            "KIZUKI_CONSOLE_OIDC_ISSUER": "https://sso.example",
            "KIZUKI_CONSOLE_OIDC_CLIENT_ID": "kizuki",
            "KIZUKI_CONSOLE_OIDC_REDIRECT_URL": "https://kizuki.example/sign-in/oidc/callback",
        }
    ).console_oidc
    assert settings is not None
    assert settings.staff_claim == "staff_id"
    assert settings.client_secret_file.name == "console-oidc-client-secret"
