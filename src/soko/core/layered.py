"""A draft's manifest kept as a stored version (its base, by reference) and a change.

``new_draft()`` of a large version does not take the version's entries: the draft keeps the
base's manifest blob, read a slice at a time through its index when a path is looked up,
and the entries added or replaced and the paths removed. :class:`LayeredManifest` is that
draft built: it is a :class:`~soko.core.manifest.Manifest` (its ``entries`` a mapping that
loads the whole when first asked), whose digest, size, count and bytes come from
:func:`soko.core.splice.splice`, in proportion to the change, and whose
:meth:`~LayeredManifest.blob_digests` are the change's only: the base's blobs are stored,
named by a committed version (the commit checks that it still is, see
:mod:`soko.service.layered`).

The base is reached through :class:`ManifestBase`, which the store that holds it gives.
Pure: no I/O of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, Protocol

from soko.core.digests import Algorithm, BatchedDigests, Digest, digest_batches
from soko.core.entries import Entry, EntryTable
from soko.core.manifest import DEFAULT_POLICY_CONFIG, Manifest, ManifestBuilder
from soko.core.manifest_index import ManifestIndex, slice_values
from soko.core.splice import Spliced, splice


class ManifestBase(Protocol):
    """A stored manifest a draft is made from (given by the store that holds it)."""

    @property
    def key(self) -> str:
        """Its manifest blob (``xxh128:<hex>``)."""
        ...

    @property
    def index(self) -> ManifestIndex: ...

    def slice_bytes(self, number: int) -> bytes:
        """The bytes of slice *number*, checked against the index."""
        ...

    def raw(self) -> bytes:
        """The whole blob, checked against its name."""
        ...

    def whole(self) -> Manifest:
        """The whole manifest, loaded."""
        ...


_KEPT_SLICES = 8


class BaseLookup:
    """Entries of a base looked up by path, a slice read (and kept, the last few) at a
    time: the paths a draft adds mostly fall in one or two slices."""

    def __init__(self, base: ManifestBase) -> None:
        self.base = base
        self._slices: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def _values(self, number: int) -> dict[str, Any]:
        kept = self._slices.get(number)
        if kept is None:
            kept = self._slices[number] = slice_values(self.base.slice_bytes(number))
            while len(self._slices) > _KEPT_SLICES:
                self._slices.popitem(last=False)
        else:
            self._slices.move_to_end(number)
        return kept

    def value(self, path: str) -> dict[str, Any] | None:
        """W&B's JSON object of the entry at *path*, None when the base has none."""
        number = self.base.index.slice_of(path)
        if number is None:
            return None
        found = self._values(number).get(path)
        return found if isinstance(found, dict) else None

    def digest(self, path: str) -> str | None:
        value = self.value(path)
        return None if value is None else str(value.get("digest"))

    def entry(self, path: str) -> Entry | None:
        value = self.value(path)
        return None if value is None else Entry.from_json(path, value)

    def under(self, prefix: str) -> Iterator[Entry]:
        """The entries whose path starts with *prefix*, in path order."""
        for number in self.base.index.prefix_slices(prefix):
            for path, value in self._values(number).items():
                if path.startswith(prefix):
                    yield Entry.from_json(path, value)


class LayeredManifest(Manifest):
    """The base's entries, less *removed*, with *changes* put in (see the module)."""

    base: ManifestBase
    changes: EntryTable
    removed: frozenset[str]

    def __init__(
        self,
        base: ManifestBase,
        changes: EntryTable,
        removed: frozenset[str],
        algorithm: Algorithm,
    ) -> None:
        # Not the dataclass's __init__: the entries are a view that loads when asked.
        set_field = object.__setattr__
        set_field(self, "entries", _WholeEntries(self))
        set_field(self, "algorithm", algorithm)
        set_field(self, "storage_policy_config", DEFAULT_POLICY_CONFIG)
        set_field(self, "base", base)
        set_field(self, "changes", changes)
        set_field(self, "removed", removed)

    @cached_property
    def _spliced(self) -> Spliced:
        return splice(self.base.raw(), self.base.index, self.changes, self.removed, self.algorithm)

    def spliced(self) -> Spliced:
        """The new manifest's blob, digest, count, size and index (made once)."""
        return self._spliced

    def release_bytes(self) -> None:
        """Let the new blob's bytes go once stored (asked again, they are made again)."""
        spliced = self.__dict__.pop("_spliced", None)
        if spliced is not None:
            self.__dict__["_digest"] = spliced.digest
            self.__dict__["_count"] = spliced.count
            self.__dict__["_size"] = spliced.size

    @cached_property
    def _digest(self) -> str:
        return self._spliced.digest

    @cached_property
    def _count(self) -> int:
        return self._spliced.count

    @cached_property
    def _size(self) -> int:
        return self._spliced.size

    def __len__(self) -> int:
        return self._count

    @property
    def size(self) -> int:
        return self._size

    def to_bytes(self) -> bytes:
        return self._spliced.raw

    @property
    def table(self) -> EntryTable | None:
        return self.whole_table()

    def new_paths(self) -> Iterable[str]:
        """The paths the change adds or replaces: the base's were checked when committed."""
        return self.changes.keys()

    def blob_digests(self) -> frozenset[Digest]:
        """The blobs of the change only: the base's are stored (a committed version names
        them), so a log asks for these alone."""
        return self._added_blobs

    def stored_blobs(self) -> BatchedDigests:
        """The change's blobs, as :meth:`blob_digests` (the columns would be the whole)."""
        return BatchedDigests(lambda: digest_batches(self._added_blobs))

    def blob_sizes(self) -> Mapping[Digest, int | None]:
        return self._added_sizes

    @cached_property
    def _added_sizes(self) -> dict[Digest, int | None]:
        return dict(Manifest(self.changes, self.algorithm).blob_sizes())

    @cached_property
    def _added_blobs(self) -> frozenset[Digest]:
        return frozenset(self._added_sizes)

    def whole(self) -> Manifest:
        """The same manifest with every entry loaded (the base read whole)."""
        return Manifest(self.whole_table(), self.algorithm)

    def whole_table(self) -> EntryTable:
        return self._whole

    @cached_property
    def _whole(self) -> EntryTable:
        builder = ManifestBuilder(self.algorithm, self.base.whole())
        for path in self.removed:
            builder.remove(path)
        builder.add_all(self.changes.values(), overwrite=True)
        table = builder.build().table
        assert table is not None
        return table


class _WholeEntries(Mapping[str, Entry]):
    """A layered manifest's entries: the whole, loaded when first asked for."""

    def __init__(self, manifest: LayeredManifest) -> None:
        self._manifest = manifest

    def __getitem__(self, path: str) -> Entry:
        return self._manifest.whole_table()[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._manifest.whole_table())

    def __len__(self) -> int:
        return len(self._manifest)
