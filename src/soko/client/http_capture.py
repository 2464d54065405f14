"""Uploading a folder's small files to a soko server while ``add_dir`` hashes them.

With ``policy="mutable"`` (the default) W&B copies every added file to a staging folder;
through a server soko's staging area is the server (see
:meth:`soko.client.http.HttpBackend.store_blobs`). Inside a run, ``add_dir`` sends the small
files it reads to the run's project as it hashes them, so each is read once and the
server stores it while the client hashes the next ones; the log then finds those blobs
stored and only commits. The embedded store's capture (:mod:`soko.client.capture`) does the
same into the local store.

This is a head start, never a condition of the log: a batch the server refuses (a key
that may not upload, say) or that fails stops the capture without an error, and the log
uploads what the server lacks from the files, as it does for any draft. Larger files are
only hashed here: the log uploads them. A draft never logged leaves blobs no version
names, which the server's garbage collection removes after its grace period.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from soko.client.hashing import HashedFile, hash_file
from soko.client.http_upload import BlobUploads
from soko.client.sources import BlobSource
from soko.core.digests import Algorithm, Digest
from soko.errors import SokoError
from soko.wire.framing import frame_header

WINDOW_BYTES = 64 * 1024 * 1024
"""Bytes gathered before they are sent, in the order of their digests: the server's index
rows of a batch of 1,024 files of 1 KiB then land on a sixty-fourth of its pages, as the
log's uploads do, not all over them (each commit writes every page it touched)."""
BATCH_BLOBS = 1024
"""Blobs to a request, as the log's uploads send them."""
SENDERS = 8
"""Requests in flight at once: the server answers each once its pack is durable, so
several hide each other's fsyncs. The bytes held are a window filling, one being sent
and these."""


Ask = Callable[[Algorithm, bytes], "bytes | None"]
"""The missing-blob question for the project about raw digests of one algorithm back to
back (up to 65,536): one bit per digest, set when it must be uploaded; None when the
server cannot answer it so (everything is sent)."""
QUESTION_DIGESTS = 65_536
"""Digests asked about in one question (``MAX_RAW_DIGESTS``)."""


class UploadCapture:
    """Sends the small files of one ``add_dir`` call that the server lacks to it, for
    ``entity/project``.

    Each window is asked about first (*ask*, one question per window): a folder logged
    before from another machine, whose blobs the project holds, sends only what changed.
    :meth:`close` waits for what is in flight and raises nothing: what did not reach the
    server is uploaded by the log.
    """

    def __init__(self, uploads: BlobUploads, ask: Ask, *, entity: str, project: str) -> None:
        self.entity = entity
        self.project = project
        self._uploads = uploads
        self._ask = ask
        self._owner = {"entity": entity, "project": project}
        self._confirmed = 0
        self._lock = threading.Lock()
        self._frames: list[_Frame] = []
        self._size = 0
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: list[Future[None]] = []
        self._slots = threading.BoundedSemaphore(SENDERS)
        self._dispatcher: ThreadPoolExecutor | None = None
        self._dispatched: Future[None] | None = None
        self._failed = False

    def store(self, sources: Sequence[BlobSource]) -> None:
        for source in sources:
            if source.data is not None:
                self._add(source.digest, source.data)

    def store_hashed(
        self, algorithm: Algorithm, raws: Sequence[bytes], datas: Sequence[bytes]
    ) -> None:
        for raw, data in zip(raws, datas, strict=True):
            self._add(Digest(algorithm, raw), data)

    def copy_file(self, path: str, algorithm: Algorithm) -> HashedFile:
        """Hash a larger file only: the log uploads it, a request of its own."""
        return hash_file(path, algorithm)

    def staged(self) -> int:
        """How many of the blobs added the server has confirmed stored (a blob added
        twice counts twice)."""
        with self._lock:
            return self._confirmed

    def close(self) -> None:
        """Send what is left and wait for every request in flight."""
        try:
            self._send()
            self._wait()
        finally:
            self._shutdown()

    def abandon(self) -> None:
        self._frames = []
        self.close()

    def _add(self, digest: Digest, data: bytes) -> None:
        if self._failed:
            return
        self._frames.append((frame_header(digest, len(data)), data, digest))
        self._size += len(data)
        if self._size >= WINDOW_BYTES:
            self._send()

    def _send(self) -> None:
        frames, self._frames, self._size = self._frames, [], 0
        if not frames or self._failed:
            return
        if self._dispatcher is None:
            self._dispatcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-up")
        # The hashing goes on while this window is sent; it waits only for the window
        # before, so that at most two are held.
        if self._dispatched is not None:
            self._dispatched.result()
        self._dispatched = self._dispatcher.submit(self._dispatch, frames)

    def _dispatch(self, frames: list[_Frame]) -> None:
        """Ask about a window, then cut what is missing into requests and send them (on
        the dispatcher's thread, the one that changes the list of requests in flight)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="soko-up")
        self._in_flight = [f for f in self._in_flight if not f.done()]
        try:
            # In place: the list is the window the caller handed over, still referenced.
            frames[:] = self._lacking(frames)
        except SokoError:
            self._failed = True
            return
        # A frame's header starts with its digest's text ("<algorithm>:<hex>"): sorting
        # by the header sorts by the digest.
        frames.sort(key=_header_of)
        for start in range(0, len(frames), BATCH_BLOBS):
            if self._failed:
                return
            batch = frames[start : start + BATCH_BLOBS]
            body = b"".join(part for header, data, _ in batch for part in (header, data))
            frames[start : start + BATCH_BLOBS] = [_SENT] * len(batch)  # let the bytes go
            self._slots.acquire()  # no more requests in flight than senders
            self._in_flight.append(self._pool.submit(self._post, body, len(batch)))

    def _lacking(self, frames: list[_Frame]) -> list[_Frame]:
        """Those of *frames* the server lacks; the others count as staged. The question
        is asked in raw digests and answered in bits: no object per digest."""
        lacking: list[_Frame] = []
        for algorithm in {frame[2].algorithm for frame in frames}:
            mine = [frame for frame in frames if frame[2].algorithm is algorithm]
            for start in range(0, len(mine), QUESTION_DIGESTS):
                part = mine[start : start + QUESTION_DIGESTS]
                bits = self._ask(algorithm, b"".join(frame[2].raw for frame in part))
                if bits is None:
                    lacking += part
                    continue
                lacking += [f for i, f in enumerate(part) if bits[i >> 3] >> (i & 7) & 1]
        with self._lock:
            self._confirmed += len(frames) - len(lacking)
        return lacking

    def _post(self, body: bytes, count: int) -> None:
        try:
            if not self._failed:
                self._uploads.send_batch(body, self._owner)
                with self._lock:
                    self._confirmed += count
        except SokoError:
            # Refused or unreachable: the log uploads what the server lacks, and reports
            # an error that persists.
            self._failed = True
        finally:
            self._slots.release()

    def _wait(self) -> None:
        dispatched, self._dispatched = self._dispatched, None
        if dispatched is not None:
            dispatched.result()
        in_flight, self._in_flight = self._in_flight, []
        for future in in_flight:
            future.result()

    def _shutdown(self) -> None:
        for pool in (self._dispatcher, self._pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._dispatcher = self._pool = None


_Frame = tuple[bytes, bytes, Digest]
"""A blob to send: its frame header, its bytes and its digest."""
_SENT: _Frame = (b"", b"", Digest.of_bytes(b""))


def _header_of(frame: _Frame) -> bytes:
    return frame[0]
