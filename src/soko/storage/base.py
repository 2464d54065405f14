"""The BlobStore contract: content-addressed bytes, keyed by :class:`~soko.core.digests.Digest`.

Every store (local folder, memory, S3) honours these rules, which the conformance suite in
``tests/conformance/test_blobstore.py`` checks for each of them:

- A blob's key is a function of its digest only (:func:`blob_key`, inverse
  :func:`digest_of_key`); the bytes under a key always hash to that digest.
- ``put_*`` verify the bytes against the digest while they are written and raise
  :class:`~soko.errors.DigestMismatchError` (storing nothing) when they differ.
- Writes are atomic and idempotent: a blob is either absent or whole; writing a blob that
  exists is harmless and may be skipped; no caller relies on "check, then write".
- ``put_bytes`` and ``put_stream`` (and the local store's ``put_blobs``, the S3 store's
  ``complete_staged``) verify the bytes even when the blob exists: a server learns through
  them that its client holds a blob (``soko.service.possession``), so a blob stored already
  must not let wrong bytes pass. Nor other bytes with the same digest: XXH128 (and MD5) are
  no cryptographic hashes, so the bytes are also compared with the stored copy, byte for
  byte (one read of it), and refused with the same DigestMismatchError when they differ.
  Only when the stored copy itself fails its digest (damaged on disk) do the uploaded
  bytes replace it. Nothing is written when they are the same. ``put_file`` may skip
  reading a file whose blob exists.
- A put need not be durable when it returns; :meth:`BlobStore.sync` makes every put that
  returned before it durable. Callers sync once before committing a version that needs them.
- ``open``/``stat`` of a missing blob raise :class:`~soko.errors.NotFoundError`.
- Error messages (:func:`digest_mismatch`, :func:`blob_not_found`) name the digest and
  nothing else: no path or bucket of the store, and the same words whether the blob is
  stored or not, since a server sends them to its clients.
- ``delete`` of a missing blob is not an error. Only garbage collection deletes.
- Every method is safe to call from several threads and several processes at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError, NotFoundError, ValidationError

FORMAT_VERSION = 1
"""The format of a store that keeps one object per blob (S3); the local store's own format,
which adds packs, is :data:`soko.storage.layout.FORMAT_VERSION`."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int
    modified: float
    """Seconds since the epoch of the blob's last write (garbage collection's grace period)."""


def blob_key(digest: Digest) -> str:
    """``blobs/<alg>/<first 2 hex>/<hex>``: where a blob lives in every store."""
    hex_digest = digest.hex
    return f"blobs/{digest.algorithm.key}/{hex_digest[:2]}/{hex_digest}"


def digest_of_key(key: str) -> Digest:
    """The inverse of :func:`blob_key`; refuses any key :func:`blob_key` cannot produce."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "blobs":
        raise ValidationError(f"Not a blob key: {key!r}")
    _, alg, fanout, hex_digest = parts
    try:
        algorithm = Algorithm.parse(alg)
    except ValidationError:
        raise ValidationError(f"Not a blob key: {key!r}") from None
    if alg != algorithm.key or fanout != hex_digest[:2] or hex_digest != hex_digest.lower():
        raise ValidationError(f"Not a blob key: {key!r}")
    try:
        digest = Digest.from_hex(hex_digest, algorithm)
    except ValidationError:
        raise ValidationError(f"Not a blob key: {key!r}") from None
    # bytes.fromhex skips whitespace, so "ab cd.." would parse: only the exact key counts.
    if blob_key(digest) != key:
        raise ValidationError(f"Not a blob key: {key!r}")
    return digest


def digest_mismatch(digest: Digest, source: str) -> DigestMismatchError:
    """The one error of a put whose bytes (of *source*: ``bytes``, ``stream``, a file) are
    not *digest*'s, whichever path found it: a writer must not learn from the words
    whether the blob is stored already."""
    return DigestMismatchError(f"The bytes of {source} do not match {digest}; nothing was stored.")


def blob_not_found(digest: Digest) -> NotFoundError:
    """The one error for a blob the store lacks; it names no path of the store."""
    return NotFoundError(f"Blob {digest} is not stored.")


_COMPARE_CHUNK = 1024 * 1024


def read_exactly(reader: BinaryIO, size: int) -> bytes:
    """*size* bytes of *reader*, fewer only at its end (a socket may return short reads)."""
    data = reader.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing > 0 and (part := reader.read(missing)):
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def same_bytes(first: BinaryIO, second: BinaryIO) -> bool:
    """Whether two readers yield the same bytes up to their ends, compared a chunk at a time."""
    while True:
        chunk = read_exactly(first, _COMPARE_CHUNK)
        if chunk != read_exactly(second, _COMPARE_CHUNK):
            return False
        if not chunk:
            return True


class ComparingReader:
    """Reads *source* and compares what it yields with *stored*, byte for byte, as it goes:
    a put of a blob stored already reads the upload once and the stored copy once."""

    def __init__(self, source: BinaryIO, stored: BinaryIO) -> None:
        self._source = source
        self._stored = stored
        self._same = True

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if self._same and chunk:
            self._same = read_exactly(self._stored, len(chunk)) == chunk
        return chunk

    def same(self) -> bool:
        """Whether everything read so far (the whole source, once read to its end) is the
        stored copy, to its end."""
        self._same = self._same and not self._stored.read(1)
        return self._same


class BlobStore(Protocol):
    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        """Which of *digests* the store lacks: one batched question, not one per blob."""
        ...

    def exists(self, digest: Digest) -> bool: ...

    def put_file(self, digest: Digest, path: str) -> int:
        """Store the file at *path* as *digest*, hashing while copying; returns its size."""
        ...

    def put_bytes(self, digest: Digest, data: bytes) -> None: ...

    def put_stream(self, digest: Digest, stream: BinaryIO) -> int:
        """Store what *stream* yields until EOF as *digest*, verifying; returns the size."""
        ...

    def open(self, digest: Digest) -> BinaryIO:
        """A reader of the blob's bytes (not re-verified: see ``verify``)."""
        ...

    def read_bytes(self, digest: Digest) -> bytes: ...

    def stat(self, digest: Digest) -> BlobInfo: ...

    def delete(self, digest: Digest) -> None: ...

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        """Every blob (of one algorithm, when given), in no particular order."""
        ...

    def sync(self) -> None:
        """Make every put that returned before this call durable."""
        ...
