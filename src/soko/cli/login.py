"""``soko login``, ``soko logout`` and ``soko whoami``: which server, which user, which store.

``login`` checks the key against the server before it stores anything; ``whoami`` asks
the server again, so what it prints is what the server says now, not what was stored.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from soko import settings as settings_module
from soko.cli.output import add_json_flag, message, print_json
from soko.errors import AuthenticationError, ValidationError

if TYPE_CHECKING:
    from soko.client.login import Identity


def register(commands: Any) -> None:
    login = commands.add_parser(
        "login",
        help="check an API key against a soko server and store it",
        description="Check KEY against the soko server at --host (or the one configured) and "
        "store both in the user's config file. Without KEY, on a terminal, asks for it; "
        "already logged in, checks the stored key. With no server at all, soko uses the "
        "embedded store: nothing to do.",
    )
    login.add_argument("key", metavar="KEY", nargs="?", default=None)
    login.add_argument("--host", default=None, help="the server's URL, e.g. https://soko.lan")
    login.add_argument(
        "--relogin", action="store_true", help="ask for a new key even when one is stored"
    )
    add_json_flag(login)
    login.set_defaults(handler=login_command)

    logout = commands.add_parser(
        "logout",
        help="forget the stored server and key (back to the embedded store)",
        description="Remove the server URL and API key that `soko login` stored.",
    )
    add_json_flag(logout)
    logout.set_defaults(handler=logout_command)

    whoami = commands.add_parser(
        "whoami",
        aliases=["status"],
        help="show the store or server in use, the user and the default entity",
        description="Print which store or server soko uses, who the API key belongs to (asked "
        "of the server), the default entity and project, and where the settings come from.",
    )
    add_json_flag(whoami)
    whoami.set_defaults(handler=whoami_command)


def _check_host(host: str) -> str:
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError(f"Invalid --host {host!r}: expected http(s)://host[:port].")
    return host.rstrip("/")


def describe(identity: Identity) -> str:
    return identity.user + (" (server admin)" if identity.admin else "")


def _ask_key(server: str) -> str:
    if not sys.stdin.isatty():
        raise ValidationError(
            f"No API key given for {server}: pass it as KEY, or run `soko login` on a "
            "terminal to type it."
        )
    return getpass.getpass(f"API key for {server}: ")


def login_command(args: argparse.Namespace) -> int:
    from soko.client.login import check_key, save_credentials

    config = settings_module.load()
    host = _check_host(args.host) if args.host is not None else None
    server = host or config.base_url
    key: str | None = args.key
    if server is None:
        if key is None:
            if args.json:
                print_json({"backend": "embedded", "store": str(config.soko_dir)})
            else:
                print(f"Using the embedded store at {config.soko_dir}: nothing to log in to.")
            return 0
        raise ValidationError(
            "soko login needs a server to check the key against: give --host URL "
            "(the embedded store needs no key)."
        )
    stored = config.api_key if host in (None, config.base_url) else None
    if key is None and stored is not None and not args.relogin:
        identity = check_key(server, stored)
        if args.json:
            print_json(_login_json(server, identity, config.config_source, stored=False))
        else:
            print(f"Logged in to {server} as {describe(identity)} (--relogin to use another key).")
        return 0
    key = (key if key is not None else _ask_key(server)).strip()
    if not key:
        raise ValidationError("The API key is empty.")
    identity = check_key(server, key)
    path = save_credentials(config, base_url=server, api_key=key)
    if args.json:
        print_json(_login_json(server, identity, path, stored=True))
    else:
        print(f"Logged in to {server} as {describe(identity)}; stored in {path}.")
    _warn_overrides(server, key)
    return 0


def _login_json(
    server: str, identity: Identity, path: Path | None, *, stored: bool
) -> dict[str, Any]:
    return {
        "backend": "server",
        "url": server,
        "user": identity.user,
        "admin": identity.admin,
        "config_file": str(path) if path else None,
        "stored": stored,
    }


def _warn_overrides(server: str, key: str) -> None:
    """Environment variables win over the config file: say so when they would hide it."""
    env_url = os.environ.get("SOKO_BASE_URL")
    if env_url and env_url.rstrip("/") != server:
        message(f"Note: SOKO_BASE_URL={env_url} is set and wins over the stored server.")
    env_key = os.environ.get("SOKO_API_KEY")
    if env_key and env_key != key:
        message("Note: SOKO_API_KEY is set and wins over the stored key.")


def logout_command(args: argparse.Namespace) -> int:
    from soko.client.login import remove_credentials

    config = settings_module.load()
    changed = remove_credentials(config)
    after = settings_module.load()
    if args.json:
        print_json(
            {
                "removed_from": [str(path) for path in changed],
                "backend": "server" if after.base_url else "embedded",
                "store": after.base_url or str(after.soko_dir),
            }
        )
        return 0
    if not changed:
        print(f"Not logged in (no server or key in {config.config_path}).")
    else:
        files = " and ".join(str(path) for path in changed)
        print(f"Logged out: removed the server and key from {files}.")
    if after.base_url:
        message(f"Note: SOKO_BASE_URL={after.base_url} is still set; soko uses that server.")
    else:
        message(f"soko now uses the embedded store at {after.soko_dir}.")
    return 0


def _source(variable: str, config: settings_module.Settings) -> str:
    if os.environ.get(variable):
        return variable
    return str(config.config_source)


def whoami_command(args: argparse.Namespace) -> int:
    config = settings_module.load()
    data: dict[str, Any] = {
        "entity": config.entity,
        "project": config.project,
        "cache_dir": str(config.cache_dir),
        "config_file": str(config.config_source or config.config_path),
    }
    if config.base_url:
        data.update(_server_status(config))
    else:
        data.update(
            {
                "backend": "embedded",
                "store": str(config.soko_dir),
                "store_exists": (config.soko_dir / "soko.db").is_file(),
                "user": None,
            }
        )
    if args.json:
        print_json(data)
        return 0
    if data["backend"] == "server":
        roles = ", ".join(f"{r['entity']}/{r['project']} {r['role']}" for r in data["roles"])
        rows = [
            ("Server", f"{data['url']} (from {data['url_from']})"),
            ("User", data["user"] + (" (server admin)" if data["admin"] else "")),
            ("Key", f"from {data['key_from']}"),
            ("Roles", roles or "none"),
        ]
    else:
        where = "" if data["store_exists"] else " (no store there yet)"
        rows = [
            ("Store", f"embedded store at {data['store']}{where}"),
            ("User", "none needed (the embedded store has no users)"),
        ]
    rows += [
        ("Entity", data["entity"]),
        ("Project", data["project"]),
        ("Cache", data["cache_dir"]),
        ("Config", data["config_file"]),
    ]
    for label, value in rows:
        print(f"{label + ':':<9}{value}")
    return 0


def _server_status(config: settings_module.Settings) -> dict[str, Any]:
    from soko.client.login import check_key

    assert config.base_url is not None
    if not config.api_key:
        raise AuthenticationError(
            f"No API key for the server at {config.base_url}: run "
            f"`soko login --host {config.base_url}`."
        )
    identity = check_key(config.base_url, config.api_key)
    return {
        "backend": "server",
        "url": config.base_url,
        "url_from": _source("SOKO_BASE_URL", config),
        "key_from": _source("SOKO_API_KEY", config),
        "user": identity.user,
        "admin": identity.admin,
        "roles": [{"entity": e, "project": p, "role": r} for e, p, r in identity.roles],
    }
