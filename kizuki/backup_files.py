"""What a backup holds besides the streams and the stores, where each file lives on this machine, and
the manifest that lists every file of a backup with its size and SHA-256.

A file is named in a backup by where it lives under a default data directory (``secrets/master.key``,
``intake/traces/<contact>/<id>``); on restore each name goes to where this machine's settings put it, so a
key configured elsewhere (``KIZUKI_MASTER_KEY``) is backed up from there and restored to there."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.settings import SERVICES, Settings

MANIFEST = "manifest.json"
FORMAT = 1
OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700
# Restored beside the data, never over the files in force: the operator decides whether to use them.
CONFIG_DIR = "config"


class BackupRefused(RuntimeError):
    """A backup cannot be taken or restored; the message names what is wrong."""


def single_files(settings: Settings) -> dict[str, Path]:
    """The secrets that must survive, the trust file, the revocations and the configuration in use."""
    files = {
        "token-issuer/token-signing.pem": settings.token_signing_key,
        "secrets/token-verify.pem": settings.token_verify_key,
        "secrets/api-keys.json": settings.api_keys_path,
        "secrets/master.key": settings.master_key,
        "secrets/reporter-identity.key": settings.reporter_key,
        "secrets/ack-link.key": settings.ack_link_secret,
        "secrets/intake-match.key": settings.match_key,
        "secrets/line-channel-secret": settings.line_channel_secret,
        "secrets/wechat-token": settings.wechat_token,
        "secrets/wechat-aes-key": settings.wechat_aes_key,
        "trust.json": settings.trust_file,
        "revoked-tokens.json": settings.revoked_tokens_path,
    }
    files |= {f"{service}/signing.nk": settings.signing_key_file(service) for service in SERVICES}
    return files


def config_files(settings: Settings) -> dict[str, Path]:
    return {
        f"{CONFIG_DIR}/policy.toml": settings.policy_path,
        f"{CONFIG_DIR}/directory.toml": settings.directory_path,
        f"{CONFIG_DIR}/channels.toml": settings.channels_path,
    }


def directories(settings: Settings) -> dict[str, Path]:
    """Directories kept whole: the bus credentials, intake's traces of the complaints (written before
    intake stores a complaint, so copied after its store) and the key files an earlier version kept
    (intake moves them into its store's table when it starts)."""
    kept = {
        "intake/patient-keys": settings.service_dir("intake") / "patient-keys",
        "intake/traces": settings.service_dir("intake") / "traces",
    }
    if settings.nats_credentials is not None:
        kept["nats/credentials"] = settings.nats_credentials
    return kept


def live_files(settings: Settings) -> Iterator[tuple[str, Path]]:
    """Every file to back up that exists now, by its name in the backup."""
    for name, path in (single_files(settings) | config_files(settings)).items():
        if path.is_file():
            yield name, path
    for prefix, directory in directories(settings).items():
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.is_file() and not path.name.endswith(".partial"):
                    yield f"{prefix}/{path.relative_to(directory).as_posix()}", path


def destination(settings: Settings, name: str) -> Path:
    """Where a file of the backup goes on this machine."""
    if name.startswith(f"{CONFIG_DIR}/"):
        return settings.data_dir / name
    single = single_files(settings)
    if name in single:
        return single[name]
    for prefix, directory in directories(settings).items():
        if name.startswith(prefix + "/"):
            return directory / name.removeprefix(prefix + "/")
    raise BackupRefused(f"the backup holds a file this version does not know where to put: {name}")


def write_owner_only(path: Path, content: bytes) -> None:
    for parent in reversed(path.parents):
        if not parent.exists():
            parent.mkdir(mode=OWNER_ONLY_DIR)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.chmod(path, OWNER_ONLY_FILE)  # an existing file keeps its mode through O_CREAT


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()


def write_manifest(backup: Path, facts: dict[str, Any]) -> None:
    """Written last: a backup without its manifest is one that did not finish."""
    files = {
        path.relative_to(backup).as_posix(): {"bytes": path.stat().st_size, "sha256": digest(path)}
        for path in sorted(backup.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {"kizuki_backup": FORMAT, **facts, "files": files}
    write_owner_only(backup / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def checked_manifest(backup: Path) -> dict[str, Any]:
    """The manifest, once every file it lists is there, whole and unchanged, and nothing else is."""
    path = backup / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"{backup} is not a finished kizuki backup: it has no {MANIFEST}")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("kizuki_backup") != FORMAT:
        raise BackupRefused(f"{path} is not a kizuki backup manifest of format {FORMAT}")
    listed: dict[str, dict[str, Any]] = manifest["files"]
    present = {p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file()} - {MANIFEST}
    problems = [f"missing: {name}" for name in sorted(set(listed) - present)]
    problems += [f"not in the manifest: {name}" for name in sorted(present - set(listed))]
    for name in sorted(set(listed) & present):
        file = backup / name
        if file.stat().st_size != listed[name]["bytes"] or digest(file) != listed[name]["sha256"]:
            problems.append(f"changed: {name}")
    if problems:
        raise BackupRefused(f"the backup in {backup} does not match its manifest; " + "; ".join(problems))
    return manifest
