"""``soko lineage NAME:VER``: where a version came from and what was made from it, as a tree.

Upstream: the run that logged the version, the versions that run used, the runs that
logged those, and so on. Downstream: the runs that used the version, the versions each of
them logged, the runs that used those. ``--depth`` bounds the number of runs on a path;
a node met again on the same path is marked, not walked twice.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soko.cli import catalog
from soko.cli.output import add_json_flag, print_json
from soko.errors import ValidationError

if TYPE_CHECKING:
    from soko.client.backend import Backend
    from soko.core.records import RunRecord, VersionRecord

DEFAULT_DEPTH = 3


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "lineage",
        help="show the runs and versions upstream and downstream of a version",
        description="Print NAME[:ALIAS|:vN]'s lineage as a tree: upstream (the run that "
        "logged it, what that run used, …) and downstream (the runs that used it, what they "
        "logged, …).",
    )
    parser.add_argument("name", metavar="NAME[:ALIAS|:vN]")
    parser.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"runs to follow on each path (default {DEFAULT_DEPTH})",
    )
    parser.add_argument(
        "--direction",
        choices=("both", "upstream", "downstream"),
        default="both",
        help="which side to show (default both)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=lineage_command)


@dataclass
class Node:
    """A version or a run in the tree; *label* is what the terminal shows."""

    kind: str
    label: str
    data: dict[str, Any]
    children: list[Node] = field(default_factory=list)
    repeated: bool = False
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, **self.data}
        if self.repeated:
            out["repeated"] = True
        if self.truncated:
            out["truncated"] = True
        out["children"] = [child.to_json() for child in self.children]
        return out


class _Walker:
    def __init__(self, backend: Backend, depth: int) -> None:
        self.backend = backend
        self.depth = depth

    def version(
        self, record: VersionRecord, *, upstream: bool, runs: int, path: frozenset[str]
    ) -> Node:
        node = Node("version", record.qualified_name, catalog.version_json(record))
        if record.id in path:
            node.repeated = True
            return node
        direction = "logged" if upstream else "used"
        found = self.backend.runs_of_version(record.id, direction)
        if found and runs >= self.depth:
            node.truncated = True
            return node
        for run in found:
            node.children.append(
                self.run(run, upstream=upstream, runs=runs + 1, path=path | {record.id})
            )
        return node

    def run(self, record: RunRecord, *, upstream: bool, runs: int, path: frozenset[str]) -> Node:
        verb = "logged by" if upstream else "used by"
        node = Node("run", f"{verb} {catalog.describe_run(record)}", catalog.run_json(record))
        if record.id in path:
            node.repeated = True
            return node
        direction = "used" if upstream else "logged"
        for version in self.backend.versions_of_run(record.id, direction):
            child = self.version(version, upstream=upstream, runs=runs, path=path | {record.id})
            child.label = f"{'used' if upstream else 'logged'} {child.label}"
            node.children.append(child)
        return node


def build(
    backend: Backend, record: VersionRecord, *, depth: int, direction: str
) -> dict[str, Node | None]:
    walker = _Walker(backend, depth)
    sides: dict[str, Node | None] = {"upstream": None, "downstream": None}
    for side in ("upstream", "downstream"):
        if direction in ("both", side):
            sides[side] = walker.version(
                record, upstream=side == "upstream", runs=0, path=frozenset()
            )
    return sides


def render(node: Node, prefix: str = "") -> list[str]:
    """The children of *node*, drawn with box characters below a line of *prefix*."""
    lines: list[str] = []
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        mark = " (again, see above)" if child.repeated else ""
        more = " (… --depth to see further)" if child.truncated else ""
        lines.append(f"{prefix}{'└── ' if last else '├── '}{child.label}{mark}{more}")
        lines += render(child, prefix + ("    " if last else "│   "))
    return lines


def lineage_command(args: argparse.Namespace) -> int:
    if args.depth < 1:
        raise ValidationError(f"--depth must be at least 1, not {args.depth}.")
    backend, record = catalog.resolve(args.name)
    sides = build(backend, record, depth=args.depth, direction=args.direction)
    if args.json:
        print_json(
            {
                "version": catalog.version_json(record),
                **{side: node.to_json()["children"] for side, node in sides.items() if node},
            }
        )
        return 0
    print(record.qualified_name)
    for side, node in sides.items():
        if node is None:
            continue
        heading = {
            "upstream": "Upstream (where it came from):",
            "downstream": "Downstream (what was made from it):",
        }[side]
        print(heading)
        lines = render(node, "  ")
        print("\n".join(lines) if lines else "  (none)")
    return 0
