"""Reading a version's bytes: its manifest, a plan of where each blob is, and the blobs.

A blob is served only through a version that names it and that the caller may read, so
a key of project A cannot read project B's bytes by guessing digests. Small blobs come in
framed batches (see :mod:`soko.wire.framing`); large ones alone, from the server or from a
presigned bucket URL. The client verifies every blob while it streams.

A batch is measured by the sizes the store holds, never by the manifest's, which the
version's author wrote: a manifest that calls a 64 MiB blob one byte must not make the
server read it into memory. Its answer streams within :data:`READ_AHEAD_BYTES`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from soko.core.digests import Digest
from soko.errors import CorruptBlobError, NotFoundError, SokoError, ValidationError
from soko.server.deps import Caller, State
from soko.server.openapi import BINARY
from soko.server.protocol import DIRECT_READ_MIN, PATHSEND
from soko.server.routes.blobs import parse_digests
from soko.service import pages
from soko.storage.base import BlobStore
from soko.storage.capabilities import BatchReads, LocalFiles, SizedReads
from soko.storage.direct import DirectReader
from soko.wire import API_PREFIX
from soko.wire.base import format_digest, parse_digest
from soko.wire.framing import BATCH_BLOB_LIMIT, MEDIA_TYPE, frame_header
from soko.wire.requests import BlobSource, DigestList, DownloadPlanOut, EntriesPageOut

router = APIRouter(prefix=API_PREFIX, tags=["downloads"])

_CHUNK = 1024 * 1024
# A megabyte per direct read, and so per piece sent: eight pieces alive at once made the
# worker threads' heaps grow and shrink by 8 MiB per read (1.2 against 0.9 CPU-s/GiB).
_DIRECT_CHUNK = _CHUNK
# A blob from this size on is read past the page cache: a large file uploaded through the
# server was written past it too (see soko.storage.direct), and a download of it would pay
# for filling the cache with bytes it reads once.
_DIRECT_MIN = DIRECT_READ_MIN
READ_AHEAD_BYTES = BATCH_BLOB_LIMIT
"""The blob bytes a batch answer holds at once, read ahead or being sent: its memory
bound, whatever the batch's size (plus a chunk of :data:`_CHUNK` on its way out)."""
READ_AHEAD_BLOBS = 16
"""Blobs read ahead in parallel (a GET from a bucket takes milliseconds; a file far less)."""

log = logging.getLogger("soko.server")


class _BlobFileResponse(FileResponse):
    # Starlette reads a file 64 KiB at a time, each read a hop to a worker thread: 32,768
    # hops for a 2 GiB blob. A megabyte at a time makes that 2,048.
    chunk_size = _CHUNK


def _blob_response(
    blobs: BlobStore, digest: Digest, media_type: str, *, ranged: bool = False
) -> Response:
    path = blobs.local_path(digest) if isinstance(blobs, LocalFiles) else None
    # A packed blob has no file of its own: it is streamed from its pack.
    if path is not None and os.path.isfile(path):
        return blob_file_response(path, media_type=media_type, ranged=ranged)
    return StreamingResponse(_chunks_of(blobs, digest), media_type=media_type)


