"""Who is acting: staff with a signed bearer token, or a machine channel with its API key.

Tokens are JWTs signed with Ed25519 (EdDSA). Services hold only the public key, so no service can
mint a token; `kizuki token` signs with the private key that provisioning wrote to a directory of its
own, apart from the secrets the services read. A token names the person and has an id (``jti``) and a
lifetime no longer than the system allows; their roles and place in the hospital always come from the
staff directory, read again when its file changes, so a change there (or a revocation) takes effect
on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, get_args

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.directory import Directory, Role, StaffMember
from shared.events import Channel
from shared.live_file import LiveFile
from shared.revocations import Revocations, load_revocations
from shared.secret_files import write_secret
from shared.settings import Settings
from shared.timers import now

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
AUDIENCE = "kizuki"
ISSUER = "kizuki"
DEFAULT_TOKEN_LIFETIME = timedelta(hours=12)
API_KEY_PREFIX = "kzk"

ALL_ROLES: frozenset[Role] = frozenset(get_args(Role))
# Everyone but the auditor may write: "auditors read everything and write nothing".
WRITERS: frozenset[Role] = ALL_ROLES - {"auditor"}
# Who may read any complaint or case, whoever's chain it is in.
OVERSEERS: frozenset[Role] = frozenset({"executive", "quality", "auditor", "administrator"})


class AuthError(ValueError):
    """A key or token could not be made or read; the message says which and why."""


def ensure_token_keys(private_path: Path, public_path: Path) -> None:
    """Create the token signing key pair unless it exists (a configured key is kept as it is)."""
    public_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if private_path.exists():
        if not public_path.exists():
            public_path.write_bytes(_public_pem(_load_private(private_path)))
        return
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_secret(private_path, pem)
    public_path.write_bytes(_public_pem(key))


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise AuthError(f"no token signing key at {path}: run `kizuki provision` first") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuthError(f"the token signing key at {path} is not an Ed25519 key")
    return key


def issue_token(
    private_path: Path,
    staff_id: str,
    directory: Directory,
    lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    max_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
) -> str:
    if staff_id not in directory.staff:
        raise AuthError(f"{staff_id} is not in the staff directory")
    if lifetime > max_lifetime:
        raise AuthError(f"a token may be valid for {_hours(max_lifetime)} at most, not {_hours(lifetime)}")
    issued = now()
    claims = {
        "sub": staff_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, _load_private(private_path), algorithm=ALGORITHM)


def token_id(token: str) -> str:
    """The id (``jti``) of a token, by which it can be revoked; the token is not checked."""
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def _hours(lifetime: timedelta) -> str:
    return f"{lifetime.total_seconds() / 3600:g} h"


class ActionBody(BaseModel):
    """The body of an action. Who acts comes from the credential, so a body that names an actor is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _names_no_actor(cls, data: object) -> object:
        if isinstance(data, dict):
            for field in ("by", "heard_by"):
                if field in data:
                    raise ValueError(f"'{field}' is taken from your credential; leave it out of the body")
        return data


class ApiClient(BaseModel):
    """A machine channel allowed to post complaints: a web-form backend, a call-centre system, a chat bot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1, description="The channels it may post complaints for.")
    heard_by: str = Field(description="Staff id who owns its inbox and is the complaints' first hearer.")
    digest: str = Field(description="SHA-256 of the key's secret part; the key itself is never stored.")


def issue_api_key(
    path: Path, name: str, channels: Collection[Channel], heard_by: str, directory: Directory
) -> str:
    """Add a machine channel to the API key file; the key is shown once and only its digest is kept."""
    if heard_by not in directory.staff:
        raise AuthError(f"{heard_by} is not in the staff directory")
    clients = _read_api_clients(path)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    clients[key_id] = ApiClient(name=name, channels=list(channels), heard_by=heard_by, digest=_digest(secret))
    write_secret(path, json.dumps({k: v.model_dump() for k, v in clients.items()}, indent=2).encode())
    return f"{API_KEY_PREFIX}_{key_id}_{secret}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _read_api_clients(path: Path) -> dict[str, ApiClient]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {key_id: ApiClient.model_validate(client) for key_id, client in raw.items()}


@dataclass(frozen=True)
class Person:
    """A member of staff, authenticated."""

    staff_id: str
    member: StaffMember

    def has_any(self, roles: Collection[Role]) -> bool:
        return not set(self.member.roles).isdisjoint(roles)

    @property
    def oversees(self) -> bool:
        return self.has_any(OVERSEERS)

    def concerned_with(self, heard_by: str, department: str, directory: Directory) -> bool:
        """Who may see a complaint and what follows from it (its case, its callbacks): its first hearer,
        the complaint's department, the people above the first hearer, and the overseers."""
        return (
            self.oversees
            or self.staff_id == heard_by
            or self.member.department == department
            or self.staff_id in directory.chain_above(heard_by)
        )


@dataclass(frozen=True)
class Caller:
    """Whoever made a request that machine channels may make too: a person, or an API client."""

    person: Person | None = None
    client: ApiClient | None = None


