"""The `kizuki` command.

Each run does one command, so what loads slowly (FastAPI under shared.auth, argon2, openpyxl,
matplotlib, the FHIR models) is imported by the commands that need it, not by all of them. No command
imports a service: what one needs of a service is declared in shared/ (its contract, shared/contracts.py),
or runs as that service's own process (``kizuki rebuild``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

import nats
from nats.errors import Error as NatsError

from kizuki import bundle as bundles
from kizuki.analysis import AnalysisRebuild
from kizuki.analysis_figures import PERIOD_KINDS, Periods, analysis_of
from kizuki.analysis_forms import print_csv as analysis_csv
from kizuki.analysis_forms import print_json as analysis_json
from kizuki.analysis_forms import print_table as analysis_table
from kizuki.audit import RecordMessage, read_messages, read_record, with_progress
from kizuki.backup_files import BackupRefused
from kizuki.bundle import Bundle
from kizuki.case import complaint_named, print_case, rebuild
from kizuki.permissions import ADMINISTRATOR, AUDITOR, bus_permissions, print_permissions
from kizuki.reconcile import print_reconciliation, reconcile
from kizuki.replay import replay
from kizuki.report import Rebuild, iso_or_none
from kizuki.report_forms import print_csv, print_json, print_table
from kizuki.snapshots import SnapshotFailed
from kizuki.staff import print_staff
from kizuki.verify import Awaited, Verification, Verifier
from shared.bus import RECORD_STREAM, BusUser, connect, inbox_of, server_urls, submission_subject
from shared.chain import TrustFile
from shared.directory import DirectoryError, load_directory
from shared.events import Channel, Language
from shared.policy import load_policy
from shared.reference import AmbiguousReference, NotAComplaintId, UnknownReference
from shared.revocations import revoke_staff_tokens, revoke_token
from shared.settings import SERVICES, Settings, SettingsError, load_settings
from shared.timers import now


async def _case(settings: Settings, text: str) -> None:
    """One case as people read it, from the record, as the auditor: no patient data is on it."""
    nc = await connect(settings.bus_url, name="kizuki-case", user=settings.bus_user(AUDITOR))
    try:
        entries = [entry async for entry in read_record(nc.jetstream())]
    finally:
        await nc.close()
    try:
        complaint_id = complaint_named(text, entries)
    except AmbiguousReference as error:
        sys.exit(f"kizuki: {error}: " + ", ".join(map(str, error.complaint_ids)))
    except (NotAComplaintId, UnknownReference) as error:
        sys.exit(f"kizuki: {error}")
    zone = ZoneInfo(load_policy(settings.policy_path).escalation.calendar.timezone)
    print_case(rebuild(complaint_id, entries, zone), zone, datetime.now(UTC), sys.stdout)


@contextlib.contextmanager
def _keys_and_tokens() -> Iterator[None]:
    """Around making or reading the token keys, tokens and API keys: what cannot be done (no signing
    key, a staff id not in the directory, too long a lifetime) ends the command with the reason."""
    from shared.auth import AuthError

    try:
        yield
    except AuthError as error:
        sys.exit(f"kizuki: {error}")


def _issued_token(settings: Settings, staff_id: str, lifetime: timedelta) -> str:
    from shared.auth import issue_token

    directory = load_directory(settings.directory_path)
    with _keys_and_tokens():
        return issue_token(
            settings.token_signing_key, staff_id, directory, lifetime, settings.token_max_lifetime
        )


def _short_token(settings: Settings, staff_id: str) -> str:
    """A token for one command run on this machine on behalf of a member of staff."""
    return _issued_token(settings, staff_id, min(timedelta(minutes=30), settings.token_max_lifetime))


def _token(settings: Settings, staff_id: str, hours: float | None) -> None:
    """The token on stdout (for `$(kizuki token ...)`); its id, to revoke it by, on stderr."""
    from shared.auth import token_id

    lifetime = settings.token_max_lifetime if hours is None else timedelta(hours=hours)
    if lifetime <= timedelta(0):
        sys.exit("kizuki: --hours must be more than 0")
    token = _issued_token(settings, staff_id, lifetime)
    print(token)
    print(
        f"kizuki: token {token_id(token)} for {staff_id}, valid until {now() + lifetime:%Y-%m-%d %H:%M} UTC",
        file=sys.stderr,
    )


def _revoke(settings: Settings, token_ids: list[str], staff_ids: list[str]) -> None:
    if not token_ids and not staff_ids:
        sys.exit("kizuki: say what to revoke: --id TOKEN_ID or --staff STAFF_ID")
    for revoked in token_ids:
        revoke_token(settings.revoked_tokens_path, revoked, now(), settings.token_max_lifetime)
        print(f"kizuki: token {revoked} is revoked")
    for staff_id in staff_ids:
        revoke_staff_tokens(settings.revoked_tokens_path, staff_id, now(), settings.token_max_lifetime)
        print(f"kizuki: every token of {staff_id} issued until now is revoked")
    print(f"kizuki: the services refuse them within seconds ({settings.revoked_tokens_path})")


def _set_password(settings: Settings, staff_id: str) -> None:
    """The first line of standard input, typed at a prompt that does not echo it, or piped."""
    from shared.passwords import PasswordError, set_password

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
    import httpx

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
    from kizuki import importer

    try:
        results = importer.import_file(settings.http_url("intake"), _short_token(settings, by), path, channel)
    except importer.ImportFailed as error:
        sys.exit(f"kizuki: {error}")
    print(importer.report(results))


def _qr(settings: Settings, department: str, out: Path | None, base_url: str | None) -> None:
    from kizuki.qr import form_link, write_qr

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


class TrustMissing(FileNotFoundError):
    """The trust file named does not exist; the message says how to make one."""


def _trust(settings: Settings, pinned: Path | None, bundle: Bundle | None) -> TrustFile:
    if pinned is not None:
        if not pinned.is_file():
            raise TrustMissing(
                f"the trust file {pinned} does not exist: make one by copying the data directory's "
                f"(cp {settings.trust_file} {pinned}) and keep it where the system cannot change it"
            )
        return TrustFile.load(pinned)
    if bundle is not None:
        print(
            "kizuki: checking against the trust file inside the bundle; pin your own with --trust",
            file=sys.stderr,
        )
        return bundle.trust
    if not settings.trust_file.is_file():
        raise TrustMissing(
            f"there is no trust file at {settings.trust_file}: `kizuki provision` (or `make run`) "
            "writes it; or name a copy you keep with --trust"
        )
    return TrustFile.load(settings.trust_file)


def _awaited(settings: Settings, bundle: Bundle | None) -> Awaited | None:
    """Links not yet signed are awaited if they reached the record within a checkpoint interval of
    now, or of when the bundle was written (a bundle that does not say when: none are)."""
    if bundle is None:
        return Awaited(datetime.now(UTC), settings.checkpoint_seconds)
    if bundle.exported_at is None:
        return None
    return Awaited(bundle.exported_at, bundle.checkpoint_seconds or settings.checkpoint_seconds)


async def _verify(settings: Settings, bundle_path: Path | None, pinned: Path | None, strict: bool) -> bool:
    bundle = Bundle.open(bundle_path) if bundle_path is not None else None
    verifier = Verifier(
        _trust(settings, pinned, bundle),
        proof_of=bundle.complaint_id if bundle is not None and bundle.kind == "proof" else None,
        awaited=None if strict else _awaited(settings, bundle),
    )
    async for message in _messages(settings, bundle):
        verifier.check(message)
    verifier.finish()
    for problem in verifier.problems:
        print(problem)
    print(verifier.summary())
    if bundle is None:  # the record itself: shown as its last verification in the console
        Verification.of(verifier, now(), "kizuki audit verify").keep(settings.data_dir)
    return verifier.holds


async def _export(settings: Settings, out_path: Path, pinned: Path | None) -> None:
    trust = _trust(settings, pinned, None)
    with out_path.open("w", encoding="utf-8") as out:
        written = await bundles.export(_messages(settings, None), trust, out, settings.checkpoint_seconds)
    print(f"kizuki: {written} messages and the trust file written to {out_path}")


async def _prove(settings: Settings, complaint: str, out_path: Path, pinned: Path | None) -> int:
    trust = _trust(settings, pinned, None)
    with out_path.open("w", encoding="utf-8") as out:
        messages = _messages(settings, None)
        return await bundles.prove(messages, complaint, trust, out, settings.checkpoint_seconds)


async def _replay(settings: Settings, bundle_path: Path | None, complaint: str | None, as_json: bool) -> None:
    bundle = Bundle.open(bundle_path) if bundle_path is not None else None
    zone = ZoneInfo(load_policy(settings.policy_path).escalation.calendar.timezone)
    await replay(_messages(settings, bundle), sys.stdout, zone, complaint, as_json)


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


async def _rebuilt(settings: Settings, bundle_path: Path | None) -> AnalysisRebuild:
    rebuild = AnalysisRebuild()
    async for message in _messages(settings, Bundle.open(bundle_path) if bundle_path else None):
        rebuild.add(message)
    return rebuild


async def _analysis(settings: Settings, args: argparse.Namespace) -> None:
    """The analysis from the record (or a bundle): a table, CSV or JSON, or the board report."""
    policy = load_policy(settings.policy_path)
    found = analysis_of(await _rebuilt(settings, args.bundle), policy, args.period, (args.since, args.until))
    if args.board is not None:
        from kizuki.board import FontMissing, write_board

        try:
            written = write_board(found, args.board, args.language)
        except FontMissing as error:
            sys.exit(f"kizuki: {error}")
        for path in written:
            print(f"kizuki: {path}")
    else:
        {"json": analysis_json, "csv": analysis_csv}.get(args.form, analysis_table)(found, sys.stdout)


async def _fhir(settings: Settings, args: argparse.Namespace) -> None:
    from kizuki.fhir import fhir_export

    rebuild = await _rebuilt(settings, args.bundle)
    periods = Periods(args.period, ZoneInfo(load_policy(settings.policy_path).escalation.calendar.timezone))
    document = fhir_export(rebuild.found(args.since, args.until), periods)
    args.out.write_text(json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"kizuki: {len(document['entry'])} period bundles written to {args.out}")


def _moment(value: str) -> datetime:
    """A --since or --until: an ISO date or time, UTC unless it says otherwise."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kizuki", description="Patient complaints that never get buried.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole system on this machine until Ctrl-C")
    run.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="run N processes of SERVICE (again for another service; KIZUKI_REPLICAS=intake=2,notifier=2 "
        "sets the same); more than one needs PostgreSQL stores",
    )
    commands.add_parser(
        "provision",
        help="create missing keys and the trust file, declare the streams and consumers on the NATS server",
    )
    backup = commands.add_parser(
        "backup", help="a consistent copy of the record, timers, stores, keys and secrets, while it runs"
    )
    backup.add_argument("dir", type=Path, help="a new directory; keep it as you keep the keys it holds")
    restore = commands.add_parser("restore", help="bring a fresh machine to the state of a backup")
    restore.add_argument("dir", type=Path, help="the backup's directory")
    restore.add_argument("--force", action="store_true", help="move an existing data directory aside")
    rebuilt = commands.add_parser(
        "rebuild",
        help="make a stopped service's lost store again from the record alone (refused, naming them, for a"
        " store holding facts the record lacks)",
    )
    rebuilt.add_argument("service", choices=SERVICES)
    commands.add_parser(
        "permissions", help="what each NATS user may publish and subscribe to (JSON), for a cluster's config"
    )
    commands.add_parser(
        "map", help="who reacts to what: each event on the record, its publisher, who handles it, the loops"
    )
    commands.add_parser(
        "staff", help="the staff directory: id, name, roles, department, line, language (whom to sign in as)"
    )
    token = commands.add_parser(
        "token",
        help="print a bearer token for a member of staff, or revoke tokens",
        usage="kizuki token STAFF_ID [--hours H]\n"
        "       kizuki token revoke (--id TOKEN_ID | --staff STAFF_ID)",
    )
    token.add_argument("staff_id", help="their id in the staff directory, or `revoke`")
    token.add_argument(
        "--hours", type=float, help="how long it is valid (default and most: KIZUKI_TOKEN_MAX_HOURS, 12)"
    )
    token.add_argument("--id", action="append", default=[], help="revoke: this token id; repeat for several")
    token.add_argument(
        "--staff", action="append", default=[], help="revoke: every token of this person so far"
    )
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
    channel_credential = commands.add_parser(
        "channel-credential",
        help="the NATS credential a channel system publishes its submissions with (made once, then kept)",
    )
    channel_credential.add_argument(
        "channel", help="as the policy's [intake.bus_channels] names it, e.g. call-centre"
    )
    erase = commands.add_parser(
        "erase", help="destroy a complaint's key: its patient data becomes unreadable everywhere"
    )
    erase.add_argument("complaint_id", help="its id or its reference (XXXX-XXXX)")
    erase.add_argument("--by", required=True, help="staff id of the administrator who erases it")
    case = commands.add_parser("case", help="one case as people read it: duties, alerts, callbacks")
    case.add_argument("complaint", help="its reference (XXXX-XXXX) or its id")
    set_aside = commands.add_parser(
        "set-aside", help="what the services set aside, and taking a message up again"
    ).add_subparsers(dest="set_aside_command", required=True)
    listed = set_aside.add_parser("list", help="every message set aside, with the reason")
    listed.add_argument("--service", choices=SERVICES, help="only this service")
    listed.add_argument("--by", required=True, help="staff id of the administrator who asks")
    retake = set_aside.add_parser(
        "take-up", help="handle a set-aside message again, once its cause is fixed (once only)"
    )
    retake.add_argument("service", choices=SERVICES)
    retake.add_argument("stream", help="as the list shows it, e.g. EVENTS or TIMERS")
    retake.add_argument("sequence", type=int, help="the message's sequence in that stream")
    retake.add_argument("--by", required=True, help="staff id of the administrator who asks")
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
    replay_ = audit.add_parser(
        "replay", help="the record as it happened: when, who and what, one line an event, as it is read"
    )
    replay_.add_argument("--json", action="store_true", help="one JSON object a line")
    replay_.add_argument("--complaint", help="only this complaint id")
    replay_.add_argument("--bundle", type=Path, help="an exported bundle or a proof, instead of the server")
    trust_help = "the trust file you pin (default: the data directory's, or the bundle's)"
    verify = audit.add_parser("verify", help="check every chain link and signature; exit 0 only if all hold")
    verify.add_argument("--bundle", type=Path, help="an exported bundle or a proof, instead of the server")
    verify.add_argument("--trust", type=Path, help=trust_help)
    verify.add_argument(
        "--strict",
        action="store_true",
        help="links not yet signed by a checkpoint fail too, however recent (by default the last "
        "KIZUKI_CHECKPOINT_SECONDS of each chain are reported as awaiting their checkpoint)",
    )
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
    analysis = commands.add_parser(
        "analysis", help="what patients complain about, per month or quarter, rebuilt from the record"
    )
    fhir = commands.add_parser(
        "fhir", help="FHIR R5 resources of the complaints' handling, a Bundle a period"
    )
    for command in (analysis, fhir):
        command.add_argument("--bundle", type=Path, help="an exported bundle, instead of the server")
        command.add_argument("--period", choices=PERIOD_KINDS, default="month")
        command.add_argument(
            "--since", type=_moment, help="complaints that occurred from then (ISO, UTC by default)"
        )
        command.add_argument("--until", type=_moment, help="complaints that occurred before then")
    shapes = analysis.add_mutually_exclusive_group()
    shapes.add_argument("--json", dest="form", action="store_const", const="json", help="one JSON document")
    shapes.add_argument("--csv", dest="form", action="store_const", const="csv", help="one figure a row")
    shapes.add_argument(
        "--board", type=Path, metavar="DIR", help="write the board report's charts and PDF here"
    )
    analysis.add_argument("--language", choices=get_args(Language), default="en", help="of the board report")
    fhir.add_argument("out", type=Path, help="the JSON file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = load_settings()
    if args.command in ("run", "provision"):
        _run_or_provision(settings, args)
    elif args.command in ("backup", "restore"):
        _backup_or_restore(settings, args)
    elif args.command == "rebuild":
        _rebuild(args.service)
    elif args.command == "permissions":
        from kizuki.provision import KEY_USES
        from kizuki.server_config import channels_with_credentials
        from shared.contracts import SUBSCRIPTIONS

        credentials = settings.nats_credentials
        channels = channels_with_credentials(credentials) if credentials is not None else []
        print_permissions(bus_permissions(SUBSCRIPTIONS, KEY_USES, channels), sys.stdout)
    elif args.command == "map":
        from kizuki.message_map import print_map
        from shared.contracts import CONTRACTS

        print_map(CONTRACTS, sys.stdout)
    elif args.command == "token" and args.staff_id == "revoke":
        _revoke(settings, args.id, args.staff)
    elif args.command == "staff":
        try:
            print_staff(load_directory(settings.directory_path), sys.stdout)
        except DirectoryError as error:
            sys.exit(f"kizuki: {error}")
    elif args.command == "token":
        _token(settings, args.staff_id, args.hours)
    elif args.command == "password":
        _set_password(settings, args.staff_id)
    elif args.command == "api-key":
        _api_key(settings, args.name, args.channel, args.heard_by)
    elif args.command == "channel-credential":
        _channel_credential(settings, args.channel)
    elif args.command == "erase":
        _erase(settings, args.complaint_id, args.by)
    elif args.command == "case":
        asyncio.run(_case(settings, args.complaint))
    elif args.command == "set-aside":
        _set_aside(settings, args)
    elif args.command == "import":
        _import(settings, args.file, args.channel, args.by)
    elif args.command == "intake" and args.intake_command == "qr":
        _qr(settings, args.department, args.out, args.base_url)
    elif args.command == "intake":
        asyncio.run(_reconcile(settings, args.since, args.json))
    elif args.command == "analysis":
        asyncio.run(_analysis(settings, args))
    elif args.command == "fhir":
        asyncio.run(_fhir(settings, args))
    else:
        sys.exit(0 if _audit(settings, args) else 1)


def _run_or_provision(settings: Settings, args: argparse.Namespace) -> None:
    from kizuki.launcher import run_system
    from kizuki.provision import provision_bus, provision_secrets

    with _keys_and_tokens():
        if args.command == "run":
            from kizuki.launcher import ReplicasRefused
            from shared.settings import parse_replicas

            try:
                replicas = settings.replicas | parse_replicas(args.replicas)
                run_system(replace(settings, replicas=replicas))
            except (SettingsError, ReplicasRefused) as refused:
                sys.exit(str(refused) if str(refused).startswith("kizuki:") else f"kizuki: {refused}")
        else:
            provision_secrets(settings)
            asyncio.run(
                provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR), settings.nats_replicas)
            )


