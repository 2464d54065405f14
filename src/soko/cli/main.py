"""The ``soko`` executable: parse the command line, run one command, map errors to exit codes.

A mistake of the user's (a bad name, a missing version, a path that does not exist, a size
that does not parse) prints one line on stderr and exits non-zero, never a traceback:

| exit code | meaning                                                        |
| --------- | -------------------------------------------------------------- |
| 0         | done                                                           |
| 1         | failed: the store or the system refused (or verify found problems) |
| 2         | bad usage or input (:class:`~soko.errors.ValidationError`)     |
| 3         | not found (:class:`~soko.errors.NotFoundError`)               |
| 4         | conflicts with what the store holds (:class:`~soko.errors.ConflictError`) |
| 5         | not logged in or not allowed                                   |
| 130       | interrupted (Ctrl-C)                                           |
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, NoReturn

from soko.cli import admin, artifact, login, maintenance
from soko.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SokoError,
    ValidationError,
)
from soko.server import cli as server_cli

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_AUTH = 5
EXIT_INTERRUPTED = 130

COMMAND_MODULES: tuple[Any, ...] = (artifact, login, maintenance, server_cli, admin)
"""Each registers its subcommands with ``register(subparsers)``."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (and a pointer to --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    try:
        return metadata.version("soko")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="soko",
        description="Version datasets and models as artifacts; keep the store healthy.",
    )
    parser.add_argument("--version", action="version", version=f"soko {_version()}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, ValidationError):
        return EXIT_USAGE
    if isinstance(error, NotFoundError | FileNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, ConflictError):
        return EXIT_CONFLICT
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    return EXIT_ERROR


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    _configure_bars()
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("soko: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SokoError, OSError) as error:
        # OSError: the user's file system said no (permission, disk full, a missing file).
        print(f"soko: error: {_one_line(error)}", file=sys.stderr)
        return exit_code_for(error)


def _configure_bars() -> None:
    """The command line shows its bars at once and leaves them on screen."""
    from soko.sdk import progress

    progress.configure(transient=False, delay=0.0)
