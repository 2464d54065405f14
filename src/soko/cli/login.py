"""``soko login [KEY] [--host URL]``: remember a server and its API key."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any
from urllib.parse import urlparse

from soko import settings as settings_module
from soko.errors import ValidationError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "login",
        help="store the API key (and URL) of a soko server",
        description="Store a soko server's URL and API key in $SOKO_DIR/config.json. With "
        "neither, and no server configured, soko uses the embedded store: nothing to do.",
    )
    parser.add_argument("key", metavar="KEY", nargs="?", default=None)
    parser.add_argument("--host", default=None, help="the server's URL, e.g. https://soko.lan")
    parser.set_defaults(handler=login_command)


def _check_host(host: str) -> str:
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError(f"Invalid --host {host!r}: expected http(s)://host[:port].")
    return host.rstrip("/")


def login_command(args: argparse.Namespace) -> int:
    from soko.client.login import login

    host = _check_host(args.host) if args.host is not None else None
    key: str | None = args.key
    config = settings_module.load()
    server = host or config.base_url
    if server is None and key is None:
        print(f"Using the embedded store at {config.soko_dir}: nothing to log in to.")
        return 0
    if key is None and server is not None and sys.stdin.isatty():
        key = getpass.getpass(f"API key for {server}: ").strip() or None
    if key is not None and not key.strip():
        raise ValidationError("The API key is empty.")
    login(key=key, host=host)
    if server is None:
        print(f"Stored the API key in {config.config_path}; add a server with --host URL.")
    else:
        print(f"Logged in to {server} (settings in {config.config_path}).")
    return 0