def _api_key(settings: Settings, name: str, channels: list[Channel], heard_by: str) -> None:
    from shared.auth import issue_api_key

    directory = load_directory(settings.directory_path)
    with _keys_and_tokens():
        print(issue_api_key(settings.api_keys_path, name, channels, heard_by, directory))


# How long `kizuki channel-credential` waits for a running server to let the new channel in.
ADMISSION_SECONDS = 5.0


def _channel_credential(settings: Settings, channel: str) -> None:
    """The channel's seed among the bus users' credentials; the server takes it in at its next start."""
    from kizuki.server_config import make_channel_credential, public_key

    if channel not in load_policy(settings.policy_path).intake.bus_channels:
        sys.exit(f"kizuki: the policy declares no channel {channel!r}: add it to [intake.bus_channels] first")
    try:
        user, made = make_channel_credential(settings, channel)
    except ValueError as error:
        sys.exit(f"kizuki: {error}")
    print(
        f"kizuki: {user.seed_file} ({'made now' if made else 'made before, kept'}; public key "
        f"{public_key(user.seed_file)})"
    )
    print(
        f"kizuki: with it, {channel} may publish to {submission_subject(channel)} only, connected with the "
        f"inbox prefix {inbox_of(user)}; give its system a copy, readable by it alone"
    )
    if not settings.embedded_nats:
        print(f"kizuki: add the user {user.name} to your NATS server's configuration (`kizuki permissions`)")
    elif not _listening(settings.nats_port):
        print("kizuki: `kizuki run` takes it in when it starts")
    elif asyncio.run(_admitted(settings.bus_url, user, within=ADMISSION_SECONDS)):
        print(f"kizuki: the running nats-server lets {channel} in: it may publish now")
    else:
        sys.exit(
            f"kizuki: the running nats-server still refuses {channel} after {ADMISSION_SECONDS:g} s: "
            "restart `kizuki run`"
        )


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def _admitted(url: str, user: BusUser, within: float) -> bool:
    """Whether the server lets the user in, asked again until ``within`` seconds have passed: a
    running `kizuki run` has nats-server reload its users within a second of a new credential."""
    logging.getLogger("nats.aio.client").setLevel(logging.CRITICAL)  # each refusal until then is expected
    deadline = time.monotonic() + within
    while True:
        try:
            nc = await nats.connect(
                server_urls(url), nkeys_seed=str(user.seed_file), inbox_prefix=inbox_of(user),
                allow_reconnect=False, error_cb=_ignored,
            )  # fmt: skip
        except NatsError:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
            continue
        await nc.close()
        return True


