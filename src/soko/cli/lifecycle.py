"""Changing versions: ``soko artifact delete``, ``alias add|rm`` and ``tag add|rm``.

Each names one version with an explicit selector (``NAME:vN`` or ``NAME:ALIAS``): a change
is never applied to ``latest`` by default. The changes go through the Backend's
``update_version`` and ``delete_version``, the calls ``Artifact.save()`` and
``Artifact.delete()`` make, so they work alike on the embedded store and on a server.
"""

from __future__ import annotations

import argparse
from typing import Any

from soko.cli import catalog
from soko.cli.output import add_json_flag, print_json
from soko.core.names import is_version_alias, validate_aliases, validate_tags
from soko.errors import ValidationError

MANAGED_ALIAS = "latest"


def register(sub: Any) -> None:
    delete = sub.add_parser(
        "delete",
        help="delete a version (its files are freed by the next gc)",
        description="Delete NAME:vN (or NAME:ALIAS). Refused while aliases other than latest "
        "point at it, unless --delete-aliases; latest moves to the newest version left.",
    )
    delete.add_argument("name", metavar="NAME:VERSION")
    delete.add_argument("--delete-aliases", action="store_true", help="delete it with its aliases")
    add_json_flag(delete)
    delete.set_defaults(handler=delete_command)

    for noun, words in (("alias", "aliases"), ("tag", "tags")):
        group = sub.add_parser(noun, help=f"add or remove {words} of a version")
        actions = group.add_subparsers(dest=f"{noun}_command", metavar="COMMAND", required=True)
        for verb, helptext in (("add", f"add {words}"), ("rm", f"remove {words}")):
            action = actions.add_parser(
                verb,
                aliases=["remove"] if verb == "rm" else [],
                help=helptext,
                description=f"{helptext.capitalize()} of NAME:vN (or NAME:ALIAS).",
            )
            action.add_argument("name", metavar="NAME:VERSION")
            action.add_argument(noun, metavar=noun.upper(), nargs="+")
            add_json_flag(action)
            action.set_defaults(handler=change_command, noun=noun, verb=verb)


def _explicit(text: str) -> str:
    if ":" not in text:
        raise ValidationError(
            f"Name the version to change: {text}:vN or {text}:ALIAS (nothing is changed "
            "on latest by default)."
        )
    return text


def delete_command(args: argparse.Namespace) -> int:
    backend, record = catalog.resolve(_explicit(args.name))
    held = [a for a in record.aliases if a != MANAGED_ALIAS]
    if held and not args.delete_aliases:
        raise ValidationError(
            f"{record.qualified_name} still has aliases {', '.join(held)}; pass "
            "--delete-aliases to delete it with them."
        )
    backend.delete_version(record.id, delete_aliases=args.delete_aliases)
    if args.json:
        print_json({**catalog.version_json(record), "deleted": True})
        return 0
    print(f"Deleted {record.qualified_name}; `soko gc` frees the files no version needs.")
    return 0


def _check_aliases(values: list[str]) -> list[str]:
    aliases = validate_aliases(values)
    for alias in aliases:
        if alias == MANAGED_ALIAS:
            raise ValidationError(
                "The alias latest is managed by soko: it follows the newest version."
            )
        if is_version_alias(alias):
            raise ValidationError(
                f"{alias!r} is a version number, not an alias: versions are named vN by soko."
            )
    return aliases


def change_command(args: argparse.Namespace) -> int:
    backend, record = catalog.resolve(_explicit(args.name))
    noun: str = args.noun
    adding = args.verb == "add"
    if noun == "alias":
        given = _check_aliases(args.alias)
        current = [a for a in record.aliases if a != MANAGED_ALIAS]
    else:
        given = validate_tags(args.tag)
        current = list(record.tags)
    if adding:
        wanted = current + [v for v in given if v not in current]
    else:
        absent = [v for v in given if v not in current]
        if absent:
            raise ValidationError(
                f"{record.qualified_name} has no {noun} {', '.join(map(repr, absent))}."
            )
        wanted = [v for v in current if v not in given]
    field = "aliases_to_set" if noun == "alias" else "tags_to_set"
    updated = backend.update_version(record.id, **{field: wanted})
    if args.json:
        print_json(catalog.version_json(updated))
        return 0
    values = updated.aliases if noun == "alias" else updated.tags
    words = "aliases" if noun == "alias" else "tags"
    print(f"{updated.qualified_name} {words}: {', '.join(values) or 'none'}")
    return 0
