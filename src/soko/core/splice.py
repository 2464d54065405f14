"""A manifest made from a stored one and a change, at a cost in proportion to the change.

A stored manifest's index (:mod:`soko.core.manifest_index`) cuts its entries into slices,
each a byte range of the blob with its XXH128. A manifest that differs from it by a few
entries shares every slice but those the changed paths fall in: :func:`splice` copies the
unchanged slices' bytes (each checked against the digest its index recorded), decodes and
encodes again the slices a change falls in, and derives the new manifest's version digest,
entry count, size and index from the old index and the slices encoded again.

The bytes are those the whole manifest encodes to (:meth:`Manifest.to_bytes`): a slice is
copied only when its bytes are in the canonical form, which a pattern of that form checks
(entry keys in W&B's order, no escape, no whitespace, an ``extra`` of ``alg`` alone); any
other slice is decoded and encoded again, like a changed one. The version digest's lines
of a copied slice come from the same pattern, in C; only the slices encoded again cost
Python per entry. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from soko.core.digests import VERSION_DIGEST_HEADER, Algorithm, Digest, Hasher
from soko.core.entries import Columns, EntryTable, checked_json
from soko.core.manifest import MANIFEST_ALGORITHM, Manifest, ManifestRef
from soko.core.manifest_index import (
    SLICE_ENTRIES,
    FolderInfo,
    ManifestIndex,
    Slice,
    _Folders,
    check_slice,
    slice_values,
)

_HASH = Algorithm.XXH128


_ENTRY_TAIL = (
    rb'(?:,"ref":"[^"\\]*")?(?:,"birthArtifactID":"[^"\\]*")?'
    rb'(?:,"size":(?:0|[1-9][0-9]*))?(?:,"extra":\{"alg":"[^"\\]*"\})?\}'
)
# One entry in canonical form, without an escape (so a string ends at the next quote).
_ENTRY = rb'"(?!\./)[^"\\]*":\{"digest":"[^"\\]*"' + _ENTRY_TAIL
_CANONICAL = re.compile(rb"(?:" + _ENTRY + rb",)*" + _ENTRY)
# In a canonical slice, what follows an entry's digest up to the next entry's path: made
# a newline, as ``":{"digest":"`` (which only an entry's start holds) is made a colon,
# leaves the lines of a version digest. Literal replacements: no Python per entry.
_TAIL = re.compile(rb'"' + _ENTRY_TAIL + rb'(?:,")?')
_HEAD = b'":{"digest":"'


def digest_lines(raw: bytes | memoryview) -> bytes | None:
    """The ``path:digest`` lines (each ending in a newline) of a slice's bytes when they
    are in canonical form, else None: such a slice is copied as it is."""
    data = bytes(raw)
    if _CANONICAL.fullmatch(data) is None:
        return None
    # Without the first path's opening quote, every quote left is in an entry's tail.
    return _TAIL.sub(b"\n", data.replace(_HEAD, b":")[1:])


def head_bytes() -> bytes:
    """The bytes of a manifest before its first entry (``{...,"contents":{``): a draft's
    manifest has the default storage policy config, whatever its base's."""
    empty = Manifest(EntryTable.of_sorted(Columns()))
    return empty.to_bytes()[:-2]


@dataclass(frozen=True, slots=True)
class Spliced:
    """A manifest made by :func:`splice`: what its blob and its version row need."""

    raw: bytes
    ref: ManifestRef
    digest: str
    """The version digest (hex)."""
    count: int
    size: int
    index: ManifestIndex


@dataclass(slots=True)
class _Piece:
    """A run of the new manifest's entries: a slice copied from the base, or entries
    encoded again."""

    raw: bytes | memoryview
    """Its bytes: a view of the base's for a slice copied."""
    first: str
    count: int
    digest: str
    base: int | None
    """The number of the base slice copied, None for entries encoded again."""
    columns: Columns | None


def splice(
    base_raw: bytes,
    base_index: ManifestIndex,
    changes: EntryTable,
    removed: frozenset[str],
    algorithm: Algorithm,
    *,
    per_slice: int = SLICE_ENTRIES,
) -> Spliced:
    """The manifest of the base (its blob *base_raw*, checked, and its index) with the
    entries of *changes* put in (replacing those at their paths) and the paths of *removed*
    taken out (a path in both is the change's). CorruptBlobError when a slice's bytes do
    not match the digest its index recorded. Entries encoded again make slices of at most
    *per_slice* entries."""
    touched = _touched(base_index, changes, removed)
    # The version digest's lines are hashed as each piece is made, in path order: the
    # lines of a million entries are never held at once.
    hasher = algorithm.hasher(VERSION_DIGEST_HEADER)
    pieces: list[_Piece] = []
    folders = _NewFolders(base_index)
    view = memoryview(base_raw)
    for number, part in enumerate(base_index.slices):
        at = view[part.offset : part.offset + part.length]
        raw = bytes(at)
        check_slice(part, raw)
        if number not in touched:
            lines = digest_lines(raw)
            if lines is not None:
                hasher.update(lines)
                pieces.append(_Piece(at, part.first, part.count, part.digest, number, None))
                continue
        values = slice_values(raw)
        for path, value in values.items():
            folders.drop(path, value.get("size"))
        rows = _merged(values, touched.get(number), changes, removed)
        pieces.extend(_encoded(rows, per_slice, hasher))
    if not base_index.slices and len(changes):
        rows = list(_rows_of(changes.columns, range(len(changes))))
        pieces.extend(_encoded(rows, per_slice, hasher))
    return _assemble(pieces, folders, hasher.hexdigest())


def _touched(
    index: ManifestIndex, changes: EntryTable, removed: frozenset[str]
) -> dict[int, range]:
    """Base slice number -> the rows of *changes* that fall in it (an empty range for a
    slice only a removal falls in)."""
    touched: dict[int, range] = {}
    paths = changes.columns.paths
    if index.slices:
        row = 0
        while row < len(paths):
            number = index.slice_of(paths[row]) or 0
            # The rows up to the next slice's first path fall in this one.
            end = row + 1
            if number + 1 < len(index.slices):
                limit = index.slices[number + 1].first
                while end < len(paths) and paths[end] < limit:
                    end += 1
            else:
                end = len(paths)
            touched[number] = range(row, end)
            row = end
        for path in removed:
            at = index.slice_of(path)
            if at is not None and at not in touched:
                touched[at] = range(0)
    return touched


_Row = tuple[str, str, int | None, str | None, Mapping[str, Any], str | None]


def _rows_of(columns: Columns, rows: range) -> Iterator[_Row]:
    for row in rows:
        entry = columns.entry(row)
        yield (
            entry.path,
            entry.digest,
            entry.size,
            entry.ref,
            entry.extra,
            entry.birth_artifact_id,
        )


def _merged(
    values: Mapping[str, Any], rows: range | None, changes: EntryTable, removed: frozenset[str]
) -> list[_Row]:
    """The entries of one base slice with the changes that fall in it, in path order."""
    changed = {row[0]: row for row in _rows_of(changes.columns, rows or range(0))}
    kept: dict[str, _Row] = {}
    for path, value in values.items():
        if path not in removed and path not in changed:
            row = checked_json(path, value)
            kept[row[0]] = row
    kept.update(changed)
    return [kept[path] for path in sorted(kept)]


def _encoded(rows: Sequence[_Row], per_slice: int, hasher: Hasher) -> Iterator[_Piece]:
    """*rows* encoded as pieces of at most *per_slice* entries, their version digest
    lines given to *hasher*."""
    for start in range(0, len(rows), per_slice):
        columns = Columns()
        for path, digest, size, ref, extra, birth in rows[start : start + per_slice]:
            columns.append(path, digest, size, ref, columns.extra_id(extra), birth)
        raw = columns.rows_json(range(len(columns))).encode()
        hasher.update(columns.path_digests(0, len(columns)).encode())
        yield _Piece(
            raw,
            columns.paths[0],
            len(columns),
            _HASH.digest_of(raw).hex(),
            None,
            columns,
        )


def _assemble(pieces: list[_Piece], folders: _NewFolders, digest: str) -> Spliced:
    base = folders.base
    slices: list[Slice] = []
    renumbered: dict[int, int] = {}
    base_refs = dict(base.reference_slices)
    references = 0
    reference_slices: list[tuple[int, int]] = []
    head = head_bytes()
    offset = len(head)
    count = 0
    for number, piece in enumerate(pieces):
        length = len(piece.raw)
        slices.append(Slice(piece.first, count, piece.count, offset, length, piece.digest))
        if piece.base is not None:
            renumbered[piece.base] = number
            refs = base_refs.get(piece.base, 0)
        else:
            assert piece.columns is not None
            refs = folders.add(piece.columns, number)
        if refs:
            references += refs
            reference_slices.append((number, refs))
        count += piece.count
        offset += length + 1
    # One join: the new blob is the one copy made of the base's bytes.
    parts: list[bytes | memoryview] = [head]
    for piece in pieces:
        parts += (piece.raw, b",")
    if pieces:
        parts.pop()  # no comma after the last
    parts.append(b"}}")
    raw = b"".join(parts)
    ref = ManifestRef(Digest.of_bytes(raw, MANIFEST_ALGORITHM))
    infos = folders.infos(renumbered)
    size = infos[""].size
    index = ManifestIndex(count, size, references, tuple(reference_slices), tuple(slices), infos)
    return Spliced(raw, ref, digest, count, size, index)


def _size(value: Any) -> int:
    """A size as the index counts it: unknown counts as 0."""
    return value if type(value) is int and value > 0 else 0


class _NewFolders:
    """The folders of the new index: the base's, less the files of the base slices not
    copied, plus the files of the pieces encoded again."""

    def __init__(self, base: ManifestIndex) -> None:
        self.base = base
        self._dropped: dict[str, list[int]] = {}
        self._added = _Folders()

    def drop(self, path: str, size: Any) -> None:
        """A base entry of a slice not copied."""
        dropped = self._dropped.setdefault(path.rpartition("/")[0], [0, 0])
        dropped[0] += 1
        dropped[1] += _size(size)

    def add(self, columns: Columns, number: int) -> int:
        """The entries of a piece encoded again; returns its references."""
        added, sizes = self._added, columns.sizes
        for row, path in enumerate(columns.paths):
            added.add(path, _size(sizes[row]), number)
        return len(columns.refs)

    def infos(self, renumbered: Mapping[int, int]) -> dict[str, FolderInfo]:
        base = self.base
        own: dict[str, list[int]] = {}
        parts: dict[str, list[list[int]]] = {}
        for folder in base.folders.values():
            if not folder.own:
                continue
            # A folder's own size is not stored: all that is under it less its sub-folders.
            files = folder.own
            size = folder.size - sum(sub.size for sub in base.subfolders(folder.path))
            dropped = self._dropped.get(folder.path)
            if dropped is not None:
                files -= dropped[0]
                size -= dropped[1]
            if files:
                own[folder.path] = [files, size]
                parts[folder.path] = [
                    [renumbered[n], c] for n, c in folder.slices if n in renumbered
                ]
        added = self._added
        for path, (files, size) in added.own.items():
            mine = own.setdefault(path, [0, 0])
            mine[0] += files
            mine[1] += size
            parts.setdefault(path, []).extend(added.slices[path])
        gathered = _Folders()
        gathered.own = own
        gathered.slices = {path: sorted(p) for path, p in parts.items()}
        return gathered.infos()
