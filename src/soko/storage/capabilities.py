"""What a blob store may do beyond the :class:`~soko.storage.base.BlobStore` contract.

Each optional ability is a protocol of its own. A caller asks the store it holds for one
with ``isinstance(store, Ability)`` (the protocols are runtime checkable), once per
operation and never per blob, and falls back to the plain contract when the store lacks
it. No caller outside :mod:`soko.storage` names a concrete store class, so a new store
gains an ability by implementing its methods, and a store without it still works.

Which store has which (the conformance suite checks the answers):

- the local folder store (:class:`~soko.storage.local.LocalBlobStore`):
  :class:`PackedBatches`, :class:`BatchReads`, :class:`BatchDeletes`, :class:`Compacts`,
  :class:`LocalFiles`, :class:`HasQuarantine`;
- the S3 store: :class:`Presigner`;
- the memory store: none.

The client's download cache is a folder of the same layout
(:class:`~soko.storage.folder.BlobFolder`), packed batches and compaction included.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from soko.core.digests import Digest
from soko.storage.packs import CompactReport, SizedReads
from soko.storage.quarantine import Quarantine

__all__ = [
    "BatchDeletes",
    "BatchReads",
    "CompactReport",
    "Compacts",
    "HasQuarantine",
    "LocalFiles",
    "PackedBatches",
    "Presigner",
    "SizedReads",
]


@runtime_checkable
class PackedBatches(Protocol):
    """A store that writes a batch of small blobs as one file (a pack): one create, one
    fsync and one index transaction per pack instead of a file per blob. A batch of fewer
    blobs than it packs is stored one by one; either way each blob is verified."""

    def put_blobs(self, blobs: Sequence[tuple[Digest, bytes]]) -> None:
        """Store blobs given as bytes, verified and compared with a stored copy as
        ``put_bytes`` does; durable when this returns."""
        ...

    def put_files(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        contents: Mapping[Digest, bytes] | None = None,
    ) -> builtins.list[int]:
        """Store files, each as its digest (*contents*: bytes of some of them the caller
        holds); returns their sizes in the order of *items*."""
        ...


@runtime_checkable
class BatchReads(Protocol):
    """A store that answers for many blobs at once: the local store, through its pack index.

    A server sizes and reads a batch of small blobs with it in a few queries and one open
    per pack, instead of a system call (or a bucket request) per blob.
    """

    def sizes(self, digests: Iterable[Digest]) -> dict[Digest, int]:
        """The stored size of each of *digests* the store holds; absent ones are left out.
        A blob that is packed is given its packed size, the one :meth:`read_packed` reads."""
        ...

    def read_packed(self, digests: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """The bytes (not verified) of those of *digests* that are packed, one blob at a
        time as it is read, one open per pack; the others are left out."""
        ...

    def sized_reads(self, digests: Iterable[Digest]) -> SizedReads:
        """:meth:`sizes` of *digests* and their :meth:`read_packed`, looked up once: a
        server sizes every batch it sends before it reads it."""
        ...


@runtime_checkable
class BatchDeletes(Protocol):
    """A store that deletes many blobs in one go (packed ones in one index transaction)."""

    def delete_many(
        self, digests: Sequence[Digest], *, written_before: float | None = None
    ) -> None:
        """Delete each blob; with *written_before*, a copy refreshed since then is kept
        (the age check and the delete are one step)."""
        ...


@runtime_checkable
class Compacts(Protocol):
    """A store with space to reclaim besides deleted blobs: dead bytes in packs, and temp
    files left by writers that were killed. Garbage collection runs both."""

    def compact(self, grace_seconds: float, *, dry_run: bool = False) -> CompactReport:
        """Delete packs nothing points at and rewrite packs that are mostly dead."""
        ...

    def temp_files_older_than(self, seconds: float) -> builtins.list[str]:
        """Temp files nobody wrote to for *seconds*: left by killed writers."""
        ...

    def remove_stale_temp(self, seconds: float) -> int:
        """Delete the files :meth:`temp_files_older_than` finds; returns how many went."""
        ...


@runtime_checkable
class LocalFiles(Protocol):
    """A store whose loose blobs are files of the local file system: a reader may clone,
    link or send them without copying through Python (zero copy). A packed blob has no
    file of its own; it is read with ``open`` (or :class:`BatchReads`)."""

    def local_path(self, digest: Digest) -> str:
        """Where the blob's file is when it is stored loose. Not checked: for a blob that
        is missing or packed, opening it raises ``FileNotFoundError``."""
        ...


@runtime_checkable
class HasQuarantine(Protocol):
    """A store that sets damaged blobs aside instead of keeping them (see
    :mod:`soko.storage.quarantine`): the store then reports them missing, so the next log
    of those bytes stores them again."""

    @property
    def quarantine(self) -> Quarantine: ...


@runtime_checkable
class Presigner(Protocol):
    """A store whose bytes clients can move directly (S3): presigned URLs."""

    def presign_get(self, digest: Digest, *, expires: int) -> str: ...

    def presign_staged_put(
        self, upload_id: str, digest: Digest, *, scope: str, size: int, expires: int
    ) -> tuple[str, dict[str, str]]: ...

    def presign_staged_parts(
        self, upload_id: str, *, scope: str, parts: int, expires: int
    ) -> tuple[str, Sequence[str]]: ...

    def join_staged_parts(
        self, upload_id: str, multipart_id: str, etags: Sequence[str], *, scope: str
    ) -> None: ...

    def complete_staged(self, upload_id: str, digest: Digest, *, scope: str) -> int: ...
