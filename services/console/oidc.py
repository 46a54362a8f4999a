"""Signing in with the hospital's OpenID Connect sign-on: the authorization code flow with PKCE.

The issuer's discovery document and keys (JWKS) are read from the issuer; the ID token is verified
(signature by one of its keys, issuer, audience, expiry, and the nonce this sign-in sent) before the
staff id in its configured claim opens a session, as a password would.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from shared.settings import OidcSettings

# Asymmetric only: a token signed with the client secret, or not at all, is never accepted.
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
PENDING_SECONDS = 600  # from leaving for the sign-on to coming back
LEEWAY_SECONDS = 60  # clocks of the two machines apart


class SignOnRefused(Exception):
    """The sign-on did not prove who this is; the message says why (logged, not shown)."""


@dataclass(frozen=True)
class Pending:
    nonce: str
    verifier: str
    started: float


def challenge_of(verifier: str) -> str:
    """PKCE's S256 challenge: the verifier's SHA-256, base64url without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class SignOn:
    settings: OidcSettings
    client: httpx.AsyncClient
    _pending: dict[str, Pending] = field(default_factory=dict)
    _discovery: dict[str, Any] | None = None
    _keys: dict[str, Any] = field(default_factory=dict)

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = await self._json("GET", url)
            if found.get("issuer") != self.settings.issuer:
                raise SignOnRefused(f"the discovery document names issuer {found.get('issuer')!r}")
            self._discovery = found
        return self._discovery

    async def start(self) -> tuple[str, str]:
        """Where to send the browser, and the state that must come back with it."""
        moment = time.monotonic()
        for old in [state for state, p in self._pending.items() if moment - p.started > PENDING_SECONDS]:
            del self._pending[old]
        state, pending = (
            secrets.token_urlsafe(32),
            Pending(secrets.token_urlsafe(32), secrets.token_urlsafe(48), moment),
        )
        self._pending[state] = pending
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_url,
            "scope": "openid",
            "state": state,
            "nonce": pending.nonce,
            "code_challenge": challenge_of(pending.verifier),
            "code_challenge_method": "S256",
        }
        return f"{(await self.discovery())['authorization_endpoint']}?{urlencode(query)}", state

    async def finish(self, state: str, code: str) -> str:
        """The staff id the sign-on vouches for, once its ID token is verified."""
        pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending.started > PENDING_SECONDS:
            raise SignOnRefused("no sign-in of this browser is waiting for that answer")
        provider = await self.discovery()
        try:
            secret = self.settings.client_secret_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SignOnRefused(f"the client secret cannot be read: {error}") from None
        tokens = await self._json(
            "POST",
            provider["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.settings.redirect_url,
                "code_verifier": pending.verifier,
            },
            auth=(self.settings.client_id, secret),
        )
        claims = await self.verified(str(tokens.get("id_token", "")), pending.nonce)
        staff_id = claims.get(self.settings.staff_claim)
        if not isinstance(staff_id, str) or not staff_id:
            raise SignOnRefused(f"the ID token has no {self.settings.staff_claim!r} claim")
        return staff_id

    async def verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self._key(str(header.get("kid", "")))
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[algorithm for algorithm in ALGORITHMS if algorithm == header.get("alg")],
                audience=self.settings.client_id,
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )
        except jwt.PyJWTError as error:
            raise SignOnRefused(f"the ID token does not verify: {error}") from None
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise SignOnRefused("the ID token's nonce is not this sign-in's")
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        """The issuer's key by id; its key set is read again once for an id not seen (keys rotate)."""
        if kid not in self._keys:
            keys = await self._json("GET", (await self.discovery())["jwks_uri"])
            self._keys = {str(k.get("kid", "")): k for k in keys.get("keys", []) if isinstance(k, dict)}
        if kid not in self._keys:
            raise SignOnRefused(f"the issuer has no key {kid!r}")
        return jwt.PyJWK(self._keys[kid])

    async def _json(self, method: str, url: str, **request: Any) -> dict[str, Any]:
        try:
            response = await self.client.request(method, url, **request)
        except httpx.TransportError as error:
            raise SignOnRefused(f"the sign-on at {url} is not answering: {error}") from None
        if not response.is_success:
            raise SignOnRefused(f"{url} answered {response.status_code}: {response.text[:200]}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise SignOnRefused(f"{url} did not answer a JSON object")
        return answer
