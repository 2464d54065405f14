"""``soko artifact …``: put, get and cache cleanup here; listing, showing and changing
versions in :mod:`soko.cli.catalog` and :mod:`soko.cli.lifecycle`; link and unlink in
:mod:`soko.cli.registry`."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any
from urllib.parse import urlparse

from soko import settings as settings_module
from soko.cli import catalog, lifecycle, registry
from soko.cli.output import add_json_flag, counted, format_size, message, print_json
from soko.core.names import parse_artifact_path
from soko.errors import NotFoundError, PermissionDeniedError, ValidationError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "artifact",
        help="version, fetch, list and change artifacts",
        description="Work with artifacts.",
    )
    sub = parser.add_subparsers(dest="artifact_command", metavar="COMMAND", required=True)

    put = sub.add_parser(
        "put",
        help="log a folder, a file or a URI reference as a new version",
        description="Log PATH (a folder, a file, or a URI such as s3://bucket/prefix) as the "
        "next version of an artifact. Content equal to an existing version makes no new "
        "version: that version gains the aliases.",
    )
    put.add_argument("path", metavar="PATH")
    put.add_argument(
        "--name", "-n", default=None, help="[entity/project/]name (default: PATH's base name)"
    )
    put.add_argument("--type", "-t", default="dataset", help="artifact type (default: dataset)")
    put.add_argument(
        "--alias", "-a", action="append", default=[], help="an alias to add (repeatable)"
    )
    put.add_argument("--description", "-d", default=None)
    put.add_argument("--metadata", "-m", default=None, help="a JSON object")
    put.add_argument(
        "--policy",
        choices=("mutable", "immutable"),
        default="mutable",
        help="mutable (default): files are captured when added, later edits change nothing; "
        "immutable: they are read at upload and must not change before",
    )
    put.add_argument(
        "--skip-cache",
        "--skip_cache",
        action="store_true",
        help="accepted for W&B compatibility: a log never fills soko's download cache",
    )
    add_json_flag(put)
    put.set_defaults(handler=put_command)

    get = sub.add_parser(
        "get",
        help="download a version",
        description="Download NAME[:ALIAS|:vN] (alias latest by default). Files already in "
        "the folder and unchanged are kept; files of other versions are left there (and "
        "listed) unless --checkout.",
    )
    get.add_argument("name", metavar="NAME[:ALIAS|:vN]")
    get.add_argument("--root", default=None, help="folder to download into")
    get.add_argument("--type", "-t", default=None, help="fail unless the artifact has this type")
    get.add_argument(
        "--checkout",
        action="store_true",
        help="make the folder hold exactly this version: remove files it does not have",
    )
    get.add_argument(
        "--skip-cache",
        "--skip_cache",
        action="store_true",
        help="from a server, write straight into the folder, past the download cache",
    )
    add_json_flag(get)
    get.set_defaults(handler=get_command)

    catalog.register_artifact_commands(sub)
    lifecycle.register(sub)

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
    add_json_flag(cleanup)
    cleanup.set_defaults(handler=cache_cleanup_command)


# ----- put ----------------------------------------------------------------------------


def default_name(path: str) -> str:
    """The artifact name ``put`` gives PATH without ``--name``: its base name, as W&B."""
    if "://" in path:
        path = urlparse(path).path or urlparse(path).netloc
    name = os.path.basename(os.path.normpath(path)) if path else ""
    if not name or name in (".", "..", "/"):
        raise ValidationError(f"Cannot name an artifact after {path!r}: give --name.")
    return name


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
    from soko.client.connect import get_backend
    from soko.core.names import validate_aliases
    from soko.sdk.artifact import Artifact
    from soko.sdk.run import init

    path: str = args.path
    entity, project, name = _put_target(args.name or default_name(path))
    aliases = validate_aliases(args.alias)
    _require_writable()
    artifact = Artifact(
        name, args.type, description=args.description, metadata=_metadata(args.metadata)
    )
    if "://" in path:
        artifact.add_reference(path)
    elif os.path.isdir(path):
        artifact.add_dir(path, skip_cache=args.skip_cache, policy=args.policy)
    elif os.path.isfile(path):
        artifact.add_file(path, skip_cache=args.skip_cache, policy=args.policy)
    else:
        raise NotFoundError(f"No such file or directory: {path}")
    with init(entity=entity, project=project, job_type="cli", config={"path": path}) as run:
        run.log_artifact(artifact, aliases=aliases)
        artifact.wait()
        run_id = run.id
    assert artifact.id is not None
    record = get_backend().get_version(artifact.id)
    # A log of content the collection already holds returns that version: it was made by
    # another run (or by none), not by this one.
    new = record.created_by_run == run_id
    if args.json:
        print_json({**catalog.version_json(record), "new_version": new})
        return 0
    summary = (
        f"{counted(record.file_count, 'file')}, {format_size(record.size)}; "
        f"aliases: {', '.join(record.aliases)}"
    )
    if new:
        print(f"Logged {record.qualified_name} ({summary})")
    else:
        print(f"No new version: {record.qualified_name} holds the same content ({summary})")
    return 0


def _require_writable() -> None:
    """Refuse a log into an embedded store this account may only read, before a draft
    stores the first file into it."""
    from soko.client.connect import get_backend

    config = settings_module.load()
    if not config.base_url and getattr(get_backend(config), "read_only", False):
        raise PermissionDeniedError(
            f"The soko store at {config.soko_dir} is read-only for this account: it can be "
            "listed and downloaded from, not changed."
        )


# ----- get ----------------------------------------------------------------------------


def get_command(args: argparse.Namespace) -> int:
    from soko.sdk.api import Api
    from soko.sdk.transfer import files_under

    root: str | None = args.root
    if root is not None and os.path.exists(root) and not os.path.isdir(root):
        raise ValidationError(f"--root {root} is a file, not a folder.")
    config = settings_module.load()
    # A bad name is bad usage whether or not there is a store to look in.
    parse_artifact_path(
        args.name, entity=config.entity, project=config.project, default_selector="latest"
    )
    catalog.require_store()
    artifact = Api().artifact(args.name)
    if args.type is not None and artifact.type != args.type:
        # Bad input on the command line (exit 2); the SDK raises W&B's not-found error.
        raise ValidationError(
            f"type {args.type!r} specified but this artifact is of type {artifact.type!r}"
        )
    expected = {entry.path for entry in artifact.manifest}
    target = root if root is not None else catalog.default_root(artifact)
    extra = sorted(files_under(target) - expected) if os.path.isdir(target) else []
    if args.checkout:
        target = artifact.checkout(target)
        removed, extra = extra, []
    else:
        target = artifact.download(root=target, skip_cache=args.skip_cache)
        removed = []
    if args.json:
        print_json(
            {
                "name": artifact.qualified_name,
                "root": target,
                "files": len(expected),
                "left": extra,
                "removed": removed,
            }
        )
        return 0
    print(f"Downloaded {artifact.qualified_name} to {target}")
    if removed:
        message(
            f"Removed {counted(len(removed), 'file')} that {artifact.source_name} does not have."
        )
    if extra:
        shown = ", ".join(extra[:5]) + (", …" if len(extra) > 5 else "")
        message(
            f"Left {counted(len(extra), 'file')} in {target} that {artifact.source_name} "
            f"does not have ({shown}); --checkout removes them."
        )
    return 0


# ----- cache --------------------------------------------------------------------------


def cache_cleanup_command(args: argparse.Namespace) -> int:
    from soko.client.cache import BlobCache

    limit = settings_module.parse_size(args.size)
    config = settings_module.load()
    cache = BlobCache.from_settings(config)
    report = cache.cleanup(limit, remove_temp=args.remove_temp)
    if args.json:
        print_json(
            {
                "cache_dir": str(cache.root),
                "removed_files": report.removed_files,
                "freed_bytes": report.freed_bytes,
                "temp_files_removed": report.temp_files_removed,
                "remaining_bytes": report.remaining_bytes,
            }
        )
        return 0
    temp = f" and {report.temp_files_removed} temp files" if args.remove_temp else ""
    print(
        f"Removed {counted(report.removed_files, 'file')} ({format_size(report.freed_bytes)})"
        f"{temp} from {cache.root}; it now holds {format_size(report.remaining_bytes)}."
    )
    return 0
