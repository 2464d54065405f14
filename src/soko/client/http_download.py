"""Downloads through a soko server: blobs from the client cache, else from the server.

Every blob is verified before it is cached or placed. Small blobs (below
:data:`~soko.wire.framing.SMALL_BLOB`) travel in framed batches: a few threads fetch and
verify batches, and one thread writes their bytes into the root and into the cache's
packs, in order; for a slice of many batches, as many such threads as the caller allows
(two by default), each with a part of the batches (whose files are in other folders than
the other parts'). Creating files is the kernel's work, which two threads spread over
two cores; more only contend for the GIL (each system call hands it over). One pack per
16 MiB costs far less than a cache file per blob. Large blobs stream alone, several at
once, each written on a helper thread while the next bytes arrive
(:func:`~soko.client.materialize.stream_new`).

The server serves a blob only through a version that names it; *versions_for* says which,
and the size that version's manifest gives the blob. A blob the manifest calls small is
fetched in a batch without asking the server first: 20,000 small blobs save a plan of
20,000 entries, and a manifest that understates a size gets a clear error from the batch.

A large blob is written once. Where the cache's folder can clone files into the root
(a reflink: btrfs, XFS) or the root is to link to the cache (``SOKO_LINK``), it goes into
the cache and from there into the root. Otherwise a copy would write its bytes a second
time, so it streams straight into the root, and the stat cache remembers the root file as
a copy (:meth:`~soko.client.statcache.StatCache.remember_copies`): a later download of
the blob copies that file, hashing it, as long as its stat is unchanged, and fetches the
blob again once it was edited or removed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

from soko.client.backend import Progress
from soko.client.cache import BlobCache
from soko.client.http_session import ApiSession
from soko.client.http_session import path_segment as _q
from soko.client.materialize import (
    FolderWriter,
    clones_between,
    materialize,
    stream_new,
    temp_beside,
)
from soko.client.statcache import COPY_MIN, StatCache
from soko.core import metering
from soko.core.digests import Digest
from soko.errors import CorruptBlobError, DigestMismatchError, StoreError
from soko.storage.pack_writer import PackWriter
from soko.wire.base import format_digest, parse_digest
from soko.wire.framing import SMALL_BLOB, FrameReader
from soko.wire.requests import MAX_DIGESTS_PER_REQUEST, DownloadPlanOut

BATCH_BYTES = 4 * 1024 * 1024
BATCH_BLOBS = 1024
WRITERS = 2
"""Threads writing a slice's files unless the caller says otherwise: one per core here."""
FETCHERS = 4
"""Threads fetching batches. They mostly wait for the network; more only add GIL
hand-overs to the thread writing the files."""
WORKERS = 8
"""Large blobs streamed at once."""
_AHEAD = 2 * FETCHERS  # batches fetched ahead of the writer: bounds the bytes held
_CHUNK = 1024 * 1024


class Batch(NamedTuple):
    version_id: str
    digests: list[Digest]


class Single(NamedTuple):
    version_id: str
    digest: Digest
    url: str | None
    """A presigned bucket URL, or None to stream it through the server."""
    size: int | None = None