class _LargeBlobResponse(_BlobFileResponse):
    """A large blob's file, read past the page cache: by the ASGI server where it sends
    files itself (``http.response.pathsend``; soko's, see :mod:`soko.server.protocol`),
    else a megabyte per hop to a worker thread (:func:`_direct_chunks`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if PATHSEND in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        size = os.path.getsize(self.path)
        fallback = StreamingResponse(
            _direct_chunks(str(self.path)),
            media_type=self.media_type,
            headers={"Content-Length": str(size)},
        )
        await fallback(scope, receive, send)


def blob_file_response(path: str, *, media_type: str, ranged: bool) -> Response:
    """The answer sending a blob's file: a large one read past the page cache, unless the
    request asks for a *ranged* part of it (FileResponse answers ``Range``)."""
    size = os.path.getsize(path)
    if size < _DIRECT_MIN or ranged:
        return _BlobFileResponse(path, media_type=media_type)
    return _LargeBlobResponse(path, media_type=media_type)


async def _direct_chunks(path: str) -> AsyncIterator[bytes]:
    """A large blob's file read past the page cache (see :mod:`soko.storage.direct`), a
    megabyte per hop to a worker thread; the next one is read while the last is sent, as
    the kernel's read-ahead would."""
    reader = await anyio.to_thread.run_sync(
        functools.partial(DirectReader, path, chunk=_DIRECT_CHUNK, piece=_CHUNK)
    )
    loop = asyncio.get_running_loop()
    ahead = loop.run_in_executor(None, reader.read_pieces)
    try:
        while pieces := await ahead:
            ahead = loop.run_in_executor(None, reader.read_pieces)
            for piece in pieces:
                yield piece
    finally:
        # The answer may stop early (the client went away): the file closes once the
        # read in flight is done.
        def close(done: asyncio.Future[list[bytes]]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: an error of a read nobody waits for is moot
            reader.close()

        ahead.add_done_callback(close)


def _chunks_of(blobs: BlobStore, digest: Digest) -> Iterator[bytes]:
    with blobs.open(digest) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


@router.get(
    "/versions/{version_id}/manifest",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
def get_manifest(version_id: str, state: State, caller: Caller) -> Response:
    """The manifest's stored bytes (W&B manifest JSON); their XXH128 is its ``manifest_blob``.

    Checked before they are sent (a hash read a few megabytes at a time, a fraction of a
    second for a million entries): a damaged one is set aside here, where the next log of
    that content replaces it, rather than refused by every client in turn. Then sent from
    its file a megabyte at a time: read whole, a million entries' 95 MB were held twice,
    as read and in the socket's buffer."""
    record, ref = state.readable_manifest(caller, version_id)
    state.check_manifest_size(ref.digest, name=record.qualified_name)
    if not state.store.blob_intact(ref.digest):
        # Absent or damaged: the whole read names which, and sets damaged bytes aside. A
        # copy stored again since the hash reads back intact and is sent as it is.
        return Response(state.store.manifest_bytes(ref), media_type="application/json")
    return _blob_response(state.store.blobs, ref.digest, "application/json")


@router.get("/versions/{version_id}/files")
def list_files(
    version_id: str,
    state: State,
    caller: Caller,
    prefix: str = "",
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=pages.PAGE_MAX)] = 1000,
) -> EntriesPageOut:
    """A page of the version's entries in path order: those whose path starts with
    *prefix*, after the path *after*. Read through the manifest's index, a slice at a time:
    its cost is the page's, not the version's."""
    record, ref = state.readable_manifest(caller, version_id)
    page = pages.entries_page(
        state.store,
        ref,
        prefix=prefix,
        after=after,
        limit=limit,
        # Building an index reads the manifest whole, once: the server's bound applies.
        before_build=lambda: state.check_manifest_size(ref.digest, name=record.qualified_name),
    )
    state.remember_page(ref, page)
    return EntriesPageOut.of(page)


@router.post("/versions/{version_id}/blobs/plan")
def plan_downloads(
    version_id: str, body: DigestList, state: State, caller: Caller
) -> DownloadPlanOut:
    """Each blob's size and, for large blobs in a bucket, a presigned URL."""
    record = state.readable_version(caller, version_id)
    digests = parse_digests(body.digests)
    sizes = state.require_members(record, digests)
    presigner = state.presigner
    sources: list[BlobSource] = []
    for digest in digests:
        size = sizes[digest]
        url = None
        if presigner is not None and (size is None or size >= state.presign_min_bytes):
            url = presigner.presign_get(digest, expires=state.config.presign_expiry_seconds)
        sources.append(BlobSource(digest=format_digest(digest), size=size, url=url))
    return DownloadPlanOut(blobs=sources)


