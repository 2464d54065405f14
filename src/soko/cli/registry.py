"""``soko registry ls/create/show`` and ``soko artifact link/unlink``: registries from the
command line, through the same SDK calls as ``soko.Api()``."""

from __future__ import annotations

import argparse
from typing import Any

from soko.cli.output import message, print_json, print_table


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "registry",
        help="list, create and show registries",
        description="Registries of the organisation (see docs/registry.md).",
    )
    sub = parser.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)

    ls = sub.add_parser("ls", help="list the registries", description="List the registries.")
    ls.add_argument("--organization", "--org", default=None, help="the organisation")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=ls_command)

    create = sub.add_parser("create", help="create a registry", description="Create registry NAME.")
    create.add_argument("name", metavar="NAME", help="the name, without wandb-registry-")
    create.add_argument(
        "--visibility", choices=["organization", "restricted"], default="organization"
    )
    create.add_argument("--description", "-d", default=None)
    create.add_argument(
        "--type", "-t", action="append", default=[], help="an allowed type (repeatable)"
    )
    create.add_argument("--organization", "--org", default=None, help="the organisation")
    create.set_defaults(handler=create_command)

    show = sub.add_parser(
        "show",
        help="show a registry and its collections",
        description="Show registry NAME and the links of each of its collections.",
    )
    show.add_argument("name", metavar="NAME")
    show.add_argument("--organization", "--org", default=None, help="the organisation")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=show_command)


def register_artifact_commands(sub: Any) -> None:
    """``soko artifact link`` and ``soko artifact unlink``."""
    link = sub.add_parser(
        "link",
        help="link a version into a registry collection",
        description="Link NAME:VERSION into TARGET, wandb-registry-<registry>/<collection>.",
    )
    link.add_argument("name", metavar="NAME[:ALIAS|:vN]")
    link.add_argument("target", metavar="TARGET")
    link.add_argument(
        "--alias", "-a", action="append", default=[], help="an alias of the link (repeatable)"
    )
    link.set_defaults(handler=link_command)

    unlink = sub.add_parser(
        "unlink",
        help="remove a link from a registry collection",
        description="Remove the link TARGET:VERSION (e.g. wandb-registry-model/coll:v0).",
    )
    unlink.add_argument("name", metavar="LINK[:ALIAS|:vN]")
    unlink.set_defaults(handler=unlink_command)


def _registry_json(registry: Any) -> dict[str, Any]:
    return {
        "name": registry.name,
        "full_name": registry.full_name,
        "organization": registry.organization,
        "visibility": registry.visibility,
        "description": registry.description,
        "artifact_types": registry.artifact_types,
        "created_at": registry.created_at,
    }


def ls_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    found = Api().registries(organization=args.organization)
    if args.json:
        print_json([_registry_json(r) for r in found])
        return 0
    print_table(
        ["NAME", "VISIBILITY", "TYPES", "DESCRIPTION"],
        [
            [r.name, r.visibility, ",".join(r.artifact_types) or "any", r.description or ""]
            for r in found
        ],
    )
    return 0


def create_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    registry = Api().create_registry(
        args.name,
        visibility=args.visibility,
        organization=args.organization,
        description=args.description,
        artifact_types=args.type,
    )
    message(f"Created registry {registry.organization}/{registry.full_name}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    registry = Api().registry(args.name, organization=args.organization)
    collections = [
        {
            "name": c.name,
            "type": c.type,
            "tags": c.tags,
            "links": [
                {"version": a.version, "aliases": a.aliases, "source": a.source_qualified_name}
                for a in c.artifacts()
            ],
        }
        for c in registry.collections()
    ]
    if args.json:
        print_json({**_registry_json(registry), "collections": collections})
        return 0
    print(f"{registry.organization}/{registry.full_name} ({registry.visibility})")
    if registry.description:
        print(registry.description)
    rows = [
        [f"{c['name']}:{link['version']}", ",".join(link["aliases"]), link["source"]]
        for c in collections
        for link in c["links"]
    ]
    print_table(["LINK", "ALIASES", "SOURCE"], rows)
    return 0


def link_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    linked = Api().artifact(args.name).link(args.target, aliases=args.alias)
    message(f"Linked {linked.source_qualified_name} as {linked.qualified_name}")
    return 0


def unlink_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    link = Api().artifact(args.name)
    name = link.qualified_name
    link.unlink()
    message(f"Unlinked {name}")
    return 0