class BlobDownloads:
    """The download half of :class:`~soko.client.http.HttpBackend`."""

    def __init__(
        self,
        session: ApiSession,
        cache: BlobCache,
        *,
        link_mode: str,
        versions_for: Callable[[Sequence[Digest]], dict[str, list[tuple[Digest, int | None]]]],
        copies: StatCache | None = None,
        cache_large: str = "auto",
    ) -> None:
        self.session = session
        self.cache = cache
        self.link_mode = link_mode
        self.copies = copies
        self.cache_large = cache_large
        self._versions_for = versions_for

    def fetch(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        progress: Progress | None = None,
        use_cache: bool = True,
        writers: int | None = None,
    ) -> None:
        """Write each blob's bytes at its destinations, with at most *writers* threads
        creating files (WRITERS by default); see the module docstring."""
        destinations: dict[Digest, list[str]] = {}
        for digest, dest in items:
            destinations.setdefault(digest, []).append(dest)
        # A destination is a joined path (``sdk.transfer.destination``): its folder is
        # what precedes the last separator, without os.path's per-call normalising.
        for folder in {d.rpartition(os.sep)[0] or os.path.dirname(d) or "." for _, d in items}:
            os.makedirs(folder, exist_ok=True)

        def place(digest: Digest, source: str, counted: int = 0) -> None:
            """Place *digest* from the file *source*; *counted* of its bytes were
            reported as they streamed."""
            size = 0
            for dest in destinations[digest]:
                materialize(source, dest, digest, mode=self.link_mode, make_dirs=False)
                size += os.path.getsize(dest)
            if progress:
                progress(len(destinations[digest]), max(0, size - counted))

        # Blobs held in memory (from the cache's packs, or a batch) are written as the
        # embedded store writes them: each file created in a descriptor of its folder,
        # by a writer of the thread's own.
        with _ThreadWriters() as folder_writers:

            def place_bytes(digest: Digest, data: bytes, *, verified: bool = True) -> None:
                if not verified and digest.algorithm.digest_of(data) != digest.raw:
                    raise CorruptBlobError(
                        f"Blob {digest} does not match its digest (read from a pack)."
                    )
                dests = destinations[digest]
                writer = folder_writers.mine()
                for dest in dests:
                    writer.write(data, dest, digest, verified=True)
                if progress:
                    progress(len(dests), len(data) * len(dests))

            todo = list(destinations)
            if use_cache:
                todo = self._from_cache(todo, place, place_bytes, destinations)
            if not todo:
                return
            batches, singles = self._plan(todo)
            self._fetch_batches(batches, place_bytes, cache=use_cache, writers=writers or WRITERS)
        jobs: list[Callable[[], None]] = []
        for job in singles:
            if use_cache and self._through_cache(job, destinations[job.digest][0]):
                jobs.append(partial(self._fetch_single_cached, job, place=place, progress=progress))
            else:
                jobs.append(
                    partial(
                        self._fetch_single_into,
                        job,
                        dests=destinations,
                        progress=progress,
                        remember=use_cache,
                    )
                )
        _run_all(jobs)

    def _through_cache(self, job: Single, dest: str) -> bool:
        """Whether a blob fetched alone, bound for *dest*, goes into the cache and from
        there into the root, rather than straight into the root (see the module
        docstring). One of unknown size or below COPY_MIN would not be remembered as a
        copy: it is cached."""
        if self.cache_large == "always" or self.link_mode in ("hardlink", "symlink", "reflink"):
            return True
        if job.size is None or job.size < COPY_MIN:
            return True
        if self.link_mode == "copy":
            return False
        try:
            return clones_between(self.cache.temp_folder(), os.path.dirname(dest) or ".")
        except OSError:
            return False

    def _from_cache(
        self,
        digests: list[Digest],
        place: Callable[[Digest, str], None],
        place_bytes: Callable[..., None],
        destinations: dict[Digest, list[str]],
    ) -> list[Digest]:
        """Place what the cache holds, or a remembered copy; returns the digests neither
        does.

        Cached blobs are checked as they are placed (a hash per blob, as a copy from a
        loose file does anyway): one that no longer matches its digest (a damaged disk,
        a user's edit) is evicted and returned with the uncached ones, to be fetched again.
        """
        placed: set[Digest] = set()
        uncached: list[Digest] = []
        for digest, data in self.cache.read_packed(digests):
            placed.add(digest)
            try:
                place_bytes(digest, data, verified=False)
            except CorruptBlobError:
                self.cache.evict(digest)
                uncached.append(digest)
        rest = [digest for digest in digests if digest not in placed]
        loose = self.cache.get_many(rest)
        for digest in rest:
            cached = loose.get(digest)
            if cached is None:
                uncached.append(digest)
                continue
            try:
                place(digest, cached)
            except FileNotFoundError:  # removed by a concurrent cache cleanup
                uncached.append(digest)
            except CorruptBlobError:
                self.cache.evict(digest)
                uncached.append(digest)
        return self._from_copies(uncached, place, destinations)

    def _from_copies(
        self,
        digests: list[Digest],
        place: Callable[[Digest, str], None],
        destinations: dict[Digest, list[str]],
    ) -> list[Digest]:
        """Place from remembered copies what they hold; returns the rest. A copy is some
        user's file: it is copied (or cloned), never linked, and hashed as it is read."""
        if self.copies is None or not digests:
            return digests
        copies = self.copies.copies(digests)
        rest: list[Digest] = []
        placed: list[tuple[str, Digest]] = []
        for digest in digests:
            for path in copies.get(digest, []):
                try:
                    self._place_copy(digest, path, place)
                except CorruptBlobError:
                    self.copies.forget_copy(digest, path)
                    continue
                except FileNotFoundError:
                    if not os.path.exists(path):  # not a folder of the root gone missing
                        self.copies.forget_copy(digest, path)
                    continue
                placed.extend((dest, digest) for dest in destinations[digest])
                break
            else:
                rest.append(digest)
        self.copies.remember_copies(placed)  # verified as they were copied
        return rest

    def _place_copy(self, digest: Digest, path: str, place: Callable[[Digest, str], None]) -> None:
        """Place *digest* from the remembered copy *path*. Roots that are to link to the
        cache get the cache's own file, filled from the copy (verified): the copy is a
        user's file, never linked to."""
        if self.link_mode in ("hardlink", "symlink"):
            try:
                cached = self.cache.put_file(digest, path)
            except DigestMismatchError:
                raise CorruptBlobError(
                    f"Blob {digest} does not match its digest ({path})."
                ) from None
            place(digest, cached)
        else:
            place(digest, path)

    def _plan(self, digests: list[Digest]) -> tuple[list[Batch], list[Single]]:
        """Batches of small blobs and single large ones. The manifest's sizes say which
        blobs are small; the server is asked about the others (in requests of up to
        10,000), since it knows their sizes for sure and may send a presigned URL."""
        batches: list[Batch] = []
        singles: list[Single] = []
        for version_id, group in self._versions_for(digests).items():
            small = [(d, size) for d, size in group if size is not None and size < SMALL_BLOB]
            others = [d for d, size in group if size is None or size >= SMALL_BLOB]
            for start in range(0, len(others), MAX_DIGESTS_PER_REQUEST):
                part = others[start : start + MAX_DIGESTS_PER_REQUEST]
                plan = DownloadPlanOut.model_validate(
                    self.session.json(
                        "POST",
                        f"/versions/{_q(version_id)}/blobs/plan",
                        json={"digests": [format_digest(d) for d in part]},
                    )
                )
                for source in plan.blobs:
                    digest = parse_digest(source.digest)
                    if source.url is None and source.size is not None and source.size < SMALL_BLOB:
                        small.append((digest, source.size))
                    else:
                        singles.append(Single(version_id, digest, source.url, source.size))
            batches.extend(Batch(version_id, cut) for cut in _cut(small))
        return batches, singles

    def _fetch_batches(
        self,
        batches: list[Batch],
        place_bytes: Callable[[Digest, bytes], None],
        *,
        cache: bool,
        writers: int,
    ) -> None:
        """Fetch *batches* and place (and cache) their blobs: each of *writers* parts of
        them (the batches are in the order of their files, so each part's files are in
        folders of their own) on a thread of its own, as :meth:`_fetch_in_order` does.
        Creating the files is the kernel's work, which two threads spread over two cores."""
        writers = min(writers, len(batches) // _AHEAD)
        if writers <= 1:
            self._fetch_in_order(batches, place_bytes, cache=cache)
            return
        step = -(-len(batches) // writers)
        with ThreadPoolExecutor(writers, "soko-place") as pool:
            parts = [
                pool.submit(
                    self._fetch_in_order, batches[start : start + step], place_bytes, cache=cache
                )
                for start in range(0, len(batches), step)
            ]
            try:
                for done in parts:
                    done.result()
            finally:
                for running in parts:
                    running.cancel()

    def _fetch_in_order(
        self, batches: list[Batch], place_bytes: Callable[[Digest, bytes], None], *, cache: bool
    ) -> None:
        """Fetch *batches* on a few threads, a bounded number ahead, and place (and cache)
        their blobs on this thread in order."""
        if not batches:
            return
        packer: contextlib.AbstractContextManager[PackWriter | None]
        packer = self.cache.packer() if cache else contextlib.nullcontext()
        queued = iter(batches)
        ahead: deque[Future[list[tuple[Digest, bytes]]]] = deque()
        with packer as writer, ThreadPoolExecutor(FETCHERS, "soko-fetch") as pool:
            try:
                for batch in queued:
                    ahead.append(pool.submit(self._fetch_batch, batch))
                    if len(ahead) >= _AHEAD:
                        break
                while ahead:
                    blobs = ahead.popleft().result()
                    following = next(queued, None)
                    if following is not None:
                        ahead.append(pool.submit(self._fetch_batch, following))
                    for digest, data in blobs:
                        if writer is not None:
                            writer.add(digest, data)
                        place_bytes(digest, data)
            except BaseException:
                for future in ahead:
                    future.cancel()
                raise

    def _fetch_batch(self, batch: Batch) -> list[tuple[Digest, bytes]]:
        """Small blobs in one framed answer, each verified; returns their bytes."""
        version_id, digests = batch

        def attempt() -> list[tuple[Digest, bytes]]:
            received: list[tuple[Digest, bytes]] = []
            reader = FrameReader()
            body = {"digests": [format_digest(d) for d in digests]}
            with self.session.stream(
                "POST", f"/versions/{_q(version_id)}/blobs/batch", json=body
            ) as response:
                for chunk in response.iter_bytes(_CHUNK):
                    for digest, data in reader.feed(chunk):
                        if digest.algorithm.digest_of(data) != digest.raw:
                            raise _damaged(digest, version_id)
                        received.append((digest, data))
            reader.close()
            if {d for d, _ in received} != set(digests):
                raise StoreError(f"The server sent other blobs than asked for ({version_id}).")
            return received

        return self.session.retrying(attempt)

    def _fetch_single_cached(
        self, job: Single, *, place: Callable[[Digest, str, int], None], progress: Progress | None
    ) -> None:
        """Stream one blob into the cache, verified, and place it from there."""

        def attempt() -> str:
            with self._blob_stream(job) as chunks:
                try:
                    return self.cache.put_chunks(job.digest, chunks)
                except DigestMismatchError:
                    raise _damaged(job.digest, job.version_id) from None

        # A large blob moves the bar as its bytes arrive, not only once it is whole.
        with metering.metered(_bytes_to(progress)) as meter:
            cached = self.session.retrying(metering.retracting(attempt))
        place(job.digest, cached, meter.counted)

    def _fetch_single_into(
        self,
        job: Single,
        *,
        dests: dict[Digest, list[str]],
        progress: Progress | None,
        remember: bool = False,
    ) -> None:
        """Stream one blob into a temp file beside its first destination, verified, then
        into place; further destinations are copies of it. With *remember*, the stat cache
        records where it now lies."""
        digest = job.digest
        first, *others = dests[digest]

        def attempt() -> int:
            temp = temp_beside(first)
            with self._blob_stream(job) as chunks:
                try:
                    size = stream_new(temp, digest, chunks)
                except DigestMismatchError:
                    raise _damaged(digest, job.version_id) from None
            try:
                os.replace(temp, first)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            return size

        with metering.metered(_bytes_to(progress)) as meter:
            size = self.session.retrying(metering.retracting(attempt))
        for dest in others:
            materialize(first, dest, digest, mode="copy", make_dirs=False)
        if remember and self.copies is not None:
            self.copies.remember_copies((dest, digest) for dest in dests[digest])
        if progress:
            progress(1 + len(others), max(0, size * (1 + len(others)) - meter.counted))

    @contextlib.contextmanager
    def _blob_stream(self, job: Single) -> Iterator[Iterator[bytes]]:
        """The chunks of one blob: from the server, or straight from the bucket. As they
        arrive: re-cutting them into larger chunks would copy every byte once more."""
        if job.url is None:
            digest = job.digest
            target = f"/versions/{_q(job.version_id)}/blobs/{digest.algorithm.key}/{digest.hex}"
            with self.session.stream("GET", target) as response:
                yield response.iter_bytes()
        else:
            with self.session.stream("GET", job.url, direct=True) as response:
                yield response.iter_bytes()


def _damaged(digest: Digest, version_id: str) -> CorruptBlobError:
    """The error for bytes of *digest* that do not hash to it, as the server sent them: the
    server's copy is damaged (nothing was kept), not the caller's input."""
    return CorruptBlobError(
        f"The server sent bytes for blob {digest} of version {version_id} that do not match "
        "its digest; nothing was kept. The server's copy may be damaged: its operator can "
        "check the store with `soko verify`."
    )


def _cut(blobs: Sequence[tuple[Digest, int]]) -> Iterator[list[Digest]]:
    """Batches of at most BATCH_BLOBS blobs and about BATCH_BYTES bytes."""
    batch: list[Digest] = []
    size = 0
    for digest, blob_size in blobs:
        if batch and (size + blob_size > BATCH_BYTES or len(batch) >= BATCH_BLOBS):
            yield batch
            batch, size = [], 0
        batch.append(digest)
        size += blob_size
    if batch:
        yield batch


def _bytes_to(progress: Progress | None) -> Callable[[int], None] | None:
    """What reports streamed bytes (no files) to *progress*."""
    if progress is None:
        return None
    return lambda nbytes: progress(0, nbytes)


def _run_all(jobs: Sequence[Callable[[], None]]) -> None:
    if len(jobs) == 1:
        jobs[0]()
    elif jobs:
        with ThreadPoolExecutor(WORKERS, "soko-http") as pool:
            for _ in pool.map(lambda job: job(), jobs):
                pass


class _ThreadWriters:
    """A :class:`FolderWriter` for each thread that places files, all closed at the end.
    The threads write into different folders, so each keeps descriptors of its own."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[FolderWriter] = []
        self._lock = threading.Lock()

    def __enter__(self) -> _ThreadWriters:
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            writers, self._all = self._all, []
        for writer in writers:
            writer.__exit__()

    def mine(self) -> FolderWriter:
        writer: FolderWriter | None = getattr(self._local, "writer", None)
        if writer is None:
            writer = self._local.writer = FolderWriter()
            with self._lock:
                self._all.append(writer)
        return writer