@router.post(
    "/versions/{version_id}/blobs/batch",
    response_class=StreamingResponse,
    responses={200: {"content": {MEDIA_TYPE: BINARY}}},
)
def download_batch(version_id: str, body: DigestList, state: State, caller: Caller) -> Response:
    """The small blobs asked for, framed, streamed as they are read (packed blobs in the
    order of their packs, so not necessarily in the order asked; each frame names its
    blob). The store's own sizes are checked against the limits before the answer starts,
    and a missing blob is a JSON error then, not a cut-off answer."""
    record = state.readable_version(caller, version_id)
    digests = parse_digests(body.digests)
    state.require_members(record, digests)
    _refuse_duplicates(digests)
    blobs = state.store.blobs
    reads = _stored_sizes(blobs, digests, state.io_pool)
    sizes = reads.sizes
    missing = [d for d in digests if d not in sizes]
    if missing:
        raise CorruptBlobError(
            f"{len(missing)} blob(s) of {record.qualified_name} are missing from the store "
            f"(e.g. {format_digest(missing[0])}); run `soko verify` on the server."
        )
    _check_limits(sizes, max_batch_bytes=state.config.max_batch_bytes)
    frames = _frames(blobs, digests, reads, state.io_pool, name=record.qualified_name)
    return StreamingResponse(frames, media_type=MEDIA_TYPE)


def _refuse_duplicates(digests: list[Digest]) -> None:
    # One frame per blob: a digest named twice would be read and sent twice, and clients
    # never ask for that.
    seen: set[Digest] = set()
    for digest in digests:
        if digest in seen:
            raise ValidationError(
                f"A batch names each blob once; {format_digest(digest)} is named twice."
            )
        seen.add(digest)


def _stored_sizes(blobs: BlobStore, digests: list[Digest], pool: ThreadPoolExecutor) -> SizedReads:
    """What the store holds of each blob, never what a manifest claims: a manifest that
    understates a size must not make the server read more than it checked; with the
    reader of the packed ones (none packed in a store without packs)."""
    if isinstance(blobs, BatchReads):
        return blobs.sized_reads(digests)

    def size_of(digest: Digest) -> int | None:
        try:
            return blobs.stat(digest).size
        except NotFoundError:
            return None

    # A bucket has no batched stat: the HEADs go out in parallel, as the reads will.
    found = zip(digests, pool.map(size_of, digests), strict=True)
    return SizedReads({d: size for d, size in found if size is not None}, lambda: iter(()))


def _check_limits(sizes: dict[Digest, int], *, max_batch_bytes: int) -> None:
    largest = max(sizes, key=sizes.__getitem__, default=None)
    total = sum(sizes.values())
    if largest is not None and sizes[largest] > BATCH_BLOB_LIMIT:
        raise ValidationError(
            f"Blob {format_digest(largest)} holds {sizes[largest]} bytes; a batch carries "
            f"blobs of at most {BATCH_BLOB_LIMIT} bytes: fetch it alone."
        )
    if total > max_batch_bytes:
        raise ValidationError(
            f"The blobs asked for hold {total} bytes; a batch carries at most "
            f"{max_batch_bytes} bytes: ask for fewer at a time."
        )


def _frames(
    blobs: BlobStore,
    digests: list[Digest],
    reads: SizedReads,
    pool: ThreadPoolExecutor,
    *,
    name: str,
) -> Iterator[bytes]:
    """The answer's body, in chunks of about a megabyte.

    Each frame's header is written once its blob was read, with the length read, so no
    header ever promises bytes that do not follow. A blob gone since the check, or grown
    past its checked size, ends the answer early: the connection closes without the end of
    the chunked body, which the client sees as a broken transfer (never as a short blob),
    and its retry gets the JSON error from the check.
    """
    answer = _Answer()
    sizes = reads.sizes
    try:
        for digest, data in _blob_bytes(blobs, digests, reads, pool):
            if len(data) > sizes[digest]:
                raise CorruptBlobError(
                    f"Blob {format_digest(digest)} grew from {sizes[digest]} bytes since the "
                    "batch was checked, so its bytes are not its digest's; run `soko verify` "
                    "on the server."
                )
            yield from answer.frame(digest, data)
            del data  # not held while the next blob is read
    except (SokoError, OSError) as exc:
        log.warning("Cut off the batch answer of %s: %s", name, exc)
        raise
    yield from answer.rest()


