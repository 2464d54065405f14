"""Reading W&B's manifest JSON a value at a time, with the JSON decoder's own scanner: a
document of a million entries is turned into columns without ``json.loads`` holding two
dicts per entry. Used by :mod:`soko.core.manifest` and :mod:`soko.core.manifest_index`.
Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from soko.core.entries import Columns, checked_json
from soko.errors import ValidationError


def check_version(data: Any) -> None:
    version = data.get("version") if isinstance(data, Mapping) else None
    # `True == 1` in Python, so the type is checked as well as the value.
    if type(version) is not int or version != 1:
        raise ValidationError("Unsupported manifest: expected a version 1 manifest object.")


# The decoder's own scanner, in C: one JSON value at a position (typeshed omits it).
scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


def skip_space(text: str, pos: int) -> int:
    """Where the JSON whitespace at *pos* ends."""
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def parse_streaming(raw: bytes | str) -> tuple[dict[str, Any], Columns] | None:
    """The top-level fields of a manifest document and its entries, each entry turned into
    an :class:`Entry` as soon as it is read: ``json.loads`` of a million entries holds two
    dicts per entry at once (about 500 MB), this holds one entry's. None for a document it
    does not take (not UTF-8, not an object, bad JSON, no version 1 before the entries):
    the caller parses those whole, as before."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return None
    header: dict[str, Any] = {}
    entries: Columns | None = None
    try:
        pos = skip_space(text, 0)
        if text[pos : pos + 1] != "{":
            return None
        while True:
            key, pos = scan(text, skip_space(text, pos + 1))
            pos = skip_space(text, pos)
            if type(key) is not str or text[pos : pos + 1] != ":":
                return None
            pos = skip_space(text, pos + 1)
            if key == "contents" and text[pos : pos + 1] == "{":
                check_version(header)
                entries, pos = _scan_entries(text, pos)
                header.pop(key, None)
            else:
                header[key], pos = scan(text, pos)
            pos = skip_space(text, pos)
            mark = text[pos : pos + 1]
            if mark == "}":
                break
            if mark != ",":
                return None
    except (StopIteration, ValueError):
        return None
    if entries is None or "contents" in header or text[skip_space(text, pos + 1) :]:
        return None
    return header, entries


def _scan_entries(text: str, pos: int) -> tuple[Columns, int]:
    """The entries of the ``contents`` object that starts at *pos*, and where it ends.
    A path written twice keeps its last entry (see :meth:`EntryTable.of_rows`), as
    ``json.loads`` does."""
    entries = Columns()
    pos = skip_space(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return entries, pos + 1
    while True:
        path, pos = scan(text, pos)
        pos = skip_space(text, pos)
        if type(path) is not str or text[pos : pos + 1] != ":":
            raise ValueError("not a manifest entry")
        value, pos = scan(text, skip_space(text, pos + 1))
        append_json(entries, path, value)
        pos = skip_space(text, pos)
        mark = text[pos : pos + 1]
        if mark == "}":
            return entries, pos + 1
        if mark != ",":
            raise ValueError("not a manifest entry")
        pos = skip_space(text, pos + 1)


def append_json(columns: Columns, path: str, value: Any) -> None:
    path, digest, size, ref, extra, birth = checked_json(path, value)
    columns.append(path, digest, size, ref, columns.extra_id(extra), birth)
