"""A Table of a version (W&B's ``*.table.json``) as pages of rows, read from the blob as a
stream.

A table file is one JSON document (``columns``, ``data``, ``nrows`` ...) that may be large;
a page is a few rows of it. The rows of a page are read with ijson, which parses the
stream without building what it skips: the rows before the page are parsed and dropped,
those after it are never read. The shape of a table (its columns and row count) needs a
pass over the whole file when ``nrows`` comes after ``data`` (as in soko's and W&B's
files), so it is kept per blob digest for the next pages.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import ijson

from soko.core.digests import Digest
from soko.errors import ValidationError

ROWS_PER_PAGE = 50
COLUMNS_SHOWN = 50
"""A page shows this many columns at most; the file itself has them all."""
CELL_CHARS = 300
"""A cell longer than this is cut (the file itself has it whole)."""
_SHAPES_KEPT = 64

Opener = Callable[[], BinaryIO]


@dataclass(frozen=True, slots=True)
class Shape:
    columns: list[str]
    rows: int | None
    """The table's ``nrows``; None when the file does not say."""


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    image: str | None = None
    """The path (in the version) of an image the cell shows (a W&B ``image-file``)."""


@dataclass(frozen=True, slots=True)
class Page:
    columns: list[str]
    hidden_columns: int
    rows: list[list[Cell]]
    first: int
    """The number of the page's first row, from 1."""
    total: int | None
    has_next: bool


def _unreadable(path: str) -> ValidationError:
    # ijson's own messages quote the bytes around the error over several lines.
    return ValidationError(f"{path!r} is not a table soko can read: it is not valid JSON.")


def _first(opener: Opener, prefix: str) -> Any:
    """The first value at *prefix* of the document, or None."""
    with opener() as reader:
        return next(iter(ijson.items(reader, prefix, use_float=True)), None)


def read_shape(opener: Opener, *, path: str) -> Shape:
    try:
        columns = _first(opener, "columns")
        rows = _first(opener, "nrows")
    except (ijson.JSONError, UnicodeDecodeError):
        raise _unreadable(path) from None
    names = [str(c) for c in columns] if isinstance(columns, list) else []
    count = rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None
    return Shape(names, count)


def read_page(opener: Opener, shape: Shape, *, path: str, number: int) -> Page:
    """Rows of page *number* (from 1), ``ROWS_PER_PAGE`` each."""
    start = (number - 1) * ROWS_PER_PAGE
    try:
        with opener() as reader:
            rows = ijson.items(reader, "data.item", use_float=True)
            # One row past the page says whether there is a next page.
            found = list(itertools.islice(rows, start, start + ROWS_PER_PAGE + 1))
    except (ijson.JSONError, UnicodeDecodeError):
        raise _unreadable(path) from None
    width = len(shape.columns) or max((len(r) for r in found if isinstance(r, list)), default=1)
    shown = min(width, COLUMNS_SHOWN)
    columns = shape.columns[:shown] or [str(i) for i in range(shown)]
    return Page(
        columns=columns,
        hidden_columns=width - shown,
        rows=[_row(r, shown) for r in found[:ROWS_PER_PAGE]],
        first=start + 1,
        total=shape.rows,
        has_next=len(found) > ROWS_PER_PAGE,
    )


def _row(row: Any, width: int) -> list[Cell]:
    values = row if isinstance(row, list) else [row]
    cells = [cell(v) for v in values[:width]]
    return cells + [Cell("")] * (width - len(cells))


def cell(value: Any) -> Cell:
    """What a page shows of a cell: text (escaped by the template), or an image."""
    if value is None:
        return Cell("")
    if isinstance(value, bool):
        return Cell("true" if value else "false")
    if isinstance(value, str):
        return Cell(_cut(value))
    if isinstance(value, int | float):
        return Cell(str(value))
    if (
        isinstance(value, dict)
        and value.get("_type") == "image-file"
        and isinstance(value.get("path"), str)
    ):
        caption = value.get("caption")
        return Cell(_cut(caption) if isinstance(caption, str) else "", image=value["path"])
    return Cell(_cut(json.dumps(value, ensure_ascii=False, default=str)))


def _cut(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


class Shapes:
    """The shapes of the tables looked at last, by blob digest (a table's shape never
    changes: its blob is its content)."""

    def __init__(self) -> None:
        self._shapes: OrderedDict[Digest, Shape] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, digest: Digest, opener: Opener, *, path: str) -> Shape:
        with self._lock:
            shape = self._shapes.get(digest)
            if shape is not None:
                self._shapes.move_to_end(digest)
                return shape
        shape = read_shape(opener, path=path)
        with self._lock:
            self._shapes[digest] = shape
            while len(self._shapes) > _SHAPES_KEPT:
                self._shapes.popitem(last=False)
        return shape
