"""Uploads to a soko server: blobs from their sources, for one project.

Small blobs (below :data:`~soko.wire.framing.SMALL_BLOB`) are framed into batches of a few
megabytes, large ones go alone (to a presigned bucket URL when the server's store is a
bucket), several at once, each request retried with back-off. The server, or the bucket
plus the server's check, verifies every byte before the blob can be referenced, and a
blob that fails is reported as the file that changed after it was added.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from soko.client.backend import Progress
from soko.client.cache import BlobCache
from soko.client.http_session import ApiSession, raise_for_status
from soko.client.sources import BlobSource
from soko.core import metering
from soko.core.digests import Digest
from soko.errors import DigestMismatchError
from soko.wire.base import format_digest
from soko.wire.framing import MEDIA_TYPE, SMALL_BLOB, frame_header
from soko.wire.requests import MAX_DIGESTS_PER_REQUEST, UploadPlanOut, UploadTarget

# Upload batches are large: the server packs each with one fsync and one index commit,
# which it serialises, so 20 batches of 1,024 small files log faster than 80 of 256.
_BATCH_BYTES = 16 * 1024 * 1024
_BATCH_BLOBS = 1024
WORKERS = 8

Owner = Mapping[str, str]
"""``{"entity": …, "project": …}``: the project an upload is for."""


def run_all(jobs: Sequence[Callable[[], None]]) -> None:
    """Run *jobs* on up to :data:`WORKERS` threads; raise the first error."""
    if not jobs:
        return
    if len(jobs) == 1:
        jobs[0]()
        return
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="soko-http") as pool:
        for _ in pool.map(lambda job: job(), jobs):
            pass


def _changed(source: BlobSource, when: str = "after") -> DigestMismatchError:
    return DigestMismatchError(
        f"{source.path!r} changed {when} it was added to the artifact; add it again."
    )


class BlobUploads:
    """The upload half of :class:`~soko.client.http.HttpBackend`."""

    def __init__(self, session: ApiSession, cache: BlobCache) -> None:
        self.session = session
        self.cache = cache

    def upload(
        self, sources: Sequence[BlobSource], *, owner: Owner, progress: Progress | None
    ) -> None:
        """Store each source's bytes on the server for *owner*, verified there."""
        unique = _unique(sources)
        small: list[tuple[BlobSource, int]] = []
        large: list[tuple[BlobSource, int]] = []
        for source in unique:
            # A small file is read in its batch as its size when hashed, no stat first
            # (a file grown since is refused there). A large one goes with its size now:
            # a file that changed since is sent as it is and refused by the server's check.
            size = len(source.data) if source.data is not None else source.size
            if size < SMALL_BLOB:
                small.append((source, size))
            else:
                large.append((source, _size(source)))
        jobs: list[Callable[[], None]] = [
            partial(self._upload_batch, [s for s, _ in batch], owner, progress)
            for batch in _batches(small)
        ]
        for start in range(0, len(large), MAX_DIGESTS_PER_REQUEST):
            part = large[start : start + MAX_DIGESTS_PER_REQUEST]
            blobs = [{"digest": format_digest(s.digest), "size": n} for s, n in part]
            plan = UploadPlanOut.model_validate(
                self.session.json("POST", "/blobs/uploads", json={**owner, "blobs": blobs})
            )
            for (source, size), target in zip(part, plan.uploads, strict=True):
                jobs.append(partial(self._upload_large, source, size, target, owner, progress))
        run_all(jobs)

    def send_batch(self, body: bytes, owner: Owner) -> None:
        """POST framed blobs (:mod:`soko.wire.framing`) for *owner*."""
        headers = {"Content-Type": MEDIA_TYPE, "Content-Length": str(len(body))}
        sent = _Body(body)
        try:
            self.session.call("POST", "/blobs/batch", params=owner, content=sent, headers=headers)
        finally:
            sent.release()

    def _upload_batch(
        self, batch: Sequence[BlobSource], owner: Owner, progress: Progress | None
    ) -> None:
        parts: list[bytes] = []
        total = 0
        for source in batch:
            data = source.read_as_hashed()
            if data is None:
                raise _changed(source)
            parts.append(frame_header(source.digest, len(data)))
            parts.append(data)
            total += len(data)
        try:
            self.send_batch(b"".join(parts), owner)
        except DigestMismatchError:
            raise _changed_file(batch) from None
        if progress:
            progress(len(batch), total)

    def _upload_large(
        self,
        source: BlobSource,
        size: int,
        target: UploadTarget,
        owner: Owner,
        progress: Progress | None,
    ) -> None:
        digest = source.digest
        url, headers, upload_id = target.url, target.headers, target.upload_id

        def send() -> None:
            with source.open() as file:
                body = metering.CountingReader(file)  # the bar moves as the bytes go out
                if url is None:
                    response = self.session.api.put(
                        f"/blobs/{digest.algorithm.key}/{digest.hex}",
                        params=owner,
                        content=body,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                else:
                    sent = {**headers, "Content-Length": str(size)}
                    response = self.session.direct.put(url, content=body, headers=sent)
            raise_for_status(response)

        try:
            with metering.metered(_bytes_to(progress)) as meter:
                self.session.retrying(metering.retracting(send))
            if upload_id is not None:
                self.session.call(
                    "POST",
                    f"/blobs/uploads/{upload_id}/complete",
                    json={**owner, "digest": format_digest(digest)},
                )
        except DigestMismatchError:
            raise _changed(source) from None
        if progress:
            progress(1, max(0, size - meter.counted))

    def stage_in_cache(
        self, sources: Sequence[BlobSource], progress: Progress | None
    ) -> list[BlobSource]:
        """Verified copies of the sources' files in the local cache, as sources: the bytes
        of a log that may not upload yet are safe from later edits all the same."""
        staged: dict[Digest, BlobSource] = {}

        def stage(source: BlobSource) -> None:
            try:
                with metering.metered(_bytes_to(progress)) as meter:
                    copy = self.cache.put_file(source.digest, source.readable_path)
            except DigestMismatchError:
                raise _changed(source, "while") from None
            staged[source.digest] = source._replace(copy=copy)
            if progress:
                progress(1, max(0, os.path.getsize(copy) - meter.counted))

        unique = _unique(sources)
        # A few large jobs, not one per file: a thread hop costs more than a 4 KiB copy.
        step = max(1, -(-len(unique) // (WORKERS * 4)))
        run_all(
            [
                partial(_each, stage, unique[start : start + step])
                for start in range(0, len(unique), step)
            ]
        )
        return list(staged.values())


class _Body:
    """A request's bytes, sent whole (as often as the request is retried) until released.

    httpx keeps each request in a reference cycle with its connection and response, so
    its body lives until the cyclic collector runs, and the log pauses the collector (see
    :mod:`soko.client.pygc`): a body given as bytes (a megabyte of small blobs) would stay
    until the slice of uploads ends. Released once its request is done, only this empty
    shell stays."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data

    def release(self) -> None:
        self._data = b""


def _bytes_to(progress: Progress | None) -> Callable[[int], None] | None:
    """What reports streamed bytes (no files) to *progress*."""
    if progress is None:
        return None
    return lambda nbytes: progress(0, nbytes)


def _unique(sources: Sequence[BlobSource]) -> list[BlobSource]:
    """The first source of each digest, in order."""
    unique: dict[Digest, BlobSource] = {}
    for source in sources:
        unique.setdefault(source.digest, source)
    return list(unique.values())


def _size(source: BlobSource) -> int:
    return os.path.getsize(source.readable_path)


def _each(work: Callable[[BlobSource], None], sources: Sequence[BlobSource]) -> None:
    for source in sources:
        work(source)


def _batches(blobs: Sequence[tuple[BlobSource, int]]) -> Iterator[list[tuple[BlobSource, int]]]:
    batch: list[tuple[BlobSource, int]] = []
    size = 0
    for blob in blobs:
        if batch and (size + blob[1] > _BATCH_BYTES or len(batch) >= _BATCH_BLOBS):
            yield batch
            batch, size = [], 0
        batch.append(blob)
        size += blob[1]
    if batch:
        yield batch


def _changed_file(batch: Sequence[BlobSource]) -> DigestMismatchError:
    """The error naming the file of *batch* that no longer has its digest."""
    for source in batch:
        if Digest.of_bytes(source.read(), source.digest.algorithm) != source.digest:
            return _changed(source)
    return DigestMismatchError("A file changed after it was added to the artifact.")
