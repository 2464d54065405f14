"""Writing a stream of small blobs as packs, on a helper thread, while the caller goes on.

The caller (hashing files, or receiving a download) adds verified blobs one by one; a full
pack goes to :meth:`soko.storage.packs.Packs.write` on a helper thread while the next one
fills, so writing overlaps the caller's own work.

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.storage.packs`.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from soko.core.digests import Algorithm, Digest
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


GROUP_ROWS = 32768
"""Blobs whose packs :class:`StagedPacks` publishes in one index commit. Each commit
rewrites every page of the index its rows land on, and random digests land all over it:
a million blobs in commits of 8,192 cost about 12 CPU seconds of SQLite here, in commits
of 32,768 about 6. What a group holds until then is about 40 bytes a blob."""
GROUP_BYTES = 512 * 1024 * 1024
"""Staged pack bytes that are published at the latest, however few the blobs."""


class StagedPacks:
    """Packs of blobs the caller hashed, one pack per :meth:`add`, written and fsynced to
    a temp file at once and published (renamed into ``packs/`` with their index rows, in
    one transaction, see :meth:`.packs.Packs.publish`) a group at a time.

    Until a group is published its blobs cannot be read: :meth:`close` publishes the rest,
    and the blobs are durable and readable when it returns. :meth:`discard` removes what
    was not published. One thread at a time.
    """

    def __init__(
        self, packs: Packs, *, group_rows: int = GROUP_ROWS, group_bytes: int = GROUP_BYTES
    ) -> None:
        self._packs = packs
        self._group_rows = group_rows
        self._group_bytes = group_bytes
        self._staged: list[tuple[str, str]] = []
        self._reset()

    def _reset(self) -> None:
        # The group's rows, packed: a million files must not hold a tuple per blob.
        self._keys: list[str] = []  # of each staged pack
        self._raws = bytearray()
        self._places = array("q")  # per blob: its pack's place in _staged, offset, size
        self._bytes = 0

    def add(self, algorithm: Algorithm, raws: Sequence[bytes], datas: Sequence[bytes]) -> None:
        """Stage one pack of *datas*, each the bytes whose raw digest (of *algorithm*)
        the caller computed from these very bytes: they are not hashed again. A blob
        given twice is packed once (a copy staged by an earlier call of the group is
        dead space, its row ignored)."""
        pack = len(self._staged)
        parts = []
        seen: set[bytes] = set()
        places = self._places
        offset = 0
        for raw, data in zip(raws, datas, strict=True):
            if raw in seen:
                continue
            seen.add(raw)
            parts.append(data)
            self._raws += raw
            places.extend((pack, offset, len(data)))
            offset += len(data)
        if not parts:
            return
        self._staged.append((self._packs.stage(parts), os.urandom(12).hex()))
        self._keys.append(algorithm.key)
        self._bytes += offset
        if len(places) // 3 >= self._group_rows or self._bytes >= self._group_bytes:
            self.publish()

    def publish(self) -> None:
        """Publish every pack staged so far."""
        staged, keys, raws, places = self._staged, self._keys, self._raws, self._places
        self._staged = []
        self._reset()
        if not staged:
            return
        width = len(raws) // (len(places) // 3)
        by_digest = sorted(range(len(places) // 3), key=lambda i: raws[i * width : (i + 1) * width])
        self._packs.publish(
            staged,
            (
                (
                    keys[places[3 * i]],
                    bytes(raws[i * width : (i + 1) * width]),
                    staged[places[3 * i]][1],
                    places[3 * i + 1],
                    places[3 * i + 2],
                )
                for i in by_digest
            ),
        )

    close = publish

    def discard(self) -> None:
        """Remove the packs staged and not published."""
        for temp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        self._staged = []
        self._reset()
