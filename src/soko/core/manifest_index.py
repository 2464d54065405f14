"""The index of a stored manifest: where its entries are in the manifest's bytes, by slice
and by folder, so that a page of a version's files is read without reading the manifest.

A manifest blob is W&B's JSON with its entries in path order (:mod:`soko.core.manifest`).
The index cuts the ``contents`` object into slices of :data:`SLICE_ENTRIES` entries and
records, for each, the first path, the number of entries, the byte range of the slice in
the manifest blob and the XXH128 of those bytes (a slice read back is checked against it,
as the whole blob is against its name). Beside the slices, every folder: its size and
file count (all the files under it), and which slices hold its own files (those directly
in it), with how many in each. Then:

- a page of the entries in path order, or of those under a path prefix (contiguous in
  path order), reads the slices it needs (:meth:`ManifestIndex.prefix_slices`);
- a page of one folder's own files reads the slices that hold them
  (:meth:`ManifestIndex.folder_slices`); its sub-folders are in the index itself;
- one entry reads the one slice its path falls in.

The manifest itself, its bytes and its digest, are unchanged: the index is derived from
them and can be built again from them at any time (:func:`build`). Pure: no I/O.
"""

from __future__ import annotations

import bisect
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest, stored_blob_sizes
from soko.core.manifest_json import scan, skip_space
from soko.errors import CorruptBlobError, ValidationError

SLICE_ENTRIES = 1024
"""Entries per slice: a page of 100 files reads one or two slices (about 100 KB each)."""

INDEX_FORMAT = 1
_HASH = Algorithm.XXH128


