"""Copying bytes into a store's temp file while hashing them, so what is stored is what was
hashed, even when the source changes during the copy.

- :func:`copy_file` copies a regular file. The kernel copies it (``copy_file_range``: no
  pass through this process's memory, a reflink on file systems that have them), one chunk
  at a time, and each chunk is read back from the destination, still hot in the page
  cache, and hashed: the digest is of the stored bytes themselves. The source is read
  once. Where the kernel cannot copy (another file system, another OS), chunks go through
  a buffer: read, hashed, written. Copying through a buffer costs several times the CPU
  of the kernel's copy on this project's machines (2 GiB: ~3 s against ~0.9 s for ``cp``).
- :func:`copy_stream` copies any binary stream through a buffer.
- :func:`write_parts` writes byte strings back to back without joining them.

With ``pipelined``, hashing runs on a helper thread while the next chunk is copied, so a
large file costs about max(hash, copy) rather than their sum (MD5 hashes ~0.5 GB/s a core).
Buffers are per thread and reused. Failures of the destination (a full disk) raise
:class:`~soko.errors.StoreError`; failures reading the source are raised as they are. Each
chunk copied is counted (:func:`soko.core.metering.count`) for a progress bar.

This module imports only the standard library, :mod:`soko.core`, :mod:`soko.errors` and
:mod:`.direct`.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import io
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import BinaryIO

from soko.core import metering
from soko.core.digests import Hasher
from soko.errors import StoreError
from soko.storage.direct import DirectWriter, aligned_buffer

CHUNK = 8 * 1024 * 1024
"""Bytes per copy step, and the size of each reused buffer."""

PIPELINE_MIN = 4 * CHUNK
"""From this size on, a file is worth a helper thread for hashing."""

KERNEL_COPY = hasattr(os, "copy_file_range") and hasattr(os, "preadv")
"""Whether :func:`copy_file` tries the kernel's copy first (tests turn it off)."""

# copy_file_range's answers for "not here": another file system, an unsupported file
# system or file type, an old kernel. The buffered copy then does the work.
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EPERM}
)
# Errors that are the destination's, whichever side a kernel copy hit them on.
_STORE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

_buffers = threading.local()


def copy_buffer(index: int) -> memoryview:
    """This thread's reused buffer *index* (0 or 1), so copies allocate nothing per file;
    the second one exists only in threads that ran a pipelined copy."""
    views: list[memoryview] | None = getattr(_buffers, "views", None)
    if views is None:
        views = []
        _buffers.views = views
    while len(views) <= index:
        views.append(memoryview(bytearray(CHUNK)))
    return views[index]


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of *data* to the store's file *fd*; a failure is the store's."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise StoreError(f"Cannot write to the store: {exc}") from exc


_IOV_MAX = 1024  # buffers per writev, Linux's limit


def write_parts(fd: int, parts: Sequence[bytes]) -> None:
    """Write *parts* back to back with ``writev``: no joined copy of them. Errors are
    the caller's to name (OSError as raised)."""
    if not hasattr(os, "writev"):
        view = memoryview(b"".join(parts))
        while view:
            view = view[os.write(fd, view) :]
        return
    for start in range(0, len(parts), _IOV_MAX):
        group = parts[start : start + _IOV_MAX]
        written = os.writev(fd, group)
        if written == sum(map(len, group)):
            continue
        # A short write: drop what went out and go on from the middle of a part.
        rest = [memoryview(p) for p in group if p]
        while rest:
            while rest and written >= len(rest[0]):
                written -= len(rest[0])
                rest.pop(0)
            if rest and written:
                rest[0] = rest[0][written:]
            if rest:
                written = os.writev(fd, rest)


class _Hashing:
    """Runs hash jobs in order: on a helper thread when pipelined, else at once.

    At most one job is outstanding; :meth:`submit` waits for it before handing over the
    next, so chunks reach the hasher in order and a buffer is reused only once its job
    has finished.
    """

    def __init__(self, *, pipelined: bool) -> None:
        self._helper = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-hash") if pipelined else None
        )
        self._pending: Future[None] | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        if self._helper is None:
            job()
        else:
            self._pending = self._helper.submit(job)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Hashing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                self.wait()
        finally:
            # The helper may still use this thread's buffer: let it finish before return.
            if self._helper is not None:
                self._helper.shutdown(wait=True)


