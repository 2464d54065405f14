"""``soko ui [--port N]``: browse the embedded store's artifacts, runs and lineage in a
browser, on 127.0.0.1 (see :mod:`soko.server.local_ui`)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_UI_PORT = 8766  # also soko.server.local_ui's; that module loads the server


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "ui",
        help="browse the embedded store in a web browser (on 127.0.0.1)",
        description="Serve soko's web UI over the embedded store ($SOKO_DIR) on "
        "127.0.0.1, with no sign-in: projects, artifacts, versions, files, runs, lineage.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_UI_PORT,
        help=f"port to listen on (default {DEFAULT_UI_PORT}; 0: any free port)",
    )
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    from soko.errors import ValidationError
    from soko.server.startup import require_server_extra

    if not 0 <= args.port <= 65535:
        raise ValidationError(f"--port must be from 0 to 65535, not {args.port}.")
    require_server_extra()
    from soko.server.local_ui import serve_local_ui

    try:
        return serve_local_ui(args.port)
    except KeyboardInterrupt:
        return 130