def _blob_bytes(
    blobs: BlobStore, digests: list[Digest], reads: SizedReads, pool: ThreadPoolExecutor
) -> Iterator[tuple[Digest, bytes]]:
    """Each blob's bytes: the packed ones pack by pack (one open per pack, from where
    the sizing found them), the others read ahead on *pool*."""
    sent: set[Digest] = set()
    for digest, data in reads.read_packed():
        sent.add(digest)
        yield digest, data
        del data
    rest = [d for d in digests if d not in sent] if sent else digests
    yield from _read_ahead(blobs, rest, reads.sizes, pool)


def _read_ahead(
    blobs: BlobStore, digests: list[Digest], sizes: dict[Digest, int], pool: ThreadPoolExecutor
) -> Iterator[tuple[Digest, bytes]]:
    """Each blob's bytes in the order of *digests*, read on *pool* a few at a time (a bucket
    answers each GET slowly): at most READ_AHEAD_BLOBS blobs and READ_AHEAD_BYTES bytes,
    the one being sent included, or one blob when it alone is larger."""
    queue = iter(digests)
    following = next(queue, None)
    ahead: deque[tuple[Digest, Future[bytes]]] = deque()
    held = 0
    try:
        while True:
            while following is not None and len(ahead) < READ_AHEAD_BLOBS:
                size = sizes[following]
                if ahead and held + size > READ_AHEAD_BYTES:
                    break
                ahead.append((following, pool.submit(_read_capped, blobs, following, size + 1)))
                held += size
                following = next(queue, None)
            if not ahead:
                return
            digest, future = ahead.popleft()
            try:
                yield digest, future.result()
            finally:
                del future  # it holds the bytes, which the window no longer counts
                held -= sizes[digest]
    finally:
        for _digest, pending in ahead:
            pending.cancel()


def _read_capped(blobs: BlobStore, digest: Digest, cap: int) -> bytes:
    """The blob's first *cap* bytes at most: its checked size and one more byte, which is
    enough to see that it grew without reading all of it."""
    parts: list[bytes] = []
    count = 0
    with blobs.open(digest) as reader:
        while count < cap and (chunk := reader.read(cap - count)):
            parts.append(chunk)
            count += len(chunk)
    return b"".join(parts)


class _Answer:
    """Frames gathered into chunks of about :data:`_CHUNK` bytes: each chunk handed to the
    server costs a hop between threads, too many for a frame of a few kilobytes each.
    Larger blobs go out in slices of that size, so that the server's copies stay small."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def frame(self, digest: Digest, data: bytes) -> Iterator[bytes]:
        self._buffer += frame_header(digest, len(data))
        if len(self._buffer) + len(data) <= _CHUNK:
            self._buffer += data
            if len(self._buffer) >= _CHUNK // 2:
                yield self._take()
            return
        yield self._take()
        for start in range(0, len(data), _CHUNK):
            yield data[start : start + _CHUNK]

    def rest(self) -> Iterator[bytes]:
        if self._buffer:
            yield self._take()

    def _take(self) -> bytes:
        chunk = bytes(self._buffer)
        self._buffer.clear()
        return chunk


@router.get(
    "/versions/{version_id}/blobs/{algorithm}/{hex_digest}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": BINARY}}},
)
def download_blob(
    version_id: str,
    algorithm: str,
    hex_digest: str,
    request: Request,
    state: State,
    caller: Caller,
) -> Response:
    record = state.readable_version(caller, version_id)
    digest = parse_digest(f"{algorithm}:{hex_digest}")
    state.require_members(record, [digest])
    state.store.blobs.stat(digest)  # NotFound as JSON, before a streaming answer starts
    ranged = "range" in request.headers
    return _blob_response(state.store.blobs, digest, "application/octet-stream", ranged=ranged)
