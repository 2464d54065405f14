"""Printing for the command line: aligned tables, JSON, sizes, and parsing of durations.

Data goes to stdout (tables or ``--json``), messages to stderr, so that the output of
``ls`` and ``versions`` can be piped.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from soko.errors import ValidationError

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1h30m"``, ``"2d"``, ``"1w"`` → seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(cleaned):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise ValidationError(
            f"Cannot parse duration {text!r}: use e.g. 0, 30s, 10m, 1h, 2d or 1h30m."
        )
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_size(size: int | None) -> str:
    """Decimal units, as ``du -h --si``: 999 B, 1.2 kB, 3.4 MB."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def counted(count: int, noun: str) -> str:
    """Says "1 file", "2 files"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns separated by two spaces, header first."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for line in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        print("  ".join(cells).rstrip())


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def message(text: str) -> None:
    """A line for the user (not data): stderr."""
    print(text, file=sys.stderr)


def add_json_flag(parser: Any) -> None:
    """``--json``: the command's result as JSON on stdout, for programs."""
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
