"""Reading the catalog: ``soko artifact ls|versions|diff|show`` and ``soko projects``.

Reading never creates a store: on the embedded store, a ``SOKO_DIR`` without one is "not
found" (``projects``: an empty list), not a new empty database.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from soko import settings as settings_module
from soko.cli.output import (
    add_json_flag,
    counted,
    format_size,
    message,
    print_json,
    print_table,
)
from soko.core.names import parse_artifact_path, validate_project
from soko.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from soko.client.backend import Backend
    from soko.core.manifest import Manifest
    from soko.core.records import RunRecord, VersionRecord
    from soko.sdk.artifact import Artifact

SHOWN_FILES = 50
"""Files ``show`` lists before it says how many more (``--json`` lists them all)."""


def register(commands: Any) -> None:
    projects = commands.add_parser(
        "projects",
        help="list the projects of the store or server",
        description="List the projects that hold artifacts or runs (on a server: those the "
        "key may read).",
    )
    projects.add_argument("--entity", "-e", default=None, help="only this entity's projects")
    add_json_flag(projects)
    projects.set_defaults(handler=projects_command)


def register_artifact_commands(sub: Any) -> None:
    ls = sub.add_parser(
        "ls", help="list the artifacts of a project", description="List artifact collections."
    )
    ls.add_argument("project", metavar="[ENTITY/]PROJECT")
    ls.add_argument("--type", "-t", default=None, help="only artifacts of this type")
    add_json_flag(ls)
    ls.set_defaults(handler=ls_command)

    versions = sub.add_parser(
        "versions",
        help="list the versions of an artifact",
        description="List the committed versions of [entity/][project/]name.",
    )
    versions.add_argument("name", metavar="NAME")
    add_json_flag(versions)
    versions.set_defaults(handler=versions_command)

    diff = sub.add_parser(
        "diff",
        help="compare two versions",
        description="List the paths added, removed and changed from NAME:A to NAME:B.",
    )
    diff.add_argument("first", metavar="NAME:A")
    diff.add_argument("second", metavar="NAME:B")
    add_json_flag(diff)
    diff.set_defaults(handler=diff_command)

    show = sub.add_parser(
        "show",
        help="show one version: metadata, files, aliases, the runs that logged and used it",
        description="Show NAME[:ALIAS|:vN] (latest by default).",
    )
    show.add_argument("name", metavar="NAME[:ALIAS|:vN]")
    add_json_flag(show)
    show.set_defaults(handler=show_command)


# ----- the backend, read ---------------------------------------------------------------


def require_store(missing: str | None = None) -> None:
    """NotFoundError when soko would read the embedded store and SOKO_DIR holds none; its
    message starts with *missing* (what the user asked for) when given."""
    config = settings_module.load()
    if not config.base_url and not (config.soko_dir / "soko.db").is_file():
        where = (
            f"no soko store at {config.soko_dir}: nothing has been logged there yet (set "
            "SOKO_DIR to a store's folder, or `soko login` to a server)."
        )
        raise NotFoundError(f"{missing}: {where}" if missing else where[0].upper() + where[1:])


def read_backend(missing: str | None = None) -> Backend:
    """The backend to read from; never creates an embedded store."""
    from soko.client.connect import get_backend

    require_store(missing)
    return get_backend()


def resolve(text: str, *, default_selector: str = "latest") -> tuple[Backend, VersionRecord]:
    """The version ``[entity/][project/]name[:alias|:vN]`` names."""
    config = settings_module.load()
    entity, project, name, selector = parse_artifact_path(
        text, entity=config.entity, project=config.project, default_selector=default_selector
    )
    backend = read_backend()
    return backend, backend.resolve(entity, project, name, selector or default_selector)


def default_root(artifact: Artifact) -> str:
    from soko.sdk.transfer import default_root as root_of

    return root_of(artifact.collection_name, artifact.version)


def version_json(record: VersionRecord) -> dict[str, Any]:
    return {
        "name": f"{record.collection}:{record.version}",
        "qualified_name": record.qualified_name,
        "id": record.id,
        "version": record.version,
        "type": record.type,
        "aliases": record.aliases,
        "tags": record.tags,
        "digest": record.digest,
        "size": record.size,
        "file_count": record.file_count,
        "created_at": record.created_at.isoformat(),
        "description": record.description,
        "metadata": record.metadata,
        "ttl_seconds": record.ttl_seconds,
    }


def run_json(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "path": f"{record.entity}/{record.project}/{record.id}",
        "name": record.name,
        "job_type": record.job_type,
        "state": record.state,
        "created_at": record.created_at.isoformat(),
    }


def describe_run(record: RunRecord) -> str:
    job = f", job {record.job_type}" if record.job_type else ""
    return f"run {record.entity}/{record.project}/{record.id} ({record.state}{job})"


# ----- projects ------------------------------------------------------------------------


def projects_command(args: argparse.Namespace) -> int:
    entity = validate_project(args.entity) if args.entity else None
    config = settings_module.load()
    if not config.base_url and not (config.soko_dir / "soko.db").is_file():
        records = []
    else:
        records = read_backend().list_projects(entity)
    if args.json:
        print_json(
            [
                {"entity": p.entity, "name": p.name, "created_at": p.created_at.isoformat()}
                for p in records
            ]
        )
        return 0
    if not records:
        where = config.base_url or f"the embedded store at {config.soko_dir}"
        message(f"No projects{f' of {entity}' if entity else ''} in {where}.")
        return 0
    print_table(
        ["ENTITY", "PROJECT", "CREATED"],
        [[p.entity, p.name, p.created_at.strftime("%Y-%m-%d %H:%M")] for p in records],
    )
    return 0


# ----- ls and versions ----------------------------------------------------------------


def _project_path(text: str) -> tuple[str, str]:
    config = settings_module.load()
    parts = text.split("/")
    if len(parts) == 1:
        entity, project = config.entity, parts[0]
    elif len(parts) == 2:
        entity, project = parts
    else:
        raise ValidationError(f"Invalid project {text!r}: expected [entity/]project.")
    return validate_project(entity), validate_project(project)


def ls_command(args: argparse.Namespace) -> int:
    entity, project = _project_path(args.project)
    backend = read_backend(f"Project {entity}/{project} does not exist")
    known = {(p.entity, p.name) for p in backend.list_projects(entity)}
    if (entity, project) not in known:
        raise NotFoundError(f"Project {entity}/{project} does not exist.")
    records = backend.list_collections(entity, project, args.type)
    if args.json:
        print_json(
            [
                {
                    "name": r.name,
                    "type": r.type,
                    "kind": r.kind,
                    "versions": r.version_count,
                    "aliases": sorted(set(r.aliases)),
                    "created_at": r.created_at.isoformat(),
                }
                for r in records
            ]
        )
        return 0
    if not records:
        kind = f" of type {args.type}" if args.type else ""
        message(f"No artifacts{kind} in {entity}/{project}.")
        return 0
    print_table(
        ["NAME", "TYPE", "VERSIONS", "ALIASES", "CREATED"],
        [
            [
                r.name,
                r.type,
                str(r.version_count),
                ",".join(sorted(set(r.aliases))),
                r.created_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for r in records
        ],
    )
    return 0


def versions_command(args: argparse.Namespace) -> int:
    config = settings_module.load()
    if ":" in args.name:
        raise ValidationError(
            f"Invalid artifact name {args.name!r}: versions takes [entity/][project/]name."
        )
    entity, project, name, _ = parse_artifact_path(
        args.name, entity=config.entity, project=config.project, default_selector=None
    )
    records = read_backend().list_versions(entity, project, name)
    if args.json:
        print_json([version_json(r) for r in records])
        return 0
    print_table(
        ["VERSION", "ALIASES", "DIGEST", "FILES", "SIZE", "CREATED"],
        [
            [
                r.version,
                ",".join(r.aliases),
                r.digest,
                str(r.file_count),
                format_size(r.size),
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            ]
            for r in records
        ],
    )
    return 0


# ----- diff ---------------------------------------------------------------------------


def manifest_diff(old: Manifest, new: Manifest) -> dict[str, list[str]]:
    """Paths only in *new* (added), only in *old* (removed), and in both with other content."""
    old_paths = {e.path: e for e in old}
    new_paths = {e.path: e for e in new}
    changed = [
        path
        for path, entry in new_paths.items()
        if path in old_paths
        and (old_paths[path].digest, old_paths[path].ref) != (entry.digest, entry.ref)
    ]
    return {
        "added": sorted(new_paths.keys() - old_paths.keys()),
        "removed": sorted(old_paths.keys() - new_paths.keys()),
        "changed": sorted(changed),
    }


def diff_command(args: argparse.Namespace) -> int:
    backend, first = resolve(args.first)
    _, second = resolve(args.second)
    changes = manifest_diff(backend.manifest(first), backend.manifest(second))
    if args.json:
        print_json({"from": first.qualified_name, "to": second.qualified_name, **changes})
        return 0
    for marker, key in (("+", "added"), ("-", "removed"), ("~", "changed")):
        for path in changes[key]:
            print(f"{marker} {path}")
    counts = ", ".join(f"{len(changes[k])} {k}" for k in ("added", "removed", "changed"))
    message(f"{first.qualified_name} -> {second.qualified_name}: {counts}")
    return 0


# ----- show ---------------------------------------------------------------------------


def show_command(args: argparse.Namespace) -> int:
    import json

    backend, record = resolve(args.name)
    manifest = backend.manifest(record)
    logged_by = backend.runs_of_version(record.id, "logged")
    used_by = backend.runs_of_version(record.id, "used")
    files: list[dict[str, Any]] = [
        {"path": e.path, "size": e.size, "digest": e.digest, "ref": e.ref} for e in manifest
    ]
    if args.json:
        print_json(
            {
                **version_json(record),
                "logged_by": run_json(logged_by[0]) if logged_by else None,
                "used_by": [run_json(r) for r in used_by],
                "files": files,
            }
        )
        return 0
    rows = [
        ("Type", record.type),
        ("Aliases", ", ".join(record.aliases) or "none"),
        ("Tags", ", ".join(record.tags) or "none"),
        ("Digest", record.digest),
        ("Size", f"{format_size(record.size)} in {counted(record.file_count, 'file')}"),
        ("Created", record.created_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
    ]
    if record.description:
        rows.append(("Description", record.description))
    if record.ttl_seconds is not None:
        rows.append(("TTL", f"{record.ttl_seconds} s"))
    if record.metadata:
        rows.append(("Metadata", json.dumps(record.metadata, sort_keys=True, default=str)))
    rows.append(("Logged by", describe_run(logged_by[0]) if logged_by else "no run"))
    rows.append(("Used by", "none" if not used_by else describe_run(used_by[0])))
    rows += [("", describe_run(r)) for r in used_by[1:]]
    print(record.qualified_name)
    for label, value in rows:
        print(f"  {label + ':' if label else '':<13}{value}")
    print(f"  Files ({len(files)}):")
    for entry in files[:SHOWN_FILES]:
        what = entry["ref"] if entry["ref"] else format_size(entry["size"])
        print(f"    {entry['path']}  {what}")
    if len(files) > SHOWN_FILES:
        print(f"    … and {len(files) - SHOWN_FILES} more (--json lists them all)")
    return 0
