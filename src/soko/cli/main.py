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
import difflib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from soko.cli import (
    admin,
    artifact,
    automation,
    catalog,
    lineage,
    login,
    maintenance,
    registry,
    ui,
)
from soko.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SokoError,
    ValidationError,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_AUTH = 5
EXIT_INTERRUPTED = 130

COMMAND_MODULES: tuple[Any, ...] = (
    artifact,
    catalog,
    lineage,
    login,
    maintenance,
    registry,
    automation,
    admin,
    ui,
)
"""Each registers its subcommands with ``register(subparsers)``; ``soko server`` is
registered by :func:`_register_server`."""

SERVER_HELP = "run a soko server"


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (\S+)")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (a suggestion for a typo, a pointer to
    --help), and a command group given without its command printing the group's help."""

    def error(self, message: str) -> NoReturn:
        hint = _suggestion(self, message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs["required"] = False
        self.set_defaults(handler=self._help)
        return super().add_subparsers(**kwargs)

    def _help(self, args: argparse.Namespace) -> int:
        del args
        self.print_help()
        return 0


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of *parser* and of the commands below it."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found |= _option_strings(child)
    return found


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """``; did you mean 'put'?`` for a mistyped command or option, else nothing."""
    choice = _INVALID_CHOICE.search(message)
    if choice is not None:
        word = choice.group(1)
        options = [c.strip().strip("'") for c in choice.group(2).split(",")]
    else:
        unknown = _UNRECOGNIZED.search(message)
        if unknown is None or not unknown.group(1).startswith("-"):
            return ""
        word = unknown.group(1).split("=")[0]
        options = sorted(_option_strings(parser))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("soko")
    except metadata.PackageNotFoundError:
        return "unknown"


def _register_server(commands: Any, argv: Sequence[str]) -> None:
    """``soko server`` with its options when it is the command; otherwise only its name
    and help line: its module loads SQLAlchemy, which no other command's parsing needs."""
    if list(argv[:1]) == ["server"]:
        from soko.server import cli as server_cli

        server_cli.register(commands)
    else:
        commands.add_parser("server", help=SERVER_HELP, add_help=False)


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked: reading the installed packages' metadata
    costs a quarter of a second that every other command would pay."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"soko {_version()}")
        parser.exit(0)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="soko",
        description="Version datasets and models as artifacts; keep the store healthy.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, nargs=0, help="show soko's version and exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(commands)
    _register_server(commands, argv)
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
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
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
