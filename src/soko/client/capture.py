"""Storing a draft's files in the embedded store while they are hashed.

With ``policy="mutable"`` (the default) W&B copies every added file to a staging folder,
so that later edits cannot change what is logged. The embedded store is a better place for
that copy than a staging folder: it is where the bytes must end up anyway. So while
``add_file``/``add_dir`` hash, a :class:`StoreCapture` stores what they read:

- the small files whose bytes the hashing kept go to the store in batches on a helper
  thread (packs, see :mod:`soko.storage.packs`), while the calling thread goes on hashing;
- a larger file is copied into the store and hashed as the copy is read back, one pass
  instead of a hash now and a copy at log time.

Each byte is read once and written once, to its final place, and the log finds the blobs
stored. A draft that is never logged leaves blobs no version names, which garbage
collection removes after its grace period. A server has a capture of its own, for the
folders added inside a run (:mod:`soko.client.http_capture`).

The kept bytes arrive as the same :class:`~soko.client.sources.BlobSource` values a log
stores (:func:`store_sources`, which ``LocalBackend.store_blobs`` runs too).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from soko.client.hashing import FileStat, HashedFile
from soko.client.sources import BlobSource
from soko.core.digests import Algorithm
from soko.errors import DigestMismatchError
from soko.storage.local import LocalBlobStore
from soko.storage.pack_writer import StagedPacks

BATCH_BYTES = 8 * 1024 * 1024
"""Kept bytes are handed to the store in batches of about this size: small enough that the
last one, written after hashing ends, costs little; large enough to pack."""


def store_sources(blobs: LocalBlobStore, sources: Sequence[BlobSource]) -> list[int]:
    """Store *sources* in *blobs*, each verified; returns their sizes, in order.

    Bytes in memory go in as they are, files are read (both packed when they are small
    and many, see :meth:`LocalBlobStore.put_files`). A file that no longer has its digest
    raises DigestMismatchError, and nothing of it is stored.
    """
    in_memory = [(s.digest, s.data) for s in sources if s.data is not None]
    if in_memory:
        blobs.put_blobs(in_memory)
    if len(in_memory) == len(sources):
        return [len(data) for _, data in in_memory]
    try:
        from_files = iter(
            blobs.put_files([(s.digest, s.readable_path) for s in sources if s.data is None])
        )
    except DigestMismatchError as exc:
        raise DigestMismatchError(
            f"A file changed after it was added to the artifact; add it again. {exc}"
        ) from None
    return [s.size if s.data is not None else next(from_files) for s in sources]


class StoreCapture:
    """Stores files of one ``add_*`` call in *blobs*; :meth:`close` waits for the writes.

    Bytes that hashing kept (:meth:`store_hashed`) go into packs staged on the helper
    thread, a batch to a pack, whose index rows are committed a group of packs at a time
    (:class:`~soko.storage.pack_writer.StagedPacks`) and at :meth:`close`.
    """

    def __init__(self, blobs: LocalBlobStore) -> None:
        self._blobs = blobs
        self._pending: list[BlobSource] = []
        self._algorithm: Algorithm | None = None
        self._raws: list[bytes] = []
        self._datas: list[bytes] = []
        self._size = 0
        self._staged: StagedPacks | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._in_flight: Future[object] | None = None

    def store(self, sources: Sequence[BlobSource]) -> None:
        """Store these blobs (verified by the store), soon, on the helper thread."""
        self._pending.extend(sources)
        self._size += sum(s.size for s in sources)
        if self._size >= BATCH_BYTES:
            self._send()

    def store_hashed(
        self, algorithm: Algorithm, raws: Sequence[bytes], datas: Sequence[bytes]
    ) -> None:
        """Store *datas*, whose raw digests *raws* the caller computed from these very
        bytes objects (they are not hashed again), soon, on the helper thread."""
        if algorithm is not self._algorithm and self._raws:
            self._send()
        self._algorithm = algorithm
        self._raws.extend(raws)
        self._datas.extend(datas)
        self._size += sum(map(len, datas))
        if self._size >= BATCH_BYTES:
            self._send()

    def copy_file(self, path: str, algorithm: Algorithm) -> HashedFile:
        """Hash the file at *path* by copying it into the store (one read, one write)."""
        digest, size, st = self._blobs.put_new_file(path, algorithm)
        return HashedFile(path, digest, size, FileStat.of(st))

    def close(self) -> None:
        """Store what is left and wait: every blob added is stored when this returns."""
        try:
            self._send()
            self._wait()
            if self._staged is not None:
                self._staged.close()
        finally:
            self._shutdown()

    def abandon(self) -> None:
        """Wait for a write in flight without raising its error (the caller's wins)."""
        try:
            self._wait()
        except Exception:  # the caller is already failing with an error of its own
            pass
        finally:
            if self._staged is not None:
                self._staged.discard()
            self._shutdown()

    def _send(self) -> None:
        if not self._pending and not self._raws:
            return
        self._wait()  # one batch in flight at most: bounds what is held twice
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-capture")
        if self._pending:
            batch, self._pending = self._pending, []
            self._in_flight = self._writer.submit(store_sources, self._blobs, batch)
        if self._raws:
            assert self._algorithm is not None
            if self._staged is None:
                self._staged = self._blobs.staged_packs()
            if self._in_flight is not None:
                self._wait()
            raws, datas, self._raws, self._datas = self._raws, self._datas, [], []
            self._in_flight = self._writer.submit(
                self._blobs.put_hashed, self._algorithm, raws, datas, self._staged
            )
        self._size = 0

    def _wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def _shutdown(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