@dataclass(frozen=True, slots=True)
class Slice:
    """Entries ``start`` to ``start + count`` of the manifest, the bytes
    ``offset:offset + length`` of its blob (``"path":{...},...``, without the braces)."""

    first: str
    start: int
    count: int
    offset: int
    length: int
    digest: str
    """XXH128 (hex) of the slice's bytes."""


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder of a manifest ("" is the top)."""

    path: str
    size: int
    """Bytes of every file under it (sizes the manifest gives; unknown counts as 0)."""
    files: int
    """Files under it, at any depth."""
    own: int
    """Files directly in it."""
    slices: tuple[tuple[int, int], ...]
    """(slice number, how many of its own files that slice holds), in slice order."""

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class ManifestIndex:
    """The slices and folders of one manifest blob (see the module)."""

    count: int
    size: int
    references: int
    reference_slices: tuple[tuple[int, int], ...]
    """(slice number, references in it), for slices holding any."""
    slices: tuple[Slice, ...]
    folders: Mapping[str, FolderInfo]
    _firsts: list[str] = field(default_factory=list, repr=False, compare=False)
    _children: dict[str, list[FolderInfo]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._firsts.extend(s.first for s in self.slices)
        children = self._children
        for folder in self.folders.values():
            if folder.path:
                children.setdefault(folder.path.rpartition("/")[0], []).append(folder)
        for subs in children.values():
            subs.sort(key=lambda f: f.name)

    # ----- questions -----------------------------------------------------------------

    def folder(self, path: str) -> FolderInfo | None:
        return self.folders.get(path)

    def subfolders(self, path: str) -> list[FolderInfo]:
        """The folders directly in folder *path*, by name."""
        return self._children.get(path, [])

    def slice_of(self, path: str) -> int | None:
        """The number of the slice *path* would be in, None when it sorts before them all."""
        at = bisect.bisect_right(self._firsts, path) - 1
        return at if at >= 0 else None

    def prefix_slices(self, prefix: str, after: str | None = None) -> range:
        """The slices that may hold entries whose path starts with *prefix* and sorts after
        *after* (every entry for ``""``): in path order those are contiguous."""
        low = prefix if after is None or after < prefix else after
        first = self.slice_of(low)
        start = 0 if first is None else first
        if not prefix:
            return range(start, len(self.slices))
        # Paths that start with the prefix sort below the prefix with its last character
        # raised by one; a slice starting at or beyond that holds none of them.
        stop = bisect.bisect_left(self._firsts, _successor(prefix))
        return range(start, max(start, stop))

    def folder_slices(self, path: str, skip: int) -> Iterator[tuple[int, int]]:
        """(slice number, own files of folder *path* to skip in it) from the *skip*-th own
        file of the folder on: the slices a page starting there reads, in order."""
        folder = self.folders.get(path)
        if folder is None:
            return
        for number, own in folder.slices:
            if skip >= own:
                skip -= own
                continue
            yield number, skip
            skip = 0

    # ----- stored form ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        data = {
            "format": INDEX_FORMAT,
            "count": self.count,
            "size": self.size,
            "references": self.references,
            "referenceSlices": self.reference_slices,
            "slices": [
                [s.first, s.start, s.count, s.offset, s.length, s.digest] for s in self.slices
            ],
            "folders": [[f.path, f.size, f.files, f.own, f.slices] for f in self.folders.values()],
        }
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ManifestIndex:
        """An index as :meth:`to_bytes` stored it; ValidationError for anything else."""
        try:
            data = json.loads(zlib.decompress(raw))
            if data["format"] != INDEX_FORMAT:
                raise ValidationError(f"Unknown manifest index format {data['format']!r}.")
            return cls(
                count=data["count"],
                size=data["size"],
                references=data["references"],
                reference_slices=tuple((a, b) for a, b in data["referenceSlices"]),
                slices=tuple(Slice(*row) for row in data["slices"]),
                folders={
                    path: FolderInfo(path, size, files, own, tuple((a, b) for a, b in slices))
                    for path, size, files, own, slices in data["folders"]
                },
            )
        except (zlib.error, ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"A stored manifest index is not readable: {exc}") from None


@dataclass(frozen=True, slots=True)
class EntriesPage:
    """Entries of a version in path order, and where the next page starts."""

    entries: list[Entry]
    next_after: str | None
    """The path to ask the next page after; None after the last page."""
    total: int
    """Entries in the whole version (whatever the prefix)."""

    def blob_sizes(self) -> dict[Digest, int | None]:
        """The blobs the page's stored entries name, each with its size: they are blobs of
        the version it was read from."""
        return stored_blob_sizes(self.entries)


def _successor(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def check_slice(part: Slice, raw: bytes) -> None:
    """Raise CorruptBlobError unless *raw* are the bytes the index recorded for *part*."""
    if _HASH.digest_of(raw).hex() != part.digest:
        raise CorruptBlobError(
            f"The bytes of the manifest's entries from {part.first!r} on do not match the "
            "digest its index recorded."
        )


def slice_values(raw: bytes) -> dict[str, Any]:
    """The entries of a slice's bytes, path to W&B's JSON object, in path order."""
    try:
        values = json.loads(b"{" + raw + b"}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptBlobError(f"A slice of a manifest is not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise CorruptBlobError("A slice of a manifest is not a JSON object's members.")
    return values


def slice_entries(raw: bytes) -> list[Entry]:
    """The entries of a slice's bytes, checked as a manifest's are."""
    return [Entry.from_json(path, value) for path, value in slice_values(raw).items()]


class _Folders:
    """Folder sizes and counts, gathered an entry at a time."""

    def __init__(self) -> None:
        self.own: dict[str, list[int]] = {}
        """folder -> [own files, own bytes]"""
        self.slices: dict[str, list[list[int]]] = {}

    def add(self, path: str, size: int, number: int) -> None:
        folder = path.rpartition("/")[0]
        own = self.own.get(folder)
        if own is None:
            own = self.own[folder] = [0, 0]
            self.slices[folder] = []
        own[0] += 1
        own[1] += size
        parts = self.slices[folder]
        if parts and parts[-1][0] == number:
            parts[-1][1] += 1
        else:
            parts.append([number, 1])

    def infos(self) -> dict[str, FolderInfo]:
        files: dict[str, int] = {"": 0}
        sizes: dict[str, int] = {"": 0}
        for folder, (count, size) in self.own.items():
            # Every folder above a folder's files counts them: walk up to the top.
            path = folder
            while True:
                files[path] = files.get(path, 0) + count
                sizes[path] = sizes.get(path, 0) + size
                if not path:
                    break
                path = path.rpartition("/")[0]
        return {
            path: FolderInfo(
                path,
                sizes[path],
                files[path],
                self.own.get(path, [0, 0])[0],
                tuple((a, b) for a, b in self.slices.get(path, [])),
            )
            for path in sorted(files)
        }


def build(raw: bytes, slice_entries_max: int | None = None) -> ManifestIndex:
    """The index of the manifest stored as *raw* (checked against its name already).

    Slices of *slice_entries_max* entries (default :data:`SLICE_ENTRIES`). One pass of
    the JSON decoder's scanner over the entries; ValidationError for a
    manifest it cannot read (not canonical JSON of an object with ``contents``)."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"A manifest is not UTF-8: {exc}") from None
    ascii_only = raw.isascii()
    try:
        start = _contents_start(text)
        return _build(text, start, ascii_only, slice_entries_max or SLICE_ENTRIES)
    except (StopIteration, ValueError, IndexError) as exc:
        raise ValidationError(f"A manifest cannot be indexed: {exc}") from None