def copy_file(
    source: int,
    fd: int,
    hasher: Hasher,
    *,
    pipelined: bool = False,
    head: bytes = b"",
    write_back: bool = False,
) -> int:
    """Copy the rest of the regular file *source* into *fd* (open for reading and
    writing), after *head* (bytes of the source already read), hashing what *fd* received.
    Returns the number of bytes copied, *head* included.

    With *write_back*, the disk starts writing each chunk as soon as it is copied
    (``sync_file_range``), so that the fsync before a commit finds little left to do:
    a large file costs about max(copy, disk write) instead of their sum."""
    size = len(head)
    if head:
        hasher.update(head)
        write_all(fd, head)
    kernel = KERNEL_COPY
    turn = 0
    reader = io.FileIO(source, "rb", closefd=False)
    with _Hashing(pipelined=pipelined) as hashing:
        while True:
            if kernel:
                count = _kernel_copy(source, fd)
                if count:
                    view = copy_buffer(1 if pipelined else 0)
                    hashing.submit(_hash_back(fd, size, count, hasher, view))
                    if write_back:
                        start_write_back(fd, size, count)
                    size += count
                    metering.count(count)
                    continue
                # None: the kernel cannot copy here; 0: the end, or a file system that
                # reports none (procfs and the like). A plain read decides either way.
                # Waiting here leaves no kernel job holding a buffer the reads will fill.
                hashing.wait()
                kernel = False
            view = copy_buffer(turn)
            count = reader.readinto(view) or 0
            if not count:
                return size
            part = view[:count]
            hashing.submit(_hash_part(hasher, part))
            write_all(fd, part)
            if write_back:
                start_write_back(fd, size, count)
            size += count
            metering.count(count)
            if pipelined:
                turn ^= 1


def copy_stream(
    stream: BinaryIO, fd: int, hasher: Hasher, *, write_back: bool = False, direct: bool = False
) -> int:
    """Copy what *stream* yields until EOF into *fd*, hashing it; returns the size.

    Only ``read`` is required of *stream*; ``readinto`` is used when it has one.
    *write_back* as for :func:`copy_file`: a large upload then costs about max(transfer,
    disk write) instead of their sum. With *direct* (and ``readinto``), the stream fills a
    page-aligned buffer whose full chunks go to the disk past the page cache (see
    :mod:`.direct`): for a large upload that nobody reads back at once.
    """
    size = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            write_all(fd, chunk)
            if write_back:
                start_write_back(fd, size, len(chunk))
            size += len(chunk)
            metering.count(len(chunk))
        return size
    if direct:
        return _copy_stream_direct(readinto, fd, hasher)
    view = copy_buffer(0)
    while count := readinto(view):
        part = view[:count]
        hasher.update(part)
        write_all(fd, part)
        if write_back:
            start_write_back(fd, size, count)
        size += count
        metering.count(count)
    return size


def _copy_stream_direct(readinto: Callable[[memoryview], int], fd: int, hasher: Hasher) -> int:
    """copy_stream past the page cache. A direct write returns once the disk has the bytes,
    so from the second full buffer on a helper thread writes each one while the stream
    fills the other: a large upload costs about max(transfer, disk write)."""
    views = (aligned_buffer(CHUNK, 0), aligned_buffer(CHUNK, 1))
    writer = DirectWriter(fd)
    size = turn = 0
    helper: ThreadPoolExecutor | None = None
    pending: Future[None] | None = None
    try:
        while count := readinto(views[turn]):
            part = views[turn][:count]
            hasher.update(part)
            if pending is not None:
                pending.result()  # the other buffer is free again
            if helper is None and count < CHUNK:
                writer.write(size, part)  # all of a small stream: no thread for it
                pending = None
            else:
                if helper is None:
                    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-write")
                pending = helper.submit(writer.write, size, part)
            size += count
            metering.count(count)
            turn ^= 1
        if pending is not None:
            pending.result()
    finally:
        if helper is not None:
            # A write still running uses a buffer of this thread's: it ends before return.
            helper.shutdown(wait=True)
    return size


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Linux), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    result: Callable[[int, int, int, int], int] = function
    return result


def start_write_back(fd: int, offset: int, count: int) -> None:
    """Ask the kernel to start writing these bytes to disk, without waiting. Only a hint:
    durability still comes from the fsync before a commit, so failures are ignored."""
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, count, _SYNC_FILE_RANGE_WRITE)


def _kernel_copy(source: int, fd: int) -> int | None:
    """Up to one chunk copied by the kernel; None when it cannot copy these files."""
    try:
        return os.copy_file_range(source, fd, CHUNK)
    except OSError as exc:
        if exc.errno in _NO_KERNEL_COPY:
            return None
        if exc.errno in _STORE_ERRNOS:
            raise StoreError(f"Cannot write to the store: {exc}") from exc
        raise


def _hash_part(hasher: Hasher, part: memoryview) -> Callable[[], None]:
    return lambda: hasher.update(part)


def _hash_back(
    fd: int, offset: int, count: int, hasher: Hasher, view: memoryview
) -> Callable[[], None]:
    """A job that reads *count* bytes at *offset* back from *fd* and hashes them."""

    def job() -> None:
        done = 0
        while done < count:
            got = os.preadv(fd, [view[done:count]], offset + done)
            if not got:
                raise StoreError("A temp file of the store is shorter than what was copied.")
            done += got
        hasher.update(view[:count])

    return job
