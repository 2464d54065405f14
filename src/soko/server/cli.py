"""``soko server``: check the options, open the store, make sure an admin can log in, serve.

On the first start of a fresh database the ``admin`` user is created and its API key is
printed once; with ``SOKO_ADMIN_KEY`` set, that key is the admin's instead (replacing the
previous ``SOKO_ADMIN_KEY`` and the printed key) and nothing is printed. Every problem found
before serving (see :mod:`.startup`) is one line on stderr and a non-zero exit: 2 for
options, 1 for a database, store or address that cannot be used. The ``soko`` CLI calls
:func:`serve`; ``python -m soko.server`` does too.

The listening socket is bound before the address is printed, so ``--port 0`` prints the
port the system chose. With ``--workers N`` the socket is shared by N worker processes
(uvicorn's supervisor), each opening the store the parent checked.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from soko.errors import SokoError, StoreError, ValidationError
from soko.server.config import DEFAULT_PORT
from soko.server.startup import ACCESS_LOG_FORMATS, config_problems, require_server_extra

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_BACKLOG = 2048  # uvicorn's default


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """The options of ``soko server``, as given (defaults resolved by ServerConfig)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    db: str | None = None
    store: str | None = None
    s3_endpoint_url: str | None = None
    max_manifest_bytes: int | None = None
    root_path: str = ""
    forwarded_allow_ips: str | None = None
    access_log: str = "off"


def serve(options: ServeOptions) -> int:
    """Run a soko server until it is stopped (Ctrl-C or SIGTERM); the exit code."""
    problems = config_problems(
        host=options.host,
        port=options.port,
        workers=options.workers,
        db=options.db,
        store=options.store,
        s3_endpoint_url=options.s3_endpoint_url,
        root_path=options.root_path,
        forwarded_allow_ips=options.forwarded_allow_ips,
        access_log=options.access_log,
        max_manifest_bytes=options.max_manifest_bytes,
    )
    env_key = os.environ.get("SOKO_ADMIN_KEY") or None
    if env_key is not None:
        from soko.server.auth import check_admin_key  # no server extra needed

        try:
            check_admin_key(env_key)
        except ValidationError as exc:
            problems.append(str(exc))
    if problems:
        raise ValidationError("\n".join(problems))
    require_server_extra()
    return _serve_checked(options, env_key)


def _serve_checked(options: ServeOptions, env_key: str | None) -> int:
    import uvicorn
    from sqlalchemy.engine import make_url

    from soko.server.app import CONFIG_ENV, config_to_environment, create_app
    from soko.server.auth import bootstrap_admin
    from soko.server.config import ServerConfig, open_blob_store
    from soko.server.protocol import PROTOCOL
    from soko.server.startup import opening_database, opening_store
    from soko.server.wandb.routes import SIGNING_KEY_ENV
    from soko.service.store import Store

    config = ServerConfig.resolve(
        db=options.db,
        store=options.store,
        s3_endpoint_url=options.s3_endpoint_url,
        max_manifest_bytes=options.max_manifest_bytes,
        access_log=options.access_log,
    )
    shown_db = make_url(config.db_url).render_as_string(hide_password=True)
    with opening_store(config.store_url):
        blobs = open_blob_store(config)
    with opening_database(shown_db):
        opened = Store.open(config.db_url, blobs)
        new_key = bootstrap_admin(opened.engine, env_key=env_key)
    sock = _bind(options.host, options.port)
    url = _url_of(sock)
    print(f"soko server: metadata in {shown_db}, blobs in {config.store_url}", flush=True)
    if new_key is not None:
        print(
            "soko server: created the user 'admin'. Its API key, shown only this once:\n"
            f"    {new_key}\n"
            f"Use it with: soko login {new_key} --host {url}",
            flush=True,
        )
    common: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,  # soko's own access log: see soko.server.observe
        "root_path": options.root_path,
        "proxy_headers": True,
        "forwarded_allow_ips": options.forwarded_allow_ips or "127.0.0.1",
        "http": PROTOCOL,  # uvicorn's, receiving large bodies in fewer copies
    }
    workers = f", {options.workers} worker processes" if options.workers > 1 else ""
    print(f"soko server: listening on {url}{workers}", flush=True)
    if options.workers == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(config, store=opened), **common))
        server.run(sockets=[sock])
        return 0 if server.started else EXIT_ERROR
    from uvicorn.supervisors import Multiprocess

    opened.engine.dispose()  # each worker opens its own connections
    os.environ[CONFIG_ENV] = config_to_environment(config)
    # One key for the URLs every worker signs: a URL one worker hands out, another takes.
    os.environ.setdefault(SIGNING_KEY_ENV, secrets.token_urlsafe(32))
    made_metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The workers' counters are summed from files here; a folder of this run's own,
        # since counts left by an earlier run would be added in.
        made_metrics_dir = tempfile.mkdtemp(prefix="soko-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made_metrics_dir
    factory = uvicorn.Config(
        "soko.server.app:app_from_environment", factory=True, workers=options.workers, **common
    )
    try:
        Multiprocess(factory, sockets=[sock]).run()
    finally:
        if made_metrics_dir is not None:
            shutil.rmtree(made_metrics_dir, ignore_errors=True)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StoreError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host "
            "or --port (0 for any free port)."
        ) from None
    # Listening before the address is printed: a client that reads it and connects at
    # once waits in the backlog while the app is made, instead of being refused.
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


_DESCRIPTION = (
    "Serve a soko store to a team over HTTP (API under /api/v1, metrics at /metrics). "
    "Defaults: SQLite and a blob folder under $SOKO_DIR/server. On the first start the "
    "admin's API key is printed once (or taken from SOKO_ADMIN_KEY)."
)


def _add_arguments(parse: argparse.ArgumentParser) -> None:
    parse.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parse.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (0: any free port)"
    )
    parse.add_argument(
        "--workers", type=int, default=1, metavar="N", help="server processes (default 1)"
    )
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
    parse.add_argument(
        "--root-path",
        default="",
        metavar="PREFIX",
        help="the path prefix a reverse proxy serves soko under and strips (e.g. /soko)",
    )
    parse.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="proxies whose X-Forwarded-For/-Proto headers are trusted, comma-separated "
        "(default 127.0.0.1; * trusts any)",
    )
    parse.add_argument(
        "--access-log",
        default="off",
        choices=ACCESS_LOG_FORMATS,
        help="one line per request on stderr: off (default), text, or json (JSON lines)",
    )


def _options(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        host=args.host,
        port=args.port,
        workers=args.workers,
        db=args.db,
        store=args.store,
        s3_endpoint_url=args.s3_endpoint_url,
        max_manifest_bytes=args.max_manifest_bytes,
        root_path=args.root_path,
        forwarded_allow_ips=args.forwarded_allow_ips,
        access_log=args.access_log,
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


def run(options: ServeOptions) -> int:
    """:func:`serve`, with every error as one line per problem on stderr and an exit code."""
    try:
        return serve(options)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SokoError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"soko server: error: {line}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValidationError) else EXIT_ERROR


def _command(args: argparse.Namespace) -> int:
    return run(_options(args))


def main(argv: Sequence[str] | None = None) -> int:
    return run(_options(parser().parse_args(argv)))
