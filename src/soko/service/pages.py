"""A version's entries a page at a time, through the index of its manifest.

The index (:mod:`soko.core.manifest_index`) is kept in the ``manifest_indexes`` table, keyed
by the manifest blob. A commit writes it for a manifest of
:data:`~soko.service.store.INDEX_AT_COMMIT` entries or more (its cost then is one scan of
the manifest's bytes, already in memory); a smaller manifest, and any manifest committed
before the table existed, gets it the first time a page is asked for (one read of the
manifest, once). Every slice read back is checked against the digest the index recorded
for it.

What a page costs is the slices it reads: about :data:`~soko.core.manifest_index.
SLICE_ENTRIES` entries each, whatever the size of the version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from soko.core.manifest import Entry, ManifestRef
from soko.core.manifest_index import (
    EntriesPage,
    ManifestIndex,
    Slice,
    build,
    check_slice,
    slice_entries,
    slice_values,
)
from soko.errors import CorruptBlobError
from soko.metadata.schema import manifest_indexes
from soko.storage.base import read_exactly

if TYPE_CHECKING:
    from soko.service.store import Store

PAGE_MAX = 10_000
"""The most entries one page may ask for."""


def index_of(
    store: Store, ref: ManifestRef | str, *, before_build: Callable[[], None] | None = None
) -> ManifestIndex:
    """The index of the manifest blob *ref*: kept in process, else the stored row, else
    built from the manifest (after *before_build*, which may refuse: the server's bound on
    the manifests it reads whole) and stored."""
    if isinstance(ref, str):
        ref = ManifestRef.parse(ref)
    key = ref.key
    known = store.known_index(key)
    if known is not None:
        return known
    try:
        with store.engine.connect() as conn:
            row = conn.execute(
                select(manifest_indexes.c.data).where(manifest_indexes.c.manifest_blob == key)
            ).first()
    except DBAPIError:
        # A store this account may only read, of a schema before indexes: no table. The
        # index is then built and kept in this process only.
        row = None
    if row is not None:
        index = ManifestIndex.from_bytes(row.data)
    else:
        if before_build is not None:
            before_build()
        index = build(store.manifest_bytes(ref))
        store.save_index(key, index)
    store.keep_index(key, index)
    return index


def read_slice(store: Store, ref: ManifestRef, part: Slice) -> bytes:
    """The bytes of one slice of the manifest blob *ref*, checked against the index."""
    with store.blobs.open(ref.digest) as reader:
        if reader.seekable():
            reader.seek(part.offset)
        else:
            # A stream that cannot seek (an object store's body): read up to the slice.
            skip = part.offset
            while skip:
                chunk = reader.read(min(skip, 1 << 20))
                if not chunk:
                    break  # too short: read_exactly says so
                skip -= len(chunk)
        raw = read_exactly(reader, part.length)
    try:
        check_slice(part, raw)
    except CorruptBlobError:
        # Either the blob is damaged (the whole read sets it aside) or the index is not
        # the blob's: drop the kept one, so that the next read builds it again.
        store.manifest_bytes(ref)
        _forget(store, ref.key)
        raise
    return raw


def _forget(store: Store, key: str) -> None:
    with store._lock:
        store._indexes.pop(key, None)
    try:
        with store.engine.begin() as conn:
            conn.execute(manifest_indexes.delete().where(manifest_indexes.c.manifest_blob == key))
    except DBAPIError:
        pass  # a store this account may only read: nothing was stored


def entries_page(
    store: Store,
    ref: ManifestRef | str,
    *,
    prefix: str = "",
    after: str | None = None,
    limit: int = 1000,
    before_build: Callable[[], None] | None = None,
) -> EntriesPage:
    """Up to *limit* entries whose path starts with *prefix* and sorts after *after*."""
    if isinstance(ref, str):
        ref = ManifestRef.parse(ref)
    index = index_of(store, ref, before_build=before_build)
    limit = max(1, min(limit, PAGE_MAX))
    found: list[Entry] = []
    for number in index.prefix_slices(prefix, after):
        for entry in slice_entries(read_slice(store, ref, index.slices[number])):
            if after is not None and entry.path <= after:
                continue
            if not entry.path.startswith(prefix):
                if entry.path > prefix:
                    return EntriesPage(found, None, index.count)
                continue
            if len(found) == limit:
                return EntriesPage(found, found[-1].path, index.count)
            found.append(entry)
    return EntriesPage(found, None, index.count)


def iter_entries(
    store: Store,
    ref: ManifestRef | str,
    *,
    prefix: str = "",
    after: str | None = None,
    page_size: int = PAGE_MAX,
) -> Iterator[Entry]:
    """Every entry under *prefix* that sorts after *after*, asked for *page_size* at a
    time (memory: one page)."""
    while True:
        page = entries_page(store, ref, prefix=prefix, after=after, limit=page_size)
        yield from page.entries
        if page.next_after is None:
            return
        after = page.next_after


def iter_values(store: Store, ref: ManifestRef | str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, W&B's JSON object) of every entry in path order, a slice at a time."""
    if isinstance(ref, str):
        ref = ManifestRef.parse(ref)
    index = index_of(store, ref)
    for part in index.slices:
        yield from slice_values(read_slice(store, ref, part)).items()


def entry_at(store: Store, ref: ManifestRef | str, path: str) -> Entry | None:
    """The entry at exactly *path*, None when the version has none: one slice read."""
    if isinstance(ref, str):
        ref = ManifestRef.parse(ref)
    index = index_of(store, ref)
    number = index.slice_of(path)
    if number is None:
        return None
    value = slice_values(read_slice(store, ref, index.slices[number])).get(path)
    return None if value is None else Entry.from_json(path, value)


def folder_files(
    store: Store, ref: ManifestRef | str, folder: str, *, skip: int, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """Up to *limit* of the files directly in *folder*, from its *skip*-th on, as (path,
    W&B's JSON object) in path order."""
    if isinstance(ref, str):
        ref = ManifestRef.parse(ref)
    index = index_of(store, ref)
    rows: list[tuple[str, dict[str, Any]]] = []
    for number, skipped in index.folder_slices(folder, skip):
        left = skipped
        for path, value in slice_values(read_slice(store, ref, index.slices[number])).items():
            if path.rpartition("/")[0] != folder:
                continue
            if left:
                left -= 1
                continue
            rows.append((path, value))
            if len(rows) == limit:
                return rows
    return rows


def references(
    store: Store, ref: ManifestRef | str, *, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """The first *limit* references of the version (entries whose bytes live elsewhere)."""
    if isinstance(ref, str):
        ref = ManifestRef.parse(ref)
    index = index_of(store, ref)
    rows: list[tuple[str, dict[str, Any]]] = []
    for number, _ in index.reference_slices:
        for path, value in slice_values(read_slice(store, ref, index.slices[number])).items():
            if value.get("ref") is not None:
                rows.append((path, value))
                if len(rows) == limit:
                    return rows
    return rows
