"""A soko store: one metadata database and one blob store, opened together."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Manifest
from soko.metadata.engine import open_engine, sqlite_url
from soko.storage.base import BlobStore
from soko.storage.local import LocalBlobStore

MANIFEST_ALGORITHM = Algorithm.XXH128


@dataclass
class Store:
    engine: Engine
    blobs: BlobStore
    _manifests: OrderedDict[str, Manifest] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open_local(cls, root: Path) -> Store:
        """The embedded store under *root*: ``soko.db`` beside a ``blobs`` folder store."""
        root.mkdir(parents=True, exist_ok=True)
        return cls(open_engine(sqlite_url(root / "soko.db")), LocalBlobStore(root / "store"))

    @classmethod
    def open(cls, db_url: str, blobs: BlobStore) -> Store:
        return cls(open_engine(db_url), blobs)

    def put_manifest(self, manifest: Manifest) -> str:
        """Store a manifest as a blob; returns its key (``xxh128:<hex>``)."""
        raw = manifest.to_bytes()
        digest = Digest.of_bytes(raw, MANIFEST_ALGORITHM)
        self.blobs.put_bytes(digest, raw)
        key = str(digest)
        self._remember(key, manifest)
        return key

    def load_manifest(self, key: str, algorithm: Algorithm) -> Manifest:
        """A stored manifest by key, from a small in-process cache when it was seen before."""
        with self._lock:
            cached = self._manifests.get(key)
            if cached is not None:
                self._manifests.move_to_end(key)
                return cached
        digest = parse_blob_ref(key)
        raw = self.blobs.read_bytes(digest)
        if Digest.of_bytes(raw, digest.algorithm) != digest:
            from soko.errors import CorruptBlobError

            raise CorruptBlobError(f"Manifest blob {key} does not match its digest.")
        manifest = Manifest.from_bytes(raw, algorithm)
        self._remember(key, manifest)
        return manifest

    def _remember(self, key: str, manifest: Manifest) -> None:
        with self._lock:
            self._manifests[key] = manifest
            while len(self._manifests) > 32:
                self._manifests.popitem(last=False)


def parse_blob_ref(key: str) -> Digest:
    alg, _, hex_digest = key.partition(":")
    return Digest.from_hex(hex_digest, Algorithm.parse(alg))