def build_of(
    manifest: Manifest,
    each_piece: Callable[[bytes], None],
    slice_entries_max: int | None = None,
) -> ManifestIndex:
    """The index :func:`build` makes of ``manifest.to_bytes()``, made from the manifest's
    entries while its bytes are encoded a slice at a time (:meth:`Manifest.pieces`), each
    piece handed to *each_piece* in order (to hash or write it): the bytes of a large
    manifest are not held whole, nor decoded again to be indexed."""
    per_slice = slice_entries_max or SLICE_ENTRIES
    table = manifest.table
    if table is None:
        raw = manifest.to_bytes()
        each_piece(raw)
        return build(raw, per_slice)
    columns = table.columns
    paths, sizes, refs = columns.paths, columns.sizes, columns.refs
    pieces = manifest.pieces(per_slice)
    slices: list[Slice] = []
    folders = _Folders()
    reference_slices: list[tuple[int, int]] = []
    head = next(pieces)
    each_piece(head)
    total = references = 0
    offset = len(head)
    for number, start in enumerate(range(0, len(columns), per_slice)):
        if start:
            comma = next(pieces)
            each_piece(comma)
            offset += len(comma)
        piece = next(pieces)
        each_piece(piece)
        stop = min(len(columns), start + per_slice)
        in_refs = 0
        for row in range(start, stop):
            size = sizes[row] if sizes[row] > 0 else 0
            folders.add(paths[row], size, number)
            total += size
            if refs and row in refs:
                in_refs += 1
        if in_refs:
            references += in_refs
            reference_slices.append((number, in_refs))
        digest = _HASH.digest_of(piece).hex()
        slices.append(Slice(paths[start], start, stop - start, offset, len(piece), digest))
        offset += len(piece)
    for piece in pieces:
        each_piece(piece)
    return ManifestIndex(
        len(columns), total, references, tuple(reference_slices), tuple(slices), folders.infos()
    )


def _contents_start(text: str) -> int:
    """Where the ``contents`` object's ``{`` is."""
    pos = skip_space(text, 0)
    if text[pos : pos + 1] != "{":
        raise ValueError("not an object")
    while True:
        key, pos = scan(text, skip_space(text, pos + 1))
        pos = skip_space(text, pos)
        if text[pos : pos + 1] != ":":
            raise ValueError("not an object")
        pos = skip_space(text, pos + 1)
        if key == "contents":
            if text[pos : pos + 1] != "{":
                raise ValueError("contents is not an object")
            return pos
        _, pos = scan(text, pos)
        pos = skip_space(text, pos)
        if text[pos : pos + 1] != ",":
            raise ValueError("no contents")


def _build(text: str, pos: int, ascii_only: bool, per_slice: int) -> ManifestIndex:
    slices: list[Slice] = []
    folders = _Folders()
    reference_slices: list[tuple[int, int]] = []
    count = total = references = 0
    # Byte offsets: character offsets when the text is ASCII, else counted slice by slice.
    char_base = byte_base = 0

    def byte_at(char: int) -> int:
        nonlocal char_base, byte_base
        if ascii_only:
            return char
        byte_base += len(text[char_base:char].encode())
        char_base = char
        return byte_base

    pos = skip_space(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return ManifestIndex(0, 0, 0, (), (), {"": FolderInfo("", 0, 0, 0, ())})
    previous: str | None = None
    slice_start_char = pos
    first = ""
    in_slice = slice_refs = 0
    while True:
        entry_start = pos
        path, pos = scan(text, pos)
        pos = skip_space(text, pos)
        if type(path) is not str or text[pos : pos + 1] != ":":
            raise ValueError("not a manifest entry")
        if previous is not None and path <= previous:
            raise ValueError("entries are not in path order")
        previous = path
        value, pos = scan(text, skip_space(text, pos + 1))
        if not isinstance(value, dict):
            raise ValueError(f"entry {path!r} is not an object")
        if in_slice == 0:
            slice_start_char, first = entry_start, path
        size = value.get("size")
        size = size if type(size) is int and size > 0 else 0
        number = len(slices)
        folders.add(path, size, number)
        total += size
        if value.get("ref") is not None:
            references += 1
            slice_refs += 1
        in_slice += 1
        count += 1
        end = pos
        pos = skip_space(text, pos)
        mark = text[pos : pos + 1]
        if mark not in ("}", ","):
            raise ValueError("not a manifest entry")
        if in_slice == per_slice or mark == "}":
            offset = byte_at(slice_start_char)
            length = byte_at(end) - offset
            digest = _HASH.digest_of(text[slice_start_char:end].encode()).hex()
            slices.append(Slice(first, count - in_slice, in_slice, offset, length, digest))
            if slice_refs:
                reference_slices.append((number, slice_refs))
            in_slice = slice_refs = 0
        if mark == "}":
            break
        pos = skip_space(text, pos + 1)
    return ManifestIndex(
        count, total, references, tuple(reference_slices), tuple(slices), folders.infos()
    )
