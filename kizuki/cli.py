"""The `kizuki` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import get_args

import httpx

from kizuki.audit import print_json_lines, print_timelines, read_record
from kizuki.importer import ImportFailed, import_file, report
from kizuki.launcher import run_system
from kizuki.provision import provision_bus, provision_secrets
from kizuki.qr import form_link, write_qr
from kizuki.reconcile import print_reconciliation, reconcile
from shared.auth import AuthError, issue_api_key, issue_token
from shared.bus import connect
from shared.directory import load_directory
from shared.events import Channel
from shared.policy import load_policy
from shared.settings import Settings, load_settings


async def _replay(url: str, as_json: bool, complaint: str | None) -> None:
    nc = await connect(url, name="kizuki-audit")
    try:
        entries = [entry async for entry in read_record(nc.jetstream())]
    finally:
        await nc.close()
    if complaint is not None:
        entries = [entry for entry in entries if entry.complaint_id == complaint]
    (print_json_lines if as_json else print_timelines)(entries, sys.stdout)


def _short_token(settings: Settings, staff_id: str) -> str:
    """A token for one command run on this machine on behalf of a member of staff."""
    directory = load_directory(settings.directory_path)
    return issue_token(settings.token_signing_key, staff_id, directory, timedelta(minutes=30))


def _erase(settings: Settings, complaint_id: str, by: str) -> None:
    """Through intake, as the administrator ``by``, so that the erasure is recorded like any action."""
    response = httpx.post(
        f"{settings.http_url('intake')}/v1/complaints/{complaint_id}/erase",
        headers={"Authorization": f"Bearer {_short_token(settings, by)}"},
        timeout=30,
    )
    if response.status_code != 200:
        reason = response.json().get("detail", response.text)
        sys.exit(f"kizuki: erasure refused ({response.status_code}): {reason}")
    print(f"kizuki: the patient data of complaint {complaint_id} is erased; the record keeps its facts")


async def _reconcile(url: str, since: datetime, as_json: bool) -> None:
    nc = await connect(url, name="kizuki-reconcile")
    try:
        figures = reconcile([entry async for entry in read_record(nc.jetstream())], since)
    finally:
        await nc.close()
    if as_json:
        for channel, counts in figures.items():
            line = {"channel": channel, "received": counts.received} | asdict(counts)
            print(json.dumps(line, ensure_ascii=False))
    else:
        print_reconciliation(figures, since, sys.stdout)


def _import(settings: Settings, path: Path, channel: str, by: str) -> None:
    """Through intake, as ``by`` (the first hearer of the rows), so that each row is recorded like any."""
    try:
        results = import_file(settings.http_url("intake"), _short_token(settings, by), path, channel)
    except ImportFailed as error:
        sys.exit(f"kizuki: {error}")
    print(report(results))


def _qr(settings: Settings, department: str, out: Path | None, base_url: str | None) -> None:
    if department not in load_policy(settings.policy_path).intake.web.inboxes:
        sys.exit(f"kizuki: the form offers no department {department!r}: see [intake.web] in the policy")
    link = form_link(base_url or settings.http_url("intake"), department)
    path = out or Path(f"form-{department.replace(' ', '-')}.png")
    write_qr(link, path)
    print(f"kizuki: {path} opens {link}")


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("give a UTC offset, e.g. 2026-11-01T00:00:00+09:00")
    return moment


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kizuki", description="Patient complaints that never get buried.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the whole system on this machine until Ctrl-C")
    commands.add_parser(
        "provision", help="create missing keys, declare the streams and consumers on the NATS server"
    )
    token = commands.add_parser("token", help="print a bearer token for a member of staff")
    token.add_argument("staff_id", help="their id in the staff directory")
    token.add_argument("--hours", type=float, default=12, help="how long it is valid (default 12)")
    api_key = commands.add_parser("api-key", help="create the API key of a machine channel; shown once")
    api_key.add_argument("--name", required=True, help="what posts with it, e.g. 'call-centre'")
    api_key.add_argument(
        "--channel", required=True, action="append", choices=get_args(Channel), help="repeat for several"
    )
    api_key.add_argument("--heard-by", required=True, help="staff id who owns this inbox (the first hearer)")
    erase = commands.add_parser(
        "erase", help="destroy a complaint's key: its patient data becomes unreadable everywhere"
    )
    erase.add_argument("complaint_id")
    erase.add_argument("--by", required=True, help="staff id of the administrator who erases it")
    import_ = commands.add_parser(
        "import", help="register a call-centre log or survey results (.csv or .xlsx) row by row"
    )
    import_.add_argument("file", type=Path)
    import_.add_argument(
        "--channel", required=True, choices=[c for c in get_args(Channel) if c != "staff_report"]
    )
    import_.add_argument("--by", required=True, help="staff id of who imports it: the rows' first hearer")
    intake = commands.add_parser("intake", help="intake's channels").add_subparsers(
        dest="intake_command", required=True
    )
    reconciliation = intake.add_parser(
        "reconcile", help="per channel: messages received, complaints created, rejections with reasons"
    )
    reconciliation.add_argument(
        "--since", required=True, type=_aware, help="ISO 8601 with a UTC offset, e.g. 2026-11-01T00:00+09:00"
    )
    reconciliation.add_argument("--json", action="store_true", help="one JSON object a channel")
    qr = intake.add_parser("qr", help="a PNG QR code that opens the complaint form for a department")
    qr.add_argument("--department", required=True, help="as the policy's [intake.web] inboxes name it")
    qr.add_argument("--out", type=Path, help="the PNG file (default: form-<department>.png)")
    qr.add_argument("--base-url", help="the form's public address (default: intake's own)")
    audit = commands.add_parser("audit", help="read the record").add_subparsers(
        dest="audit_command", required=True
    )
    replay = audit.add_parser(
        "replay", help="every complaint's timeline, from the first message of the record"
    )
    replay.add_argument("--json", action="store_true", help="one JSON object a line")
    replay.add_argument("--complaint", help="only this complaint id")
    args = parser.parse_args(argv)

    settings = load_settings()
    try:
        if args.command == "run":
            run_system(settings)
        elif args.command == "provision":
            provision_secrets(settings)
            asyncio.run(provision_bus(settings.bus_url))
        elif args.command == "token":
            directory = load_directory(settings.directory_path)
            lifetime = timedelta(hours=args.hours)
            print(issue_token(settings.token_signing_key, args.staff_id, directory, lifetime))
        elif args.command == "api-key":
            directory = load_directory(settings.directory_path)
            print(issue_api_key(settings.api_keys_path, args.name, args.channel, args.heard_by, directory))
        elif args.command == "erase":
            _erase(settings, args.complaint_id, args.by)
        elif args.command == "import":
            _import(settings, args.file, args.channel, args.by)
        elif args.command == "intake" and args.intake_command == "qr":
            _qr(settings, args.department, args.out, args.base_url)
        elif args.command == "intake":
            asyncio.run(_reconcile(settings.bus_url, args.since, args.json))
        else:
            asyncio.run(_replay(settings.bus_url, args.json, args.complaint))
    except AuthError as error:
        sys.exit(f"kizuki: {error}")


if __name__ == "__main__":
    main()
