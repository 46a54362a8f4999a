"""Staff passwords for the console's embedded sign-in: Argon2id hashes in one owner-only file."""

from __future__ import annotations

import json
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.directory import Directory
from shared.secret_files import write_secret

MIN_LENGTH = 8
_hasher = PasswordHasher()  # Argon2id with the library's (RFC 9106 low-memory) parameters
# Verified when the staff id has no password, so that a wrong id takes as long as a wrong password.
_NO_SUCH_HASH = _hasher.hash("no such staff member")


class PasswordError(ValueError):
    """The password cannot be set; the message says why."""


def set_password(path: Path, staff_id: str, password: str, directory: Directory) -> None:
    if staff_id not in directory.staff:
        raise PasswordError(f"{staff_id} is not in the staff directory")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password has at least {MIN_LENGTH} characters")
    hashes = _read(path)
    hashes[staff_id] = _hasher.hash(password)
    write_secret(path, json.dumps(hashes, indent=2, sort_keys=True).encode())


def check_password(path: Path, staff_id: str, password: str) -> bool:
    stored = _read(path).get(staff_id)
    try:
        return _hasher.verify(stored or _NO_SUCH_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _read(path: Path) -> dict[str, str]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(staff_id): str(digest) for staff_id, digest in loaded.items()}
