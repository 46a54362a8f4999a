"""A tiny real OpenID Connect provider for tests, served by uvicorn on loopback: discovery, JWKS, an
authorization endpoint that signs in whoever the test says (no login page) and a token endpoint that
checks the client's secret and the PKCE verifier and issues an RS256 ID token. ``fault`` makes it
issue a token the relying party must refuse."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from kizuki.processes import free_port
from tests.polling import until

Fault = Literal["", "nonce", "audience", "issuer", "expired", "signature"]


@dataclass
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str
    staff_id: str = "sv-003"  # who signs in at the next authorization
    fault: Fault = ""
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [public | {"kid": "test-key", "use": "sig", "alg": "RS256"}]}

    def id_token(self, grant: dict[str, str]) -> str:
        moment = int(time.time())
        claims = {
            "iss": "https://elsewhere.example" if self.fault == "issuer" else self.issuer,
            "sub": f"user-{grant['staff_id']}",
            "aud": "another-client" if self.fault == "audience" else self.client_id,
            "iat": moment - 7200 if self.fault == "expired" else moment,
            "exp": moment - 3600 if self.fault == "expired" else moment + 300,
            "nonce": "not-the-nonce" if self.fault == "nonce" else grant["nonce"],
            "staff_id": grant["staff_id"],
        }
        signer = rsa.generate_private_key(65537, 2048) if self.fault == "signature" else self.key
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": "test-key"})


def provider_app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return provider.jwks()

    @app.get("/authorize")
    async def authorize(
        client_id: str,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
        response_type: Annotated[Literal["code"], Query()],
        code_challenge_method: Annotated[Literal["S256"], Query()],
    ) -> RedirectResponse:
        if client_id != provider.client_id or redirect_uri != provider.redirect_url:
            raise HTTPException(400, detail="unknown client or redirect_uri")
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {"nonce": nonce, "challenge": code_challenge, "staff_id": provider.staff_id}
        return RedirectResponse(
            f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=303
        )

    @app.post("/token")
    async def token(request: Request, authorization: Annotated[str, Header()] = "") -> dict[str, Any]:
        # Parsed here: the form parser FastAPI would use (python-multipart) is not a dependency.
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
        grant_type, code = form.get("grant_type", ""), form.get("code", "")
        redirect_uri, code_verifier = form.get("redirect_uri", ""), form.get("code_verifier", "")
        expected = base64.b64encode(f"{provider.client_id}:{provider.client_secret}".encode()).decode()
        if authorization != f"Basic {expected}":
            raise HTTPException(401, detail="invalid_client")
        grant = provider.codes.pop(code, None)
        if grant is None or grant_type != "authorization_code" or redirect_uri != provider.redirect_url:
            raise HTTPException(400, detail="invalid_grant")
        digest = hashlib.sha256(code_verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            raise HTTPException(400, detail="invalid_grant: the PKCE verifier does not match")
        return {"access_token": "unused", "token_type": "Bearer", "id_token": provider.id_token(grant)}

    return app


@contextmanager
def running_provider(client_id: str, client_secret: str, redirect_url: str) -> Iterator[Provider]:
    port = free_port()
    provider = Provider(f"http://127.0.0.1:{port}", client_id, client_secret, redirect_url)
    server = uvicorn.Server(
        uvicorn.Config(provider_app(provider), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        until(lambda: server.started, what="the OpenID provider to listen")
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
