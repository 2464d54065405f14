"""Writing a stream of small blobs as packs, on a helper thread, while the caller goes on.

The caller (hashing files, or receiving a download) adds verified blobs one by one; a full
pack goes to :meth:`soko.storage.packs.Packs.write` on a helper thread while the next one
fills, so writing overlaps the caller's own work.

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.storage.packs`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from soko.core.digests import Digest
from soko.storage.packs import PACK_TARGET, Packs


class PackWriter:
    """Collects verified blobs and writes them as packs of about *target* bytes each.

    A full pack is written (and fsynced) on a helper thread while the caller collects the
    next one; at most one pack is in flight, which bounds the memory held. :meth:`close`
    writes the rest and waits: the blobs are durable when it returns.
    """

    def __init__(
        self,
        packs: Packs,
        *,
        target: int = PACK_TARGET,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self._packs = packs
        self._target = target
        # Called on the caller's thread with each pack's size, once the pack is written.
        self._on_written = on_written
        self._in_flight_size = 0
        self._pending: dict[Digest, bytes] = {}
        self._size = 0
        self._written: set[Digest] = set()
        self._writer: ThreadPoolExecutor | None = None
        self._in_flight: Future[str] | None = None

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if error is None:
            self.close()
            return
        try:
            self._wait(reraise=False)  # the caller's error wins
        finally:
            self._shutdown()

    def __contains__(self, digest: Digest) -> bool:
        return digest in self._pending or digest in self._written

    def add(self, digest: Digest, data: bytes) -> None:
        """Add a blob the caller verified against *digest*."""
        if digest in self._pending or digest in self._written:
            return  # a download names the same content under several paths
        self._pending[digest] = data
        self._size += len(data)
        if self._size >= self._target:
            self._send()

    def close(self) -> None:
        try:
            self._send()
            self._wait(reraise=True)
        finally:
            self._shutdown()

    def _send(self) -> None:
        if not self._pending:
            return
        self._wait(reraise=True)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-pack")
        blobs = list(self._pending.items())
        self._in_flight = self._writer.submit(self._packs.write, blobs, verified=True)
        self._written.update(self._pending)
        self._in_flight_size, self._pending, self._size = self._size, {}, 0

    def _wait(self, *, reraise: bool) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        try:
            in_flight.result()
        except BaseException:
            if reraise:
                raise
            return
        if reraise and self._on_written is not None:  # not while the caller's error unwinds
            self._on_written(self._in_flight_size)

    def _shutdown(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