async def _ignored(_: Exception) -> None:
    """A refusal the caller handles."""


def _set_aside(settings: Settings, args: argparse.Namespace) -> None:
    from kizuki.set_aside import list_set_aside, take_up

    token = _short_token(settings, args.by)
    if args.set_aside_command == "list":
        services = [args.service] if args.service else list(SERVICES)
        sys.exit(0 if list_set_aside(settings, token, services, sys.stdout) else 1)
    take_up(settings, token, args.service, args.stream, args.sequence)


def _backup_or_restore(settings: Settings, args: argparse.Namespace) -> None:
    from kizuki.backup import take_backup
    from kizuki.restore import restore_backup

    try:
        if args.command == "backup":
            facts = take_backup(settings, args.dir)
            print(
                f"kizuki: backup written to {args.dir}: the record up to sequence "
                f"{facts['record_last_sequence']}, the timers, the {facts['store']} stores, keys and secrets "
                "(owner-only: it holds keys)"
            )
        else:
            for note in restore_backup(settings, args.dir, args.force):
                print(f"kizuki: {note}")
    except (BackupRefused, SnapshotFailed, OSError, NatsError) as error:
        sys.exit(f"kizuki: {error}")


def _rebuild(service: str) -> None:
    from kizuki.rebuild import rebuild_store

    sys.exit(rebuild_store(service))


def _audit(settings: Settings, args: argparse.Namespace) -> bool:
    """Runs an audit command; a file that cannot be read is a clear error, exit status 2."""
    try:
        if args.audit_command == "replay":
            asyncio.run(_replay(settings, args.bundle, args.complaint, args.json))
            return True
        if args.audit_command == "verify":
            return asyncio.run(_verify(settings, args.bundle, args.trust, args.strict))
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
