"""``soko automation ls/add/rm/enable/disable/deliveries``: webhooks on events of a project
or registry, through the same SDK calls as ``soko.Api()``."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from soko.cli.output import message, print_json, print_table
from soko.errors import NotFoundError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "automation",
        help="list, add and remove webhooks on events",
        description="Webhooks called on events of a project or registry (see docs/registry.md).",
    )
    sub = parser.add_subparsers(dest="automation_command", metavar="COMMAND", required=True)
    project_help = "[entity/]project, or wandb-registry-<name> (default: the default project)"

    ls = sub.add_parser("ls", help="list the automations", description="List the automations.")
    ls.add_argument("--project", "-p", default=None, help=project_help)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=ls_command)

    add = sub.add_parser(
        "add",
        help="call a webhook on an event",
        description="Call URL on EVENT; prints the automation with its signing secret.",
    )
    add.add_argument("event", metavar="EVENT", choices=["version_created", "alias_added"])
    add.add_argument("url", metavar="URL")
    add.add_argument("--project", "-p", default=None, help=project_help)
    add.add_argument("--collection", "-c", default=None, help="only this collection's events")
    add.add_argument("--secret", default=None, help="the signing secret (default: a new one)")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(handler=add_command)

    rm = sub.add_parser("rm", help="remove an automation", description="Remove automation ID.")
    rm.add_argument("id", metavar="ID")
    rm.add_argument("--project", "-p", default=None, help=project_help)
    rm.set_defaults(handler=rm_command)

    for verb, enabled, doing in (
        ("enable", True, "send webhooks again"),
        ("disable", False, "stop sending webhooks; what is pending waits"),
    ):
        switch = sub.add_parser(
            verb,
            help=f"{verb} an automation",
            description=f"{verb.capitalize()} automation ID: {doing}.",
        )
        switch.add_argument("id", metavar="ID")
        switch.add_argument("--project", "-p", default=None, help=project_help)
        switch.set_defaults(handler=switch_command, enabled=enabled)

    deliveries = sub.add_parser(
        "deliveries",
        help="list an automation's deliveries",
        description="List the deliveries of automation ID, newest first.",
    )
    deliveries.add_argument("id", metavar="ID")
    deliveries.add_argument("--project", "-p", default=None, help=project_help)
    deliveries.add_argument("--status", choices=["pending", "delivered", "failed"], default=None)
    deliveries.add_argument("--json", action="store_true", help="print JSON")
    deliveries.set_defaults(handler=deliveries_command)


def _json(record: Any) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in data.items()}


def ls_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    found = Api().automations(args.project)
    if args.json:
        print_json([_json(a) for a in found])
        return 0
    print_table(
        ["ID", "EVENT", "SCOPE", "URL", "ENABLED"],
        [
            [
                a.id,
                a.event,
                f"{a.project}/{a.collection or '*'}",
                a.url,
                "yes" if a.enabled else "no",
            ]
            for a in found
        ],
    )
    return 0


def add_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    made = Api().create_automation(
        args.event, args.url, project=args.project, collection=args.collection, secret=args.secret
    )
    if args.json:
        print_json(_json(made))
        return 0
    message(f"Added automation {made.id}: {made.event} -> {made.url}")
    print(f"secret: {made.secret}")
    return 0


def rm_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    Api().delete_automation(args.id, project=args.project)
    message(f"Removed automation {args.id}")
    return 0


def switch_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    api = Api()
    found = [a for a in api.automations(args.project) if a.id == args.id]
    if not found:
        raise NotFoundError(f"No automation with id {args.id!r} in that project.")
    automation = found[0]
    automation.enabled = args.enabled
    api.update_automation(automation)
    message(f"{'Enabled' if args.enabled else 'Disabled'} automation {args.id}")
    return 0


def deliveries_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    found = Api().deliveries(args.id, project=args.project, status=args.status)
    if args.json:
        print_json([_json(d) for d in found])
        return 0
    print_table(
        ["EVENT ID", "EVENT", "STATUS", "ATTEMPTS", "CODE", "LATENCY", "ERROR"],
        [
            [
                d.event_id,
                d.event,
                d.status,
                str(d.attempts),
                "" if d.last_status_code is None else str(d.last_status_code),
                "" if d.last_latency_ms is None else f"{d.last_latency_ms:.0f} ms",
                d.last_error or "",
            ]
            for d in found
        ],
    )
    return 0
