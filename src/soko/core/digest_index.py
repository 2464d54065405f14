"""The blobs a manifest names, with their sizes, in about 40 bytes a blob.

A server asks "does this version name this blob?" for every blob it serves, and an HTTP
client asks which version it read names a blob it fetches. A dict of a manifest's blob
sizes (:meth:`~soko.core.manifest.Manifest.blob_sizes`) answers in a lookup, at about 200
bytes a blob (a :class:`~soko.core.digests.Digest`, its bytes, its size and a dict slot):
200 MB for a million files, kept while the version is read from. :class:`DigestIndex`
answers the same from arrays: the manifest's raw digest column and its sizes, copied, and
the rows sorted by the first 8 bytes of their digest, found by bisection (a digest is
uniformly distributed: rows that share those bytes are rare and compared whole).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping

from soko.core.digests import Algorithm, Digest
from soko.core.entries import RAW, Columns, algorithm_of
from soko.core.manifest import Manifest

_KEY = 8
"""Bytes of a digest sorted on: the native unsigned 64-bit word the raw column holds."""
_NO_SIZE = -1


def members_of(manifest: Manifest) -> Mapping[Digest, int | None]:
    """The blobs *manifest*'s stored entries name with their sizes: a :class:`DigestIndex`
    of its columns, or the manifest's own map when it keeps no columns (or built it)."""
    table = manifest.table
    if table is None or "_blob_sizes" in manifest.__dict__:
        return manifest.blob_sizes()
    return DigestIndex(table.columns)


class DigestIndex(Mapping[Digest, int | None]):
    """Each distinct content digest of the stored rows of *columns*, with the size a row
    gives it (rows of one blob give one size; None when unknown); read-only, and
    independent of *columns* once made."""

    __slots__ = (
        "_algorithm",
        "_algorithms",
        "_count",
        "_extra_ids",
        "_keys",
        "_others",
        "_raw",
        "_rows",
        "_sizes",
    )

    def __init__(self, columns: Columns) -> None:
        algorithms = [algorithm_of(extra) for extra in columns.extras]
        single = algorithms[0] if len(set(algorithms)) == 1 else None
        self._algorithm: Algorithm | None = single
        self._algorithms = algorithms
        self._extra_ids = None if single is not None else array("I", columns.extra_ids)
        self._raw = bytes(columns.raw)
        self._sizes = array("q", columns.sizes)
        texts, refs = columns.texts, columns.refs
        words = array("Q")
        words.frombytes(self._raw)
        firsts = words[:: RAW // _KEY]  # the first word of each row's digest
        del words
        # One int per row while sorting (about 48 bytes a row, let go once sorted).
        if texts or refs:
            order = sorted(
                firsts[row] << 32 | row
                for row in range(len(firsts))
                if row not in texts and row not in refs
            )
        else:
            order = sorted(word << 32 | row for row, word in enumerate(firsts))
        del firsts
        self._keys = array("Q", (packed >> 32 for packed in order))
        self._rows = array("I", (packed & 0xFFFFFFFF for packed in order))
        del order
        # Digests the column does not hold raw (text that is not the plain base64 of 16
        # bytes) are few: a dict of their own.
        self._others: dict[Digest, int | None] = {}
        for row, text in texts.items():
            if row not in refs:
                digest = Digest.from_b64(text, self._algorithm_of(row))
                if self._row(digest) is None:
                    self._others.setdefault(digest, self._size_of(row))
        self._count = sum(1 for _ in self._distinct_rows()) + len(self._others)

    def _algorithm_of(self, row: int) -> Algorithm:
        if self._algorithm is not None:
            return self._algorithm
        assert self._extra_ids is not None
        return self._algorithms[self._extra_ids[row]]

    def _size_of(self, row: int) -> int | None:
        size = self._sizes[row]
        return None if size == _NO_SIZE else size

    def _same(self, row: int, other: int) -> bool:
        raw = self._raw
        return raw[row * RAW : row * RAW + RAW] == raw[
            other * RAW : other * RAW + RAW
        ] and self._algorithm_of(row) is self._algorithm_of(other)

    def _distinct_rows(self) -> Iterator[int]:
        """The first row of each distinct digest (rows of one digest share its key, and so
        lie in one run of equal keys)."""
        keys, rows = self._keys, self._rows
        start = 0
        for position, key in enumerate(keys):
            if position and key != keys[position - 1]:
                start = position
            row = rows[position]
            if position == start or not any(
                self._same(row, rows[earlier]) for earlier in range(start, position)
            ):
                yield row

    def _row(self, digest: Digest) -> int | None:
        raw = digest.raw
        key = int.from_bytes(raw[:_KEY], sys.byteorder)
        keys, rows, column = self._keys, self._rows, self._raw
        position = bisect_left(keys, key)
        while position < len(keys) and keys[position] == key:
            row = rows[position]
            if (
                column[row * RAW : row * RAW + RAW] == raw
                and self._algorithm_of(row) is digest.algorithm
            ):
                return row
            position += 1
        return None

    def __getitem__(self, digest: Digest) -> int | None:
        if digest.__class__ is not Digest:
            raise KeyError(digest)
        row = self._row(digest)
        if row is not None:
            return self._size_of(row)
        return self._others[digest]

    def __contains__(self, digest: object) -> bool:
        if digest.__class__ is not Digest:
            return False
        assert isinstance(digest, Digest)
        return self._row(digest) is not None or digest in self._others

    def __iter__(self) -> Iterator[Digest]:
        raw = self._raw
        for row in self._distinct_rows():
            yield Digest(self._algorithm_of(row), raw[row * RAW : row * RAW + RAW])
        yield from self._others

    def __len__(self) -> int:
        return self._count