class Refused(HTTPException):
    """401 or 403 with a message a person understands; logged with who and where, never a body."""

    def __init__(self, request: Request, code: int, reason: str, who: str = "anonymous") -> None:
        log.warning("refused %s %s for %s: %s", request.method, request.url.path, who, reason)
        headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
        super().__init__(code, detail=reason, headers=headers)


_bearer = HTTPBearer(auto_error=False, description="A staff token from `kizuki token STAFF_ID`.")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A channel key from `kizuki api-key`."
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ApiKeyCredentials = Annotated[str | None, Depends(_api_key)]


class Authenticator:
    """Checks credentials against the public key, the staff directory, the revoked tokens and the API
    key file; the directory and the revoked tokens are read again when their files change."""

    def __init__(
        self,
        public_key_path: Path,
        directory: LiveFile[Directory],
        revocations: LiveFile[Revocations],
        max_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
        api_keys_path: Path | None = None,
    ):
        try:
            self.public_key = serialization.load_pem_public_key(public_key_path.read_bytes())
        except FileNotFoundError:
            raise AuthError(
                f"no token verification key at {public_key_path}: run `kizuki provision`"
            ) from None
        self.directory = directory
        self.revocations = revocations
        self.max_lifetime = max_lifetime
        self.api_keys_path = api_keys_path

    @classmethod
    def from_settings(cls, settings: Settings, directory: LiveFile[Directory]) -> Authenticator:
        return cls(
            settings.token_verify_key,
            directory,
            LiveFile(settings.revoked_tokens_path, load_revocations),
            settings.token_max_lifetime,
            settings.api_keys_path,
        )

    def person(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Person:
        if credentials is None:
            raise Refused(
                request, status.HTTP_401_UNAUTHORIZED, "sign in: send 'Authorization: Bearer <token>'"
            )
        try:
            claims = jwt.decode(
                credentials.credentials,
                self.public_key,  # type: ignore[arg-type]  # pyjwt types keys loosely
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(
                request, status.HTTP_401_UNAUTHORIZED, "your token has expired: get a new one"
            ) from None
        except jwt.InvalidTokenError:
            raise Refused(request, status.HTTP_401_UNAUTHORIZED, "the token is not valid") from None
        staff_id = str(claims["sub"])
        if claims["exp"] - claims["iat"] > self.max_lifetime.total_seconds():
            raise Refused(
                request,
                status.HTTP_401_UNAUTHORIZED,
                f"the token is valid for longer than the {_hours(self.max_lifetime)} this system allows",
                staff_id,
            )
        revoked = self.revocations.current.reason(str(claims["jti"]), staff_id, int(claims["iat"]))
        if revoked is not None:
            raise Refused(request, status.HTTP_401_UNAUTHORIZED, revoked, staff_id)
        member = self.directory.current.staff.get(staff_id)
        if member is None:
            raise Refused(
                request, status.HTTP_401_UNAUTHORIZED, f"{staff_id} is no longer in the staff directory"
            )
        return Person(staff_id, member)

    def client(self, request: Request, key: str) -> ApiClient:
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition("_")
        clients = _read_api_clients(self.api_keys_path) if self.api_keys_path is not None else {}
        client = clients.get(key_id) if prefix == API_KEY_PREFIX else None
        if client is None or not hmac.compare_digest(client.digest, _digest(secret)):
            raise Refused(request, status.HTTP_401_UNAUTHORIZED, "the API key is not valid")
        return client

    def requires(self, *roles: Role) -> Callable[..., Awaitable[Person]]:
        """A dependency: the authenticated person, who must hold one of these roles. Asynchronous, so
        that FastAPI runs it on the event loop rather than in a worker thread (a hand-off each way on
        every request): what it reads is held in memory or is a small file."""
        allowed = frozenset(roles)

        async def dependency(request: Request, credentials: BearerCredentials) -> Person:
            return self._person_with(request, credentials, allowed)

        return dependency

    def person_or_client(self, *roles: Role) -> Callable[..., Awaitable[Caller]]:
        """A dependency for actions machine channels may take too: an API key, or a person with a role."""
        allowed = frozenset(roles)

        async def dependency(
            request: Request, credentials: BearerCredentials, key: ApiKeyCredentials
        ) -> Caller:
            if key is not None and credentials is None:
                return Caller(client=self.client(request, key))
            return Caller(person=self._person_with(request, credentials, allowed))

        return dependency

    def _person_with(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None, allowed: frozenset[Role]
    ) -> Person:
        person = self.person(request, credentials)
        if not person.has_any(allowed):
            raise Refused(
                request,
                status.HTTP_403_FORBIDDEN,
                f"{person.staff_id} may not do this: it takes the role {' or '.join(sorted(allowed))}",
                person.staff_id,
            )
        return person


def refuse(request: Request, person: Person, reason: str) -> Refused:
    """A 403 for a person who is signed in but outside the case, department or chain."""
    return Refused(request, status.HTTP_403_FORBIDDEN, reason, person.staff_id)
