"""``soko admin``: manage a soko server through its API, with a server admin's key.

Users (add, list, disable, enable), API keys (create, printed once; list; revoke; an
expiry), grants (a role per entity or project), and server maintenance (``gc``, ``verify``,
``usage`` per project), each with ``--json`` for scripts. The server is ``--host`` (or the
one of ``soko login`` / ``SOKO_BASE_URL``), the key ``--key`` (or ``SOKO_API_KEY`` / the
one of ``soko login``). Errors are the server's, one line, with the exit codes of
:mod:`soko.cli.main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from soko import settings as settings_module
from soko.cli.output import format_size, parse_duration, print_json, print_table
from soko.errors import StoreError, ValidationError

_SCOPE_HELP = (
    "ENTITY/PROJECT, ENTITY (all its projects), registry:NAME (a registry of the default "
    "organisation) or ORGANISATION/registry:NAME"
)
_REGISTRY = "registry:"

_MAINTENANCE_TIMEOUT = 24 * 3600.0
"""gc and verify answer when they are done: a large store takes a while."""


def register(commands: Any) -> None:
    admin = commands.add_parser(
        "admin",
        help="manage a soko server: users, keys, grants, gc, verify, usage",
        description="Manage a soko server through its API with a server admin's key. "
        "Every command takes --host, --key and --json.",
    )
    groups = admin.add_subparsers(dest="admin_group", metavar="GROUP", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default=None, help="the server's URL (default: soko login's)")
    common.add_argument("--key", default=None, help="a server admin's API key")
    common.add_argument("--json", action="store_true", help="print the answer as JSON")

    def command(
        group: Any, name: str, handler: Callable[..., int], help_text: str
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        parser.set_defaults(handler=handler)
        return parser

    users = groups.add_parser("users", help="add, list, disable and enable users")
    user_commands = users.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    command(user_commands, "list", _users_list, "list the server's users")
    add = command(user_commands, "add", _users_add, "add a user (then: keys create USER)")
    add.add_argument("name", metavar="USER")
    add.add_argument("--admin", action="store_true", help="make a server admin")
    for name, verb in (("disable", "refuse every key of USER"), ("enable", "enable USER again")):
        command(user_commands, name, _users_disable, verb).add_argument("name", metavar="USER")

    keys = groups.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    create = command(key_commands, "create", _keys_create, "a new key for USER, printed once")
    create.add_argument("user", metavar="USER")
    create.add_argument(
        "--expires", default=None, metavar="DURATION", help="refuse the key after (e.g. 90d)"
    )
    command(key_commands, "list", _keys_list, "USER's keys (ids, never secrets)").add_argument(
        "user", metavar="USER"
    )
    command(key_commands, "revoke", _keys_revoke, "revoke a key by its id").add_argument(
        "key_id", metavar="KEY_ID"
    )

    grants = groups.add_parser("grants", help="grant, list and revoke roles")
    grant_commands = grants.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    command(grant_commands, "list", _grants_list, "USER's roles").add_argument("user")
    grant = command(
        grant_commands, "add", _grants_add, "grant USER a role on a project, entity or registry"
    )
    grant.add_argument("user", metavar="USER")
    grant.add_argument("scope", metavar="SCOPE", help=_SCOPE_HELP)
    grant.add_argument("role", choices=("viewer", "writer", "admin"))
    remove = command(grant_commands, "remove", _grants_remove, "revoke USER's role there")
    remove.add_argument("user", metavar="USER")
    remove.add_argument("scope", metavar="SCOPE", help=_SCOPE_HELP)

    gc = command(groups, "gc", _gc, "garbage-collect the server's store (through the server)")
    gc.add_argument("--grace", default="1h", metavar="DURATION", help="keep younger (1h)")
    gc.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    verify = command(groups, "verify", _verify, "re-hash every blob and check every version")
    verify.add_argument(
        "--sample", type=int, default=None, metavar="N",
        help="re-hash only N blobs chosen at random (every version is still checked)",
    )  # fmt: skip
    command(groups, "usage", _usage, "what each project holds")

    backup = groups.add_parser(
        "backup",
        help="an online copy of a SQLite + folder server's data (on its machine)",
        description="Copy the database and the blobs its committed versions need into a new "
        "folder, while the server runs: first a snapshot of the database, then the blobs, "
        "each verified. The copy is a server data folder: restore by starting a server on "
        "it (--db sqlite:///DEST/soko.db --store DEST/store). Runs on the server's machine, "
        "on its files; for PostgreSQL + S3 see the production guide.",
    )
    backup.add_argument("destination", metavar="DEST", help="a new (or empty) folder")
    backup.add_argument(
        "--db", default=None, metavar="URL", help="the server's --db (default: its default)"
    )
    backup.add_argument(
        "--store", default=None, metavar="DIR", help="the server's --store (default: its default)"
    )
    backup.add_argument("--json", action="store_true", help="print the report as JSON")
    backup.set_defaults(handler=_backup)

    migrate = groups.add_parser(
        "migrate",
        help="upgrade a server's database schema (or --check what an upgrade will do)",
        description="Bring the server's database to this soko's schema, as a server's first "
        "start would; with --check, say which migrations an upgrade applies, and apply none. "
        "Talks to the database, not to a server.",
    )
    migrate.add_argument(
        "--db", default=None, metavar="URL", help="the server's --db (default: its default)"
    )
    migrate.add_argument("--check", action="store_true", help="report, change nothing")
    migrate.add_argument("--json", action="store_true", help="print the report as JSON")
    migrate.set_defaults(handler=_migrate)


# ----- talking to the server ----------------------------------------------------------


class _Server:
    def __init__(self, args: argparse.Namespace) -> None:
        config = settings_module.load()
        host = args.host or config.base_url
        if not host:
            raise ValidationError(
                "soko admin talks to a soko server: give --host URL (or run "
                "`soko login KEY --host URL`)."
            )
        if not host.startswith(("http://", "https://")):
            raise ValidationError(f"Invalid --host {host!r}: expected http(s)://host[:port].")
        key = args.key or config.api_key
        if not key:
            raise ValidationError("No API key: give --key KEY (a server admin's) or soko login.")
        self.url = host.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, *, json: Any = None, timeout: float = 60.0) -> Any:
        import httpx

        from soko.client.http_session import error_from_response

        try:
            response = httpx.request(
                method,
                f"{self.url}/api/v1{path}",
                json=json,
                headers=self._headers,
                timeout=httpx.Timeout(timeout, connect=10.0),
            )
        except httpx.TransportError as exc:
            raise StoreError(f"Cannot reach the soko server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json() if response.content else None


def _segment(value: str) -> str:
    return quote(value, safe="")


def _scope(text: str) -> tuple[str, str]:
    entity, _, project = text.rpartition("/") if _REGISTRY in text else text.partition("/")
    if project.startswith(_REGISTRY):
        # A registry's roles are the roles on its project in its organisation's entity.
        from soko.service.registries import DEFAULT_ORGANISATION, REGISTRY_PREFIX

        name = project[len(_REGISTRY) :]
        if not name or "/" in entity:
            raise ValidationError(f"{text!r} is not registry:NAME or ORGANISATION/registry:NAME.")
        return entity or DEFAULT_ORGANISATION, f"{REGISTRY_PREFIX}{name}"
    if not entity or "/" in project:
        raise ValidationError(f"{text!r} is not ENTITY, ENTITY/PROJECT or registry:NAME.")
    return entity, project or "*"


def _show(args: argparse.Namespace, data: Any, text: Callable[[], None]) -> int:
    if args.json:
        print_json(data)
    else:
        text()
    return 0


# ----- users, keys, grants ------------------------------------------------------------


def _users_list(args: argparse.Namespace) -> int:
    data = _Server(args).call("GET", "/users")
    rows = [
        [
            u["name"],
            "yes" if u["admin"] else "",
            "disabled" if u.get("disabled_at") else "active",
            u["created_at"],
        ]
        for u in data["users"]
    ]
    return _show(args, data, lambda: print_table(["user", "admin", "state", "created"], rows))


def _users_add(args: argparse.Namespace) -> int:
    data = _Server(args).call("POST", "/users", json={"name": args.name, "admin": args.admin})
    kind = "server admin" if data["admin"] else "user"
    hint = f"give it a key: soko admin keys create {data['name']}"
    return _show(args, data, lambda: print(f"Added the {kind} {data['name']}; {hint}"))


def _users_disable(args: argparse.Namespace) -> int:
    disabled = args.admin_command == "disable"
    data = _Server(args).call("PATCH", f"/users/{_segment(args.name)}", json={"disabled": disabled})
    state = "Disabled" if disabled else "Enabled"
    return _show(args, data, lambda: print(f"{state} the user {data['name']}."))


def _keys_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.expires is not None:
        seconds = parse_duration(args.expires)
        if seconds <= 0:
            raise ValidationError("--expires must be a positive duration (e.g. 90d).")
        body["expires_at"] = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    data = _Server(args).call("POST", f"/users/{_segment(args.user)}/keys", json=body)

    def text() -> None:
        expiry = f", expires {data['expires_at']}" if data.get("expires_at") else ""
        print(f"A new API key of {data['user']} (id {data['key_id']}{expiry}), shown only once:")
        print(f"    {data['key']}")

    return _show(args, data, text)


def _keys_list(args: argparse.Namespace) -> int:
    data = _Server(args).call("GET", f"/users/{_segment(args.user)}/keys")
    rows = [
        [
            k["key_id"],
            k["created_at"],
            k.get("expires_at") or "never",
            k.get("revoked_at") or "",
            k.get("origin") or "",
        ]
        for k in data["keys"]
    ]
    headers = ["key id", "created", "expires", "revoked", "origin"]
    return _show(args, data, lambda: print_table(headers, rows))


def _keys_revoke(args: argparse.Namespace) -> int:
    _Server(args).call("DELETE", f"/keys/{_segment(args.key_id)}")
    data = {"key_id": args.key_id, "revoked": True}
    return _show(args, data, lambda: print(f"Revoked the key {args.key_id}."))


def _grants_list(args: argparse.Namespace) -> int:
    data = _Server(args).call("GET", f"/users/{_segment(args.user)}/roles")
    rows = [[r["entity"], r["project"], r["role"]] for r in data["roles"]]
    return _show(args, data, lambda: print_table(["entity", "project", "role"], rows))


def _grants_add(args: argparse.Namespace) -> int:
    entity, project = _scope(args.scope)
    data = _Server(args).call(
        "PUT",
        f"/users/{_segment(args.user)}/roles",
        json={"entity": entity, "project": project, "role": args.role},
    )
    where = f"{entity}/{project}"
    return _show(args, data, lambda: print(f"{args.user} is {args.role} on {where}."))


def _grants_remove(args: argparse.Namespace) -> int:
    entity, project = _scope(args.scope)
    path = f"/users/{_segment(args.user)}/roles/{_segment(entity)}/{_segment(project)}"
    _Server(args).call("DELETE", path)
    data = {"user": args.user, "entity": entity, "project": project, "revoked": True}
    return _show(args, data, lambda: print(f"Revoked {args.user}'s role on {entity}/{project}."))


# ----- maintenance --------------------------------------------------------------------


def _gc(args: argparse.Namespace) -> int:
    body = {"grace_seconds": parse_duration(args.grace), "dry_run": args.dry_run}
    data = _Server(args).call("POST", "/admin/gc", json=body, timeout=_MAINTENANCE_TIMEOUT)

    def text() -> None:
        for name in data["expired"]:
            print(f"{'Would expire' if data['dry_run'] else 'Expired'} {name} (its TTL passed)")
        verb = "Would delete" if data["dry_run"] else "Deleted"
        print(
            f"{verb} {len(data['deleted'])} of {data['blobs_listed']} blobs "
            f"({format_size(data['freed_bytes'])}); {data['live_blobs']} are in use; "
            f"{data['kept_young']} unreferenced kept (younger than the grace period)."
        )

    return _show(args, data, text)


def _verify(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise ValidationError("--sample must be a positive number of blobs.")
    body = {"sample": args.sample} if args.sample is not None else None
    data = _Server(args).call("POST", "/admin/verify", json=body, timeout=_MAINTENANCE_TIMEOUT)

    def text() -> None:
        for problem in data["problems"]:
            versions = ", ".join(problem["versions"]) or "no live version"
            print(f"ERROR {problem['message']} (affects: {versions})")
        for note in data["notes"]:
            print(f"note  {note}")
        found = "no problems" if data["ok"] else f"{len(data['problems'])} problems"
        print(
            f"Checked {data['blobs_checked']} blobs ({format_size(data['bytes_checked'])}) "
            f"and {data['versions_checked']} versions: {found}."
        )

    _show(args, data, text)
    return 0 if data["ok"] else 1


def _usage(args: argparse.Namespace) -> int:
    data = _Server(args).call("GET", "/admin/usage")
    rows = [
        [
            f"{p['entity']}/{p['project']}",
            str(p["collections"]),
            str(p["versions"]),
            str(p["files"]),
            format_size(p["logical_bytes"]),
            format_size(p["blob_bytes"]),
            p.get("last_commit_at") or "",
        ]
        for p in data["projects"]
    ]
    headers = ["project", "collections", "versions", "files", "size", "stored", "last commit"]
    return _show(args, data, lambda: print_table(headers, rows))


# ----- backup (local, on the server's files) --------------------------------------------


def _server_root() -> Path:
    return settings_module.load().soko_dir / "server"


def _backup(args: argparse.Namespace) -> int:
    from soko.service.backup import backup
    from soko.storage.local import LocalBlobStore

    root = _server_root()
    db = args.db or f"sqlite:///{root / 'soko.db'}"
    if not db.startswith("sqlite:///"):
        raise ValidationError(
            f"soko admin backup copies a SQLite database; {db.split(':', 1)[0]} is backed up "
            "with its own tools (PostgreSQL: pg_dump, with bucket versioning for S3)."
        )
    store = args.store or str(root / "store")
    if "://" in store and not store.startswith("file://"):
        raise ValidationError(
            f"soko admin backup copies a blob folder, not {store!r} (S3: bucket versioning)."
        )
    store_path = Path(store.removeprefix("file://")).expanduser()
    if not store_path.is_dir():
        raise ValidationError(f"No blob folder at {store_path}: give the server's --store.")
    report = backup(
        Path(db[len("sqlite:///") :]).expanduser(),
        LocalBlobStore(store_path),
        Path(args.destination).expanduser(),
    )
    data = {
        "destination": report.destination,
        "versions": report.versions,
        "blobs": report.blobs,
        "bytes": report.bytes,
        "ok": report.ok,
        "missing": report.missing,
    }

    def text() -> None:
        for blob, versions in report.missing.items():
            print(f"ERROR blob {blob} is missing from the store (affects: {', '.join(versions)})")
        print(
            f"Backed up {report.versions} versions: {report.blobs} blobs "
            f"({format_size(report.bytes)}) into {report.destination}."
        )
        if report.ok:
            d = report.destination
            print(f"Restore: soko server --db sqlite:///{d}/soko.db --store {d}/store")
        else:
            print("Some blobs were missing: a gc may have run meanwhile; back up again.")

    _show(args, data, text)
    return 0 if report.ok else 1


# ----- schema migrations (local, on the server's database) ------------------------------


def _migrate(args: argparse.Namespace) -> int:
    from soko.metadata.engine import engine_for, migrate, migration_plan
    from soko.server.startup import opening_database

    db = args.db or f"sqlite:///{_server_root() / 'soko.db'}"
    shown = db.split("@")[-1] if "@" in db else db
    if db.startswith("sqlite:///") and not Path(db[len("sqlite:///") :]).expanduser().is_file():
        raise ValidationError(f"No database at {db[len('sqlite:///') :]}: give the server's --db.")
    with opening_database(shown):
        engine = engine_for(db)
        try:
            with engine.connect():
                pass
            plan = migration_plan(engine)
            if plan.newer:
                raise StoreError(
                    f"The database is at schema revision {plan.current}, newer than this soko "
                    f"({plan.head}): upgrade soko; a downgrade of the schema is not supported."
                )
            if not args.check and plan.pending:
                migrate(engine)
        finally:
            engine.dispose()
    applied = not args.check and bool(plan.pending)
    data = {
        "current": plan.current,
        "head": plan.head,
        "pending": [{"revision": m.revision, "title": m.title} for m in plan.pending],
        "applied": applied,
    }

    def text() -> None:
        print(f"Database schema: {plan.current or 'empty'}; this soko: {plan.head}.")
        if not plan.pending:
            print("Nothing to migrate.")
            return
        verb = "Applied" if applied else "An upgrade applies"
        print(f"{verb} {len(plan.pending)} migrations:")
        for step in plan.pending:
            print(f"  {step.revision}  {step.title}")

    return _show(args, data, text)
