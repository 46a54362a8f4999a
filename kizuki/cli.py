"""The `kizuki` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import httpx

from kizuki import bundle as bundles
from kizuki import importer
from kizuki.audit import (
    RecordMessage,
    print_json_lines,
    print_timelines,
    read_messages,
    read_record,
    with_progress,
)
from kizuki.bundle import Bundle
from kizuki.launcher import run_system
from kizuki.permissions import ADMINISTRATOR, AUDITOR, bus_permissions, print_permissions
from kizuki.provision import KEY_USES, SUBSCRIPTIONS, provision_bus, provision_secrets
from kizuki.qr import form_link, write_qr
from kizuki.reconcile import print_reconciliation, reconcile
from kizuki.report import Rebuild, iso_or_none
from kizuki.report_forms import print_csv, print_json, print_table
from kizuki.verify import Verifier
from services.console.passwords import PasswordError, set_password
from shared.auth import AuthError, issue_api_key, issue_token
from shared.bus import RECORD_STREAM, connect
from shared.chain import TrustFile
from shared.directory import load_directory
from shared.events import Channel
from shared.policy import load_policy
from shared.settings import Settings, load_settings


async def _replay(settings: Settings, as_json: bool, complaint: str | None) -> None:
    nc = await connect(settings.bus_url, name="kizuki-audit", user=settings.bus_user(AUDITOR))
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


def _set_password(settings: Settings, staff_id: str) -> None:
    """The first line of standard input, typed at a prompt that does not echo it, or piped."""
    if sys.stdin.isatty():
        entered = getpass.getpass(f"password for {staff_id}: ")
    else:
        entered = sys.stdin.readline().rstrip("\n")
    try:
        set_password(settings.console_passwords, staff_id, entered, load_directory(settings.directory_path))
    except PasswordError as error:
        sys.exit(f"kizuki: {error}")
    print(f"kizuki: the console password of {staff_id} is set")


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


async def _reconcile(settings: Settings, since: datetime, as_json: bool) -> None:
    nc = await connect(settings.bus_url, name="kizuki-reconcile", user=settings.bus_user(AUDITOR))
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
        results = importer.import_file(settings.http_url("intake"), _short_token(settings, by), path, channel)
    except importer.ImportFailed as error:
        sys.exit(f"kizuki: {error}")
    print(importer.report(results))


def _qr(settings: Settings, department: str, out: Path | None, base_url: str | None) -> None:
    if department not in load_policy(settings.policy_path).intake.web.inboxes:
        sys.exit(f"kizuki: the form offers no department {department!r}: see [intake.web] in the policy")
    link = form_link(base_url or settings.http_url("intake"), department)
    path = out or Path(f"form-{department.replace(' ', '-')}.png")
    write_qr(link, path)
    print(f"kizuki: {path} opens {link}")


async def _messages(settings: Settings, bundle: Bundle | None) -> AsyncIterator[RecordMessage]:
    """The record from a bundle, or from the NATS server, its progress shown on the terminal."""
    if bundle is not None:
        async for message in with_progress(_each(bundle.messages()), sys.stderr):
            yield message
        return
    nc = await connect(settings.bus_url, name="kizuki-audit", user=settings.bus_user(AUDITOR))
    try:
        js = nc.jetstream()
        last = (await js.stream_info(RECORD_STREAM)).state.last_seq
        async for message in with_progress(read_messages(js), sys.stderr, last=last):
            yield message
    finally:
        await nc.close()


async def _each(messages: Iterable[RecordMessage]) -> AsyncIterator[RecordMessage]:
    for message in messages:
        yield message


def _trust(settings: Settings, pinned: Path | None, bundle: Bundle | None) -> TrustFile:
    if pinned is not None:
        return TrustFile.load(pinned)
    if bundle is not None:
        print(
            "kizuki: checking against the trust file inside the bundle; pin your own with --trust",
            file=sys.stderr,
        )
        return bundle.trust
    return TrustFile.load(settings.trust_file)


async def _verify(settings: Settings, bundle_path: Path | None, pinned: Path | None) -> bool:
    bundle = Bundle.open(bundle_path) if bundle_path is not None else None
    verifier = Verifier(
        _trust(settings, pinned, bundle), segments=bundle is not None and bundle.kind == "proof"
    )
    async for message in _messages(settings, bundle):
        verifier.check(message)
    verifier.finish()
    for problem in verifier.problems:
        print(problem)
    print(verifier.summary())
    return verifier.holds


async def _export(settings: Settings, out_path: Path, pinned: Path | None) -> None:
    trust = _trust(settings, pinned, None)
    with out_path.open("w", encoding="utf-8") as out:
        written = await bundles.export(_messages(settings, None), trust, out)
    print(f"kizuki: {written} messages and the trust file written to {out_path}")


async def _prove(settings: Settings, complaint: str, out_path: Path, pinned: Path | None) -> int:
    trust = _trust(settings, pinned, None)
    with out_path.open("w", encoding="utf-8") as out:
        return await bundles.prove(_messages(settings, None), complaint, trust, out)


async def _report(
    settings: Settings, bundle_path: Path | None, form: str, since: datetime | None, until: datetime | None
) -> None:
    bundle = Bundle.open(bundle_path) if bundle_path is not None else None
    rebuild = Rebuild()
    async for message in _messages(settings, bundle):
        rebuild.add(message)
    found = rebuild.timelines(since, until)
    period = {"since": iso_or_none(since), "until": iso_or_none(until)}
    if form == "json":
        print_json(found, period, sys.stdout)
    elif form == "csv":
        print_csv(found, sys.stdout)
    else:
        print_table(found, period, sys.stdout)


def _moment(value: str) -> datetime:
    """A --since or --until: an ISO date or time, UTC unless it says otherwise."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kizuki", description="Patient complaints that never get buried.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the whole system on this machine until Ctrl-C")
    commands.add_parser(
        "provision",
        help="create missing keys and the trust file, declare the streams and consumers on the NATS server",
    )
    commands.add_parser(
        "permissions", help="what each NATS user may publish and subscribe to (JSON), for a cluster's config"
    )
    token = commands.add_parser("token", help="print a bearer token for a member of staff")
    token.add_argument("staff_id", help="their id in the staff directory")
    token.add_argument("--hours", type=float, default=12, help="how long it is valid (default 12)")
    password = commands.add_parser(
        "password", help="set a member of staff's console password, read from standard input"
    )
    password.add_argument("staff_id", help="their id in the staff directory")
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
        "--since", required=True, type=_moment, help="ISO 8601, UTC unless it says otherwise"
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
    trust_help = "the trust file you pin (default: the data directory's, or the bundle's)"
    verify = audit.add_parser("verify", help="check every chain link and signature; exit 0 only if all hold")
    verify.add_argument("--bundle", type=Path, help="an exported bundle or a proof, instead of the server")
    verify.add_argument("--trust", type=Path, help=trust_help)
    export = audit.add_parser("export", help="write the record and the trust file to a bundle")
    export.add_argument("out", type=Path, help="the bundle file to write")
    export.add_argument("--trust", type=Path, help=trust_help)
    prove = audit.add_parser("prove", help="the smallest bundle that proves one complaint's timeline")
    prove.add_argument("complaint", help="the complaint id")
    prove.add_argument("out", type=Path, help="the bundle file to write")
    prove.add_argument("--trust", type=Path, help=trust_help)
    report = audit.add_parser("report", help="the reporting regime per complaint and per period")
    report.add_argument("--bundle", type=Path, help="an exported bundle, instead of the server")
    forms = report.add_mutually_exclusive_group()
    forms.add_argument("--json", dest="form", action="store_const", const="json", help="one JSON document")
    forms.add_argument("--csv", dest="form", action="store_const", const="csv", help="one row a complaint")
    report.add_argument(
        "--since", type=_moment, help="complaints that occurred from then (ISO, UTC by default)"
    )
    report.add_argument("--until", type=_moment, help="complaints that occurred before then")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "run":
            run_system(settings)
        elif args.command == "provision":
            provision_secrets(settings)
            asyncio.run(provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR)))
        elif args.command == "permissions":
            print_permissions(bus_permissions(SUBSCRIPTIONS, KEY_USES), sys.stdout)
        elif args.command == "token":
            directory = load_directory(settings.directory_path)
            lifetime = timedelta(hours=args.hours)
            print(issue_token(settings.token_signing_key, args.staff_id, directory, lifetime))
        elif args.command == "password":
            _set_password(settings, args.staff_id)
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
            asyncio.run(_reconcile(settings, args.since, args.json))
        elif args.audit_command == "replay":
            asyncio.run(_replay(settings, args.json, args.complaint))
        else:
            sys.exit(0 if _audit(settings, args) else 1)
    except AuthError as error:
        sys.exit(f"kizuki: {error}")


def _audit(settings: Settings, args: argparse.Namespace) -> bool:
    """Runs an audit command; a file that cannot be read is a clear error, exit status 2."""
    try:
        if args.audit_command == "verify":
            return asyncio.run(_verify(settings, args.bundle, args.trust))
        if args.audit_command == "report":
            asyncio.run(_report(settings, args.bundle, args.form or "table", args.since, args.until))
            return True
        if args.audit_command == "export":
            asyncio.run(_export(settings, args.out, args.trust))
            return True
        found = asyncio.run(_prove(settings, args.complaint, args.out, args.trust))
    except (OSError, ValueError) as error:
        print(f"kizuki: {error}", file=sys.stderr)
        sys.exit(2)
    if not found:
        print(f"kizuki: the record holds no event of complaint {args.complaint}", file=sys.stderr)
        args.out.unlink()
        return False
    print(f"kizuki: {found} events of complaint {args.complaint}, with their chains, written to {args.out}")
    return True


if __name__ == "__main__":
    main()
