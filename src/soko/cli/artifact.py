"""``soko artifact …``: put, get, ls, versions, diff, link, unlink and cache cleanup."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from soko import settings as settings_module
from soko.cli import registry
from soko.cli.output import format_size, message, print_json, print_table
from soko.client.backend import Catalog
from soko.core.manifest import Manifest
from soko.core.names import parse_artifact_path, validate_project
from soko.core.records import VersionRecord
from soko.errors import NotFoundError, ValidationError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "artifact", help="version, fetch and list artifacts", description="Work with artifacts."
    )
    sub = parser.add_subparsers(dest="artifact_command", metavar="COMMAND", required=True)

    put = sub.add_parser(
        "put",
        help="log a folder, a file or a URI reference as a new version",
        description="Log PATH (a folder, a file, or a URI such as s3://bucket/prefix) as the "
        "next version of an artifact.",
    )
    put.add_argument("path", metavar="PATH")
    put.add_argument("--name", "-n", required=True, help="[entity/project/]name of the artifact")
    put.add_argument("--type", "-t", required=True, help="artifact type (dataset, model, …)")
    put.add_argument(
        "--alias", "-a", action="append", default=[], help="an alias to add (repeatable)"
    )
    put.add_argument("--description", "-d", default=None)
    put.add_argument("--metadata", "-m", default=None, help="a JSON object")
    put.set_defaults(handler=put_command)

    get = sub.add_parser(
        "get",
        help="download a version",
        description="Download NAME[:ALIAS|:vN] (alias latest by default).",
    )
    get.add_argument("name", metavar="NAME[:ALIAS|:vN]")
    get.add_argument("--root", default=None, help="folder to download into")
    get.add_argument("--type", "-t", default=None, help="fail unless the artifact has this type")
    get.set_defaults(handler=get_command)

    ls = sub.add_parser(
        "ls", help="list the artifacts of a project", description="List artifact collections."
    )
    ls.add_argument("project", metavar="[ENTITY/]PROJECT")
    ls.add_argument("--type", "-t", default=None, help="only artifacts of this type")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=ls_command)

    versions = sub.add_parser(
        "versions",
        help="list the versions of an artifact",
        description="List the committed versions of [entity/][project/]name.",
    )
    versions.add_argument("name", metavar="NAME")
    versions.add_argument("--json", action="store_true", help="print JSON")
    versions.set_defaults(handler=versions_command)

    diff = sub.add_parser(
        "diff",
        help="compare two versions",
        description="List the paths added, removed and changed from NAME:A to NAME:B.",
    )
    diff.add_argument("first", metavar="NAME:A")
    diff.add_argument("second", metavar="NAME:B")
    diff.add_argument("--json", action="store_true", help="print JSON")
    diff.set_defaults(handler=diff_command)

    registry.register_artifact_commands(sub)

    cache = sub.add_parser("cache", help="manage the download cache")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="COMMAND", required=True)
    cleanup = cache_sub.add_parser(
        "cleanup",
        help="shrink the cache to SIZE",
        description="Remove least recently used files until the cache holds at most SIZE "
        "(e.g. 500MB, 2GiB, 0).",
    )
    cleanup.add_argument("size", metavar="SIZE")
    cleanup.add_argument("--remove-temp", action="store_true", help="also remove temporary files")
    cleanup.set_defaults(handler=cache_cleanup_command)


# ----- put ----------------------------------------------------------------------------


def _put_target(text: str) -> tuple[str, str, str]:
    config = settings_module.load()
    if ":" in text:
        raise ValidationError(
            f"Invalid artifact name {text!r}: put takes [entity/project/]name; aliases go in "
            "--alias."
        )
    entity, project, name, _ = parse_artifact_path(
        text, entity=config.entity, project=config.project, default_selector=None
    )
    return entity, project, name


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--metadata is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError("--metadata must be a JSON object, e.g. '{\"rows\": 100}'.")
    return value


def put_command(args: argparse.Namespace) -> int:
    from soko.sdk.artifact import Artifact
    from soko.sdk.run import init

    entity, project, name = _put_target(args.name)
    artifact = Artifact(
        name, args.type, description=args.description, metadata=_metadata(args.metadata)
    )
    path: str = args.path
    if "://" in path:
        artifact.add_reference(path)
    elif os.path.isdir(path):
        artifact.add_dir(path)
    elif os.path.isfile(path):
        artifact.add_file(path)
    else:
        raise NotFoundError(f"No such file or directory: {path}")
    with init(entity=entity, project=project, job_type="cli", config={"path": path}) as run:
        run.log_artifact(artifact, aliases=args.alias)
        artifact.wait()
    aliases = ", ".join(artifact.aliases)
    print(
        f"Logged {artifact.qualified_name} ({artifact.file_count} files, "
        f"{format_size(artifact.size)}; aliases: {aliases})"
    )
    return 0


# ----- get ----------------------------------------------------------------------------


def get_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api

    artifact = Api().artifact(args.name, type=args.type)
    root = artifact.download(root=args.root)
    print(f"Downloaded {artifact.qualified_name} to {root}")
    return 0


# ----- ls and versions ----------------------------------------------------------------


def _backend() -> Catalog:
    from soko.client.connect import get_backend

    return get_backend()


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
    backend = _backend()
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


def _version_json(record: VersionRecord) -> dict[str, Any]:
    return {
        "name": f"{record.collection}:{record.version}",
        "qualified_name": record.qualified_name,
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
    }


def versions_command(args: argparse.Namespace) -> int:
    config = settings_module.load()
    if ":" in args.name:
        raise ValidationError(
            f"Invalid artifact name {args.name!r}: versions takes [entity/][project/]name."
        )
    entity, project, name, _ = parse_artifact_path(
        args.name, entity=config.entity, project=config.project, default_selector=None
    )
    records = _backend().list_versions(entity, project, name)
    if args.json:
        print_json([_version_json(r) for r in records])
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


def _resolve(text: str) -> tuple[VersionRecord, Manifest]:
    config = settings_module.load()
    entity, project, name, selector = parse_artifact_path(
        text, entity=config.entity, project=config.project, default_selector="latest"
    )
    backend = _backend()
    record = backend.resolve(entity, project, name, selector or "latest")
    return record, backend.manifest(record)


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
    first, first_manifest = _resolve(args.first)
    second, second_manifest = _resolve(args.second)
    changes = manifest_diff(first_manifest, second_manifest)
    if args.json:
        print_json({"from": first.qualified_name, "to": second.qualified_name, **changes})
        return 0
    for marker, key in (("+", "added"), ("-", "removed"), ("~", "changed")):
        for path in changes[key]:
            print(f"{marker} {path}")
    counts = ", ".join(f"{len(changes[k])} {k}" for k in ("added", "removed", "changed"))
    message(f"{first.qualified_name} -> {second.qualified_name}: {counts}")
    return 0


# ----- cache --------------------------------------------------------------------------


def cache_cleanup_command(args: argparse.Namespace) -> int:
    from soko.client.cache import BlobCache

    limit = settings_module.parse_size(args.size)
    config = settings_module.load()
    cache = BlobCache.from_settings(config)
    report = cache.cleanup(limit, remove_temp=args.remove_temp)
    temp = f" and {report.temp_files_removed} temp files" if args.remove_temp else ""
    print(
        f"Removed {report.removed_files} files ({format_size(report.freed_bytes)}){temp} from "
        f"{cache.root}; it now holds {format_size(report.remaining_bytes)}."
    )
    return 0
