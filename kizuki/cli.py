"""The `kizuki` command."""

from __future__ import annotations

import argparse
import asyncio
import sys

from kizuki.audit import print_json_lines, print_timelines, read_record
from kizuki.launcher import run_system
from kizuki.permissions import ADMINISTRATOR, AUDITOR, bus_permissions, print_permissions
from kizuki.provision import SUBSCRIPTIONS, provision_bus
from shared.bus import connect
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kizuki", description="Patient complaints that never get buried.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the whole system on this machine until Ctrl-C")
    commands.add_parser("provision", help="declare the streams and consumers on the NATS server")
    commands.add_parser(
        "permissions", help="what each NATS user may publish and subscribe to (JSON), for a cluster's config"
    )
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
    if args.command == "run":
        run_system(settings)
    elif args.command == "provision":
        asyncio.run(provision_bus(settings.bus_url, settings.bus_user(ADMINISTRATOR)))
    elif args.command == "permissions":
        print_permissions(bus_permissions(SUBSCRIPTIONS), sys.stdout)
    else:
        asyncio.run(_replay(settings, args.json, args.complaint))


if __name__ == "__main__":
    main()
