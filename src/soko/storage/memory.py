"""A BlobStore in a dict, for tests: the same contract as the others, nothing durable.

Every method takes one lock, so threads see each blob absent or whole. It holds bytes in
memory and is not shared between processes.
"""

from __future__ import annotations

import builtins
import io
import threading
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from soko.core.digests import Algorithm, Digest
from soko.storage.base import BlobInfo, blob_not_found, digest_mismatch

_CHUNK = 8 * 1024 * 1024


class MemoryBlobStore:
    """Blobs as bytes in a dict keyed by digest."""

    def __init__(self) -> None:
        self._blobs: dict[Digest, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBlobStore({len(self._blobs)} blobs)"

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = set(digests)
        with self._lock:
            return {d for d in wanted if d not in self._blobs}

    def exists(self, digest: Digest) -> bool:
        with self._lock:
            return digest in self._blobs

    def put_file(self, digest: Digest, path: str) -> int:
        """Store the file at *path*; when the blob exists the file is not read."""
        size = self._existing_size(digest)
        if size is not None:
            return size
        with open(path, "rb") as stream:
            data = stream.read()
        self._store(digest, data, source_name=path)
        return len(data)

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store *data*; verified, and compared with a stored copy, even when the blob
        exists (the contract's rule)."""
        self._verify(digest, data, source_name="bytes")
        self._put_verified(digest, bytes(data), source_name="bytes")

    def put_stream(self, digest: Digest, stream: BinaryIO) -> int:
        """Store what *stream* yields (verified and compared like :meth:`put_bytes`)."""
        parts = []
        while chunk := stream.read(_CHUNK):
            parts.append(chunk)
        data = b"".join(parts)
        self._verify(digest, data, source_name="stream")
        self._put_verified(digest, data, source_name="stream")
        return len(data)

    def _existing_size(self, digest: Digest) -> int | None:
        """The stored size if the blob exists, its modification time refreshed, like the
        local store does for garbage collection's grace period."""
        with self._lock:
            found = self._blobs.get(digest)
            if found is None:
                return None
            self._blobs[digest] = (found[0], time.time())
            return len(found[0])

    def _verify(self, digest: Digest, data: bytes, *, source_name: str) -> None:
        if digest.algorithm.hasher(data).digest() != digest.raw:
            raise digest_mismatch(digest, source_name)

    def _put_verified(self, digest: Digest, data: bytes, *, source_name: str) -> None:
        """Store bytes that hash to *digest*, or refresh the stored copy when it holds the
        same bytes. Other bytes than an intact stored copy's are refused; a damaged copy
        (one that fails its digest) is replaced."""
        with self._lock:
            found = self._blobs.get(digest)
            stored = None if found is None else found[0]
            if (
                stored is not None
                and stored != data
                and digest.algorithm.digest_of(stored) == digest.raw
            ):
                raise digest_mismatch(digest, source_name)
            self._blobs[digest] = (data, time.time())

    def _store(self, digest: Digest, data: bytes, *, source_name: str) -> None:
        self._verify(digest, data, source_name=source_name)
        with self._lock:
            self._blobs[digest] = (data, time.time())

    def _get(self, digest: Digest) -> tuple[bytes, float]:
        with self._lock:
            found = self._blobs.get(digest)
        if found is None:
            raise blob_not_found(digest)
        return found

    def open(self, digest: Digest) -> BinaryIO:
        return io.BytesIO(self._get(digest)[0])

    def read_bytes(self, digest: Digest) -> bytes:
        return self._get(digest)[0]

    def stat(self, digest: Digest) -> BlobInfo:
        data, modified = self._get(digest)
        return BlobInfo(digest, len(data), modified)

    def delete(self, digest: Digest) -> None:
        with self._lock:
            self._blobs.pop(digest, None)

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        wanted = None if algorithm is None else Algorithm.parse(algorithm)
        with self._lock:
            snapshot: builtins.list[tuple[Digest, tuple[bytes, float]]] = builtins.list(
                self._blobs.items()
            )
        for digest, (data, modified) in snapshot:
            if wanted is None or digest.algorithm is wanted:
                yield BlobInfo(digest, len(data), modified)

    def sync(self) -> None:
        """Nothing to flush: a memory store is never durable."""
