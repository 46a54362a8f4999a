"""One-click acknowledgement links: the alert's delivery id and an expiry, signed with HMAC-SHA256.

The link is its own credential: whoever holds it may acknowledge that one alert, as the person it
was sent to, until it expires. Nothing else can be done with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID


class LinkRefused(ValueError):
    """The token is not one this notifier signed, was altered, or has expired; the message says which."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


class LinkSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the acknowledgement link secret must be at least 16 bytes")
        self.secret = secret

    @classmethod
    def from_file(cls, path: Path) -> LinkSigner:
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            raise ValueError(f"no acknowledgement link secret at {path}: run `kizuki provision`") from None

    def token(self, delivery_id: UUID, expires_at: datetime) -> str:
        claims = f"{delivery_id.hex}.{int(expires_at.timestamp())}"
        return f"{claims}.{self._mac(claims)}"

    def verify(self, token: str, now: datetime) -> UUID:
        """The delivery id the token was signed for; LinkRefused if it is forged, altered or expired."""
        delivery, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        # Only ASCII can be a token this notifier made (compare_digest refuses to compare other text).
        if not token.isascii() or not hmac.compare_digest(self._mac(f"{delivery}.{expires}"), mac):
            raise LinkRefused("this link is not valid: it was not issued by kizuki or it was altered")
        if datetime.fromtimestamp(int(expires), UTC) <= now:
            raise LinkRefused("this link has expired: acknowledge in the staff console instead", expired=True)
        return UUID(hex=delivery)

    def _mac(self, claims: str) -> str:
        digest = hmac.new(self.secret, claims.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
