"""``soko server``: open the store, make sure an admin can log in, serve the API.

On the first start of a fresh database the ``admin`` user is created and its API key is
printed once; with ``SOKO_ADMIN_KEY`` set, that key is the admin's instead (replacing the
previous ``SOKO_ADMIN_KEY`` and the printed key) and nothing is printed. A weak
``SOKO_ADMIN_KEY`` stops the start with one line, before anything is opened. The ``soko``
CLI calls :func:`serve`; ``python -m soko.server`` does too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from soko.server.config import DEFAULT_PORT


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    db: str | None = None,
    store: str | None = None,
    s3_endpoint_url: str | None = None,
    max_manifest_bytes: int | None = None,
) -> None:
    """Run a soko server in this process until it is stopped (Ctrl-C or SIGTERM)."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from soko.server.app import create_app
    from soko.server.auth import bootstrap_admin, check_admin_key
    from soko.server.config import ServerConfig, open_blob_store
    from soko.service.store import Store

    env_key = os.environ.get("SOKO_ADMIN_KEY") or None
    if env_key is not None:
        check_admin_key(env_key)
    config = ServerConfig.resolve(
        db=db,
        store=store,
        s3_endpoint_url=s3_endpoint_url,
        max_manifest_bytes=max_manifest_bytes,
    )
    opened = Store.open(config.db_url, open_blob_store(config))
    new_key = bootstrap_admin(opened.engine, env_key=env_key)
    shown_db = make_url(config.db_url).render_as_string(hide_password=True)
    print(f"soko server: metadata in {shown_db}, blobs in {config.store_url}", flush=True)
    if new_key is not None:
        print(
            "soko server: created the user 'admin'. Its API key, shown only this once:\n"
            f"    {new_key}\n"
            f"Use it with: soko login {new_key} --host http://{host}:{port}",
            flush=True,
        )
    app = create_app(config, store=opened)
    print(f"soko server: listening on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


_DESCRIPTION = (
    "Serve a soko store to a team over HTTP (API under /api/v1). Defaults: SQLite and a blob "
    "folder under $SOKO_DIR/server. On the first start the admin's API key is printed once "
    "(or taken from SOKO_ADMIN_KEY)."
)


def _add_arguments(parse: argparse.ArgumentParser) -> None:
    parse.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parse.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parse.add_argument(
        "--db", default=None, help="metadata database URL (sqlite:///…, postgresql://…)"
    )
    parse.add_argument("--store", default=None, help="blob store: a folder, or s3://bucket/prefix")
    parse.add_argument("--s3-endpoint-url", default=None, help="S3-compatible endpoint URL")
    parse.add_argument(
        "--max-manifest-bytes",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest manifest blob the server reads (default 536870912, 512 MiB)",
    )


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="soko server", description=_DESCRIPTION)
    _add_arguments(parse)
    return parse


def register(commands: Any) -> None:
    """Add ``soko server`` to the ``soko`` command line (see :mod:`soko.cli.main`)."""
    parse = commands.add_parser("server", help="run a soko server", description=_DESCRIPTION)
    _add_arguments(parse)
    parse.set_defaults(handler=_command)


def _serve(args: argparse.Namespace) -> None:
    serve(
        args.host,
        args.port,
        db=args.db,
        store=args.store,
        s3_endpoint_url=args.s3_endpoint_url,
        max_manifest_bytes=args.max_manifest_bytes,
    )


def _command(args: argparse.Namespace) -> int:
    _serve(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from soko.errors import SokoError

    args = parser().parse_args(argv)
    try:
        _serve(args)
    except SokoError as exc:
        print(f"soko server: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
