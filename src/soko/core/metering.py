"""Counting bytes as they stream, so that a progress bar moves inside one large file.

A copy, a hash or a download reads a large file in chunks (8 MiB for files, what the
network gives for downloads) several layers below the code that shows progress. Rather
than thread a callback through every storage and copy function, the code that reports
progress wraps one unit of work in :func:`metered` on the thread that runs it, and the
streaming code calls :func:`count` after each chunk. :func:`count` costs one thread-local
lookup when nothing is metered (~50 ns against the ~2 ms an 8 MiB chunk takes to copy),
so the streaming code calls it unconditionally.

The work's own report at its end then subtracts what was already counted
(:attr:`Meter.counted`), so that each byte is reported once whichever layer counted it.
A meter belongs to one thread: work handed to a helper thread is counted by the thread
that hands it over (the copy loop, not the hashing helper).

This module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

_T = TypeVar("_T")

_local = threading.local()


FLUSH_BYTES = 1024 * 1024
"""A meter hands bytes on once this many have gathered (and when its block ends): a
download arrives in network reads of 64 KiB or less, and one call per megabyte keeps the
bar's cost per GiB to about a thousand calls."""


class Meter:
    """Bytes counted on this thread while a :func:`metered` block ran."""

    __slots__ = ("_pending", "_sink", "counted")

    def __init__(self, sink: Callable[[int], None]) -> None:
        self.counted = 0
        self._pending = 0
        self._sink = sink

    def add(self, nbytes: int) -> None:
        self.counted += nbytes
        self._pending += nbytes
        if self._pending >= FLUSH_BYTES or nbytes < 0:
            self.flush()

    def flush(self) -> None:
        """Hand the bytes gathered so far on to the sink."""
        if self._pending:
            pending, self._pending = self._pending, 0
            self._sink(pending)


def count(nbytes: int) -> None:
    """*nbytes* more bytes streamed on this thread (reported if a meter is on)."""
    meter: Meter | None = getattr(_local, "meter", None)
    if meter is not None:
        meter.add(nbytes)


@contextlib.contextmanager
def metered(sink: Callable[[int], None] | None) -> Iterator[Meter]:
    """Report to *sink* every :func:`count` made on this thread inside the block; the
    yielded :class:`Meter` says how many bytes that was. With *sink* None nothing is
    reported, but the bytes are still counted, so the caller's arithmetic stays the same."""
    meter = Meter(sink if sink is not None else _ignore)
    outer = getattr(_local, "meter", None)
    _local.meter = meter
    try:
        yield meter
    finally:
        _local.meter = outer
        meter.flush()


def retracting(attempt: Callable[[], _T]) -> Callable[[], _T]:
    """*attempt*, for a retry loop: the bytes a failed try counted are taken back from the
    meter on this thread, since the next try streams them again."""

    def run() -> _T:
        meter: Meter | None = getattr(_local, "meter", None)
        before = meter.counted if meter is not None else 0
        try:
            return attempt()
        except BaseException:
            if meter is not None and meter.counted != before:
                meter.add(before - meter.counted)
            raise

    return run


class CountingReader:
    """A binary file read by someone else (an HTTP client sending it), each read counted.
    Offers what such a reader asks of a file: ``read``, iteration, ``fileno`` (its size),
    ``tell`` and ``seek``."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        count(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(1024 * 1024):
            yield data

    def fileno(self) -> int:
        return self._stream.fileno()

    def tell(self) -> int:
        return self._stream.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)


def _ignore(nbytes: int) -> None:
    del nbytes
