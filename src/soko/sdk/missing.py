"""The blobs a log must still store, held as packed raw digests.

A log through a server may find a million blobs missing. As a ``set`` of
:class:`~soko.core.digests.Digest` that costs about 140 bytes a blob (an object, its raw
bytes and a slot), held from the question until the upload has taken them, at the log's
peak. :class:`MissingDigests` keeps the 16 raw bytes of each in one open-addressed table
instead (about 40 bytes a blob). The price is CPU: a lookup is a few Python operations
(about 0.7 µs, against 0.2 for a set's), a few seconds for a million files.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, MutableSet

from soko.client.backend import BlobTransfer
from soko.core.digests import DIGEST_BATCH, Algorithm, BatchedDigests, Digest, digest_batches
from soko.core.entries import RAW

_ASK_BATCHES = max(1, 65536 // DIGEST_BATCH)
"""Batches of digests asked about at a time: the backend's answer, a set of objects, is
about 65,536 digests' at most."""

_FIRST = 1024
"""The digests a table is first made for; it doubles as it fills (a re-log finds none)."""

_EMPTY, _PRESENT, _TAKEN = 0, 1, 2


class _Table:
    """Raw digests of one algorithm in linear-probed slots, at most half of them used.

    The digests are hashes already: their first bytes place them. A digest taken out
    leaves a marker (so that those placed after it are still found) until the table is
    made again."""

    __slots__ = ("count", "keys", "mask", "states", "used")

    def __init__(self, capacity: int) -> None:
        size = 8
        while size < 2 * capacity:
            size *= 2
        self.mask = size - 1
        self.keys = bytearray(size * RAW)
        self.states = bytearray(size)
        self.count = 0
        self.used = 0  # present or taken: what a lookup may have to step over

    def find(self, raw: bytes) -> tuple[int, bool]:
        """The slot holding *raw*, or the empty slot where it would go."""
        mask, keys, states = self.mask, self.keys, self.states
        slot = int.from_bytes(raw, "little") & mask
        while state := states[slot]:
            if state == _PRESENT and keys[slot * RAW : slot * RAW + RAW] == raw:
                return slot, True
            slot = (slot + 1) & mask
        return slot, False

    def add(self, raw: bytes) -> bool:
        slot, found = self.find(raw)
        if found:
            return False
        self.keys[slot * RAW : slot * RAW + RAW] = raw
        self.states[slot] = _PRESENT
        self.count += 1
        self.used += 1
        return True

    def discard(self, raw: bytes) -> None:
        slot, found = self.find(raw)
        if found:
            self.states[slot] = _TAKEN
            self.count -= 1

    def raws(self) -> Iterator[bytes]:
        keys = self.keys
        for slot in itertools.compress(itertools.count(), (s == _PRESENT for s in self.states)):
            yield bytes(keys[slot * RAW : slot * RAW + RAW])


class MissingDigests(MutableSet[Digest]):
    """A mutable set of digests, packed (see the module)."""

    def __init__(self, digests: Iterable[Digest] = ()) -> None:
        self._tables: dict[Algorithm, _Table] = {}
        for digest in digests:
            self.add(digest)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, Digest):
            return False
        table = self._tables.get(item.algorithm)
        return table is not None and table.find(item.raw)[1]

    def __iter__(self) -> Iterator[Digest]:
        for algorithm, table in list(self._tables.items()):
            for raw in table.raws():
                yield Digest(algorithm, raw)

    def __len__(self) -> int:
        return sum(table.count for table in self._tables.values())

    def add(self, value: Digest) -> None:
        table = self._tables.get(value.algorithm)
        if table is None:
            table = self._tables[value.algorithm] = _Table(_FIRST)
        elif 2 * (table.used + 1) > table.mask + 1:
            table = self._remade(value.algorithm, 2 * (table.count + 1))
        table.add(value.raw)

    def discard(self, value: Digest) -> None:
        table = self._tables.get(value.algorithm)
        if table is not None:
            table.discard(value.raw)

    def _remade(self, algorithm: Algorithm, capacity: int) -> _Table:
        table = _Table(capacity)
        for raw in self._tables[algorithm].raws():
            table.add(raw)
        self._tables[algorithm] = table
        return table

    def compact(self) -> None:
        """Make each table again for what it holds now: after most digests were taken
        out, the memory of the slots they had is given back."""
        for algorithm, table in list(self._tables.items()):
            if table.count == 0:
                del self._tables[algorithm]
            else:
                self._remade(algorithm, table.count)

    def copy(self) -> MissingDigests:
        copied = MissingDigests()
        for algorithm, table in self._tables.items():
            twin = _Table(0)
            twin.mask, twin.count, twin.used = table.mask, table.count, table.used
            twin.keys, twin.states = bytearray(table.keys), bytearray(table.states)
            copied._tables[algorithm] = twin
        return copied


def ask_missing(
    backend: BlobTransfer,
    digests: Iterable[Digest],
    *,
    entity: str,
    project: str,
    name: str,
) -> MissingDigests:
    """Which of *digests* the backend lacks, asked a few batches at a time, so that its
    answer (a set of objects) is never held for all of them at once. The batches are
    passed on as they are (a manifest's columns): a store that reads them makes no
    object a digest."""
    missing = MissingDigests()
    batches = digest_batches(digests)
    while group := list(itertools.islice(batches, _ASK_BATCHES)):
        part = BatchedDigests(functools.partial(iter, group))
        for digest in backend.missing_blobs(part, entity=entity, project=project, name=name):
            missing.add(digest)
        del part, group
    return missing
