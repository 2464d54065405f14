"""A soko store: one metadata database and one blob store, opened together.

SQLAlchemy is loaded when a store is opened, not with this module: the embedded store's
short commands import it and never open one (see soko.client.local).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import MANIFEST_ALGORITHM, Manifest, ManifestRef
from soko.core.manifest_index import ManifestIndex
from soko.core.manifest_index import build_of as index_of
from soko.errors import CorruptBlobError, SokoError
from soko.storage.base import BlobStore
from soko.storage.capabilities import HasQuarantine
from soko.storage.local import LocalBlobStore
from soko.storage.quarantine import Quarantine

_VERIFY_CHUNK = 4 * 1024 * 1024

if TYPE_CHECKING:
    from sqlalchemy import Engine

SET_ASIDE = (
    " It was moved to the store's quarantine: log the same files again to store it again "
    "(or, on the embedded store, run `soko verify --repair`)."
)
"""Said after a blob found damaged and set aside: how a user gets it back."""

INDEX_AT_COMMIT = 50_000
"""A commit writes the index of a manifest of this many entries or more. Below it, the
first page asked for builds it (a read of the manifest, about 2.5 ms of CPU per 1,000
entries to index), and a log of 20,000 files (``bench/store_bench.py``) pays nothing more."""

MANIFESTS_KEPT = 32
CACHED_ENTRIES = 250_000
"""The parsed manifests a store keeps in process: at most :data:`MANIFESTS_KEPT`, with at
most this many entries over all of them (about 110 bytes an entry, its path and columns:
30 MB). A larger manifest is not kept: a server would otherwise hold the last few
million-file manifests it committed or read for good (over 100 MB each), where what it
asks of them again is answered by their index (pages, new drafts) and by the blob sizes
it keeps for downloads (:mod:`soko.server.state`)."""


@dataclass
class Store:
    engine: Engine
    blobs: BlobStore
    _manifests: OrderedDict[str, Manifest] = field(default_factory=OrderedDict)
    _indexes: OrderedDict[str, ManifestIndex] = field(default_factory=OrderedDict)
    """Manifest indexes read or written last (read through :mod:`soko.service.pages`)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cached_entries: int = 0
    """Entries over all of ``_manifests``."""

    @classmethod
    def open_local(cls, root: Path) -> Store:
        """The embedded store under *root*: ``soko.db`` beside a ``blobs`` folder store."""
        from soko.metadata.engine import sqlite_url

        root.mkdir(parents=True, exist_ok=True)
        return cls.open(sqlite_url(root / "soko.db"), LocalBlobStore(root / "store"))

    @classmethod
    def open(cls, db_url: str, blobs: BlobStore) -> Store:
        """The store of *db_url* and *blobs*; StoreError when *blobs* belongs to another
        database (see :mod:`soko.service.identity`)."""
        from soko.metadata.engine import open_engine
        from soko.service import identity

        engine = open_engine(db_url)
        try:
            identity.bind(engine, blobs, store_name=repr(blobs))
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, blobs)

    def put_manifest(self, manifest: Manifest) -> str:
        """Store a manifest as a blob, and its index when it is large (see
        :data:`INDEX_AT_COMMIT`); returns its key (``xxh128:<hex>``).

        A large manifest is encoded twice, a slice at a time: once to hash and index it,
        once to write it under that digest. Its bytes (about 95 per entry, 100 MB for a
        million) are never held whole; the second encoding costs about 1.3 s of CPU per
        million entries."""
        if len(manifest) < INDEX_AT_COMMIT:
            ref, raw = ManifestRef.encode(manifest)
            self.blobs.put_bytes(ref.digest, raw)
            self._remember(ref.key, manifest)
            return ref.key
        hasher = MANIFEST_ALGORITHM.hasher()
        index = index_of(manifest, hasher.update)
        ref = ManifestRef(Digest(MANIFEST_ALGORITHM, hasher.digest()))
        # put_stream verifies the bytes against the digest as it writes them.
        self.blobs.put_stream(ref.digest, cast(BinaryIO, _Joined(manifest.pieces())))
        self._remember(ref.key, manifest)
        if self.known_index(ref.key) is None:
            self.save_index(ref.key, index)
            self.keep_index(ref.key, index)
        return ref.key

    def known_index(self, key: str) -> ManifestIndex | None:
        """The index of manifest blob *key* if this process holds it."""
        with self._lock:
            known = self._indexes.get(key)
            if known is not None:
                self._indexes.move_to_end(key)
            return known

    def keep_index(self, key: str, index: ManifestIndex) -> None:
        """Hold *index* in this process (the last few read or written)."""
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > 32:
                self._indexes.popitem(last=False)

    def save_index(self, key: str, index: ManifestIndex) -> None:
        """Store *index* for manifest blob *key*; a row there already (a racing writer, the
        same content logged twice) is left as it is: both are the index of the same bytes.
        A store this account may only read keeps none: the index is derived data, and the
        caller keeps it in process."""
        # Imported here: the short commands that never write an index load no SQLAlchemy.
        from sqlalchemy import insert, select
        from sqlalchemy.exc import DBAPIError

        from soko.metadata.schema import manifest_indexes

        try:
            with self.engine.begin() as conn:
                exists = conn.execute(
                    select(manifest_indexes.c.manifest_blob).where(
                        manifest_indexes.c.manifest_blob == key
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        insert(manifest_indexes).values(
                            manifest_blob=key, data=index.to_bytes(), created_at=datetime.now(UTC)
                        )
                    )
        except DBAPIError:  # a duplicate key included
            pass

    def load_manifest(
        self,
        ref: ManifestRef | str,
        algorithm: Algorithm,
        *,
        cached: bool = True,
        name: str | None = None,
    ) -> Manifest:
        """The manifest stored as *ref* (a version's ``manifest_blob``), read from the blob
        store and checked against its digest (see :meth:`manifest_bytes`): the one way the
        service and the server load a manifest. With *cached*, a small in-process cache
        answers for a manifest seen before, and keeps this one (a sweep over every version
        reads without it). *name*, the version's, starts the message of a damaged one."""
        if isinstance(ref, str):
            ref = ManifestRef.parse(ref)
        if cached:
            with self._lock:
                known = self._manifests.get(ref.key)
                if known is not None:
                    self._manifests.move_to_end(ref.key)
                    return known
        try:
            manifest = Manifest.from_bytes(self._manifest_text(ref), algorithm)
        except CorruptBlobError as exc:
            if name is None:
                raise
            raise CorruptBlobError(f"{name}: {exc}") from None
        if cached:
            self._remember(ref.key, manifest)
        return manifest

    def manifest_bytes(self, ref: ManifestRef) -> bytes:
        """The stored bytes of the manifest blob *ref*, checked. Bytes that do not match
        are moved to the quarantine, so that the next log of that content stores the
        manifest again, and raise CorruptBlobError."""
        raw = self.blobs.read_bytes(ref.digest)
        try:
            ref.check(raw)
        except CorruptBlobError as exc:
            moved = self.set_aside(ref.digest)
            raise CorruptBlobError(f"{exc}{SET_ASIDE if moved else ''}") from None
        return raw

    def _manifest_text(self, ref: ManifestRef) -> bytes | str:
        """The stored manifest *ref*, checked, as text: its bytes are let go once decoded
        (a million entries are about 95 MB each way, and the parse holds the text until
        its columns are made). Bytes that are not UTF-8 are returned as they are, for the
        parse to refuse with the JSON decoder's message."""
        raw = self.manifest_bytes(ref)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return raw

    def blob_intact(self, digest: Digest) -> bool:
        """Whether the stored blob *digest* hashes to its name, read a few megabytes at a
        time; an unreadable or absent blob is not intact."""
        hasher = digest.algorithm.hasher()
        try:
            with self.blobs.open(digest) as stream:
                while chunk := stream.read(_VERIFY_CHUNK):
                    hasher.update(chunk)
        except (OSError, SokoError):
            return False
        return hasher.digest() == digest.raw

    def manifest_intact(self, ref: ManifestRef) -> bool:
        """Whether the stored manifest blob *ref* hashes to its name (a hash, no parse: a
        million entries cost a fraction of a second). Bytes that do not match are moved to
        the quarantine, as :meth:`manifest_bytes` does."""
        if self.blob_intact(ref.digest):
            return True
        self.set_aside(ref.digest)
        return False

    # ----- blobs found damaged ----------------------------------------------------------

    @property
    def quarantine(self) -> Quarantine | None:
        """The blob store's quarantine folder, for a store that has one (the local one)."""
        blobs = self.blobs
        return blobs.quarantine if isinstance(blobs, HasQuarantine) else None

    def set_aside(self, digest: Digest) -> bool:
        """Move the stored copies of *digest* that fail their digest to the quarantine
        (see :mod:`soko.storage.quarantine`); True when one was moved. A store without a
        quarantine keeps them, and every read of them keeps failing."""
        quarantine = self.quarantine
        return quarantine is not None and quarantine.set_aside(digest)

    def quarantine_holds(self, digests: Iterable[Digest]) -> bool:
        """Whether one of *digests* was set aside and not cleared away since: a committed
        version naming it may then lack it (a directory read per algorithm; blobs of other
        versions set aside cost nothing more)."""
        quarantine = self.quarantine
        # Nothing set aside (the usual case): the digests, a million on a re-log, are not
        # read at all.
        return (
            quarantine is not None and not quarantine.is_empty() and bool(quarantine.holds(digests))
        )

    def _remember(self, key: str, manifest: Manifest) -> None:
        entries = len(manifest)
        if entries > CACHED_ENTRIES:
            return
        with self._lock:
            kept = self._manifests
            if key in kept:
                self._cached_entries -= len(kept.pop(key))
            kept[key] = manifest
            self._cached_entries += entries
            while len(kept) > MANIFESTS_KEPT or self._cached_entries > CACHED_ENTRIES:
                _, dropped = kept.popitem(last=False)
                self._cached_entries -= len(dropped)


class _Joined:
    """A reader of the bytes of *pieces*, one after the other (only ``read``)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while not self._rest:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._rest = piece
        if size < 0 or size >= len(self._rest):
            # A short read is a read: the piece goes whole, without a copy.
            piece, self._rest = self._rest, b""
            return piece
        piece, self._rest = self._rest[:size], self._rest[size:]
        return piece
