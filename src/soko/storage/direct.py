"""Writing a large stream to a store file without the page cache (``O_DIRECT``).

A buffered ``write`` copies every byte into page-cache pages the kernel allocates for the
file. On a virtual machine whose free memory is handed back to its host (free page
reporting), each such page is first touched through a host fault: writing 1 GiB then
costs 2 CPU-seconds of system time on this project's machines, where a direct write of
the same bytes, handed to the disk from a buffer the process reuses, costs 0.02. A server
receiving a large upload is not going to read it back (the digest was taken on the way
in), so the page cache gains nothing from holding it either.

A direct write needs the buffer's address, its length and the file offset all aligned
(:data:`ALIGN`); :func:`aligned_buffer` gives each thread a reused page-aligned buffer.
:class:`DirectWriter` writes aligned pieces directly and anything else (the tail of a
stream, a short read) through the page cache, and falls back to the page cache for good
where the file system or the platform takes no direct writes. Durability is unchanged:
the ``fsync`` before a commit still flushes the file and the disk's own cache.

This module imports only the standard library and :mod:`soko.errors`.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import threading

from soko.errors import StoreError

try:
    import fcntl
except ImportError:  # Windows: no direct writes, the page cache does it all
    fcntl = None  # type: ignore[assignment]

ALIGN = 4096
"""What a direct write's address, length and offset must be multiples of (the logical block
size of every common disk is 512 or 4096)."""

_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_buffers = threading.local()


def aligned_buffer(size: int, index: int = 0) -> memoryview:
    """This thread's reused page-aligned buffer *index* of *size* bytes (anonymous memory:
    its pages stay the process's once touched, unlike a heap that grows and shrinks)."""
    views: dict[tuple[int, int], memoryview] | None = getattr(_buffers, "views", None)
    if views is None:
        views = _buffers.views = {}
    view = views.get((size, index))
    if view is None:
        view = views[size, index] = memoryview(mmap.mmap(-1, size))
    return view


class DirectWriter:
    """Writes pieces of a file at their offsets, aligned ones past the page cache."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._usable = bool(_O_DIRECT) and fcntl is not None
        self._on = False

    def write(self, offset: int, data: memoryview) -> None:
        """Write *data* at *offset*: directly when both are aligned (and *data* lies in an
        :func:`aligned_buffer`), else through the page cache."""
        aligned = self._usable and not (offset % ALIGN or len(data) % ALIGN)
        if aligned != self._on and not self._switch(aligned):
            aligned = False
        try:
            if aligned:
                try:
                    _write_at(self._fd, data, offset)
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    # The file system takes no direct writes (or not this alignment): the
                    # page cache writes this piece and every later one.
                    self._switch(False)
                    self._usable = False
            _write_at(self._fd, data, offset)
        except OSError as exc:
            raise StoreError(f"Cannot write to the store: {exc}") from exc

    def _switch(self, on: bool) -> bool:
        """Turn direct writes on or off for the file; False when that cannot be done."""
        if not _set_flag(self._fd, on):
            self._usable = False
            return False
        self._on = on
        return True


def _write_at(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


class DirectReader:
    """Reads a file from its start, a chunk at a time past the page cache where the file
    system allows (else through it), for a server sending a large blob: reading it into
    the page cache would cost as much as writing it there (see above), for bytes that are
    not read again soon. :meth:`read_pieces` returns each chunk as pieces of *piece*
    bytes, copies the caller may keep (the buffer is this reader's, reused);
    :meth:`read_view` the buffer itself."""

    def __init__(self, path: str, *, chunk: int, piece: int, buffers: int = 1) -> None:
        self._file = io.FileIO(path, "rb")
        self._views = [memoryview(mmap.mmap(-1, chunk)) for _ in range(buffers)]
        self._view = self._views[0]
        self._piece = piece
        self._direct = _set_flag(self._file.fileno(), True)

    def read_pieces(self) -> list[bytes]:
        """The next chunk of the file, as pieces; an empty list at its end."""
        count = self._read()
        view = self._view
        return [bytes(view[i : min(i + self._piece, count)]) for i in range(0, count, self._piece)]

    def read_view(self) -> memoryview:
        """The next chunk of the file in one of this reader's *buffers*, in turn: valid
        until as many more reads; empty at its end. For a caller that hands the bytes on
        at once (to a socket), while the next chunk is read into another buffer."""
        view = self._view = self._views[0]
        self._views.append(self._views.pop(0))
        return view[: self._read()]

    def _read(self) -> int:
        if self._direct:
            try:
                return self._file.readinto(self._view) or 0
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # No direct reads here, or an unaligned offset after a short read: the
                # page cache reads the rest.
                self._direct = not _set_flag(self._file.fileno(), False)
        return self._file.readinto(self._view) or 0

    def close(self) -> None:
        self._file.close()
        for view in self._views:
            view.release()

    def __enter__(self) -> DirectReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _set_flag(fd: int, on: bool) -> bool:
    """Turn direct I/O on or off for *fd*; False when that cannot be done."""
    if fcntl is None or not _O_DIRECT:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT if on else flags & ~_O_DIRECT)
    except OSError:
        return False
    return True
