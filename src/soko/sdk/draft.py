"""The draft half of an artifact: the entries being assembled before a log.

:class:`Draft` owns the manifest builder, remembers which local file each stored entry came
from, and applies every ``add_*``/``remove`` all-or-nothing. It is the one place that
knows where the bytes of its blobs are (:meth:`Draft.sources`): kept from hashing, in a
copy staged before the log returned, or in the file that was added. A change to a file
after it was hashed is detected when it is read again, by the store's check.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, MutableSet, Sequence
from types import MappingProxyType
from typing import NamedTuple

from soko.client.hashing import HashedFile
from soko.client.sources import BlobSource
from soko.core.digests import Algorithm, Digest
from soko.core.entries import RAW, b64_of
from soko.core.layered import BaseLookup, LayeredManifest, ManifestBase
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest, ManifestBuilder
from soko.sdk.missing import MissingDigests


class DraftFile(NamedTuple):
    """The local file a stored entry was added from."""

    local_path: str
    digest: Digest
    size: int
    mutable: bool
    """``policy="mutable"``: the bytes are taken before the log returns (staged)."""


class _Origin(NamedTuple):
    """Where stored entries came from: one local file (``prefix`` None), or a folder whose
    files are at ``local`` + their artifact path less ``prefix`` (``local`` ends with the
    separator). A million files of one folder share one origin, not a path string each."""

    local: str
    prefix: str | None
    mutable: bool
    staged: tuple[str, str] | None = None
    """The (entity, project) a server confirmed every file of the folder stored for, as
    ``add_dir`` read it (see :mod:`soko.client.http_capture`)."""

    def local_path(self, path: str) -> str:
        if self.prefix is None:
            return self.local
        relative = path[len(self.prefix) :]
        return self.local + (relative if os.sep == "/" else relative.replace("/", os.sep))


HELD_BYTES_MAX = 64 * 1024 * 1024
"""How many bytes of small files a draft keeps from hashing until it is logged.

Reading 20,000 small files a second time costs more than storing them, so a draft keeps
what it read (``cp`` holds no more than that in the page cache either); files beyond the
budget are read again when logged, as large files always are."""


BASE_BY_REFERENCE_AT = 50_000
"""A version of this many entries or more (it has a manifest index from its commit) is the
base of ``new_draft()`` by reference, on a backend that can: the draft and its log cost in
proportion to the change. A smaller one is taken whole, which costs less than reading it
by slices."""


class Draft:
    def __init__(
        self,
        algorithm: Algorithm,
        entries: Iterable[Entry] = (),
        *,
        base: ManifestBase | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.builder = ManifestBuilder(algorithm, entries)
        """The entries added; with a *base*, those over it (see :mod:`soko.core.layered`)."""
        self.base = None if base is None else BaseLookup(base)
        self._removed: set[str] = set()
        """Paths of the base removed (a path added again is the builder's)."""
        # One read-only mapping shared by every file entry of the draft.
        self._extra: Mapping[str, str] = MappingProxyType(
            {ALG_EXTRA_KEY: algorithm.value} if algorithm is Algorithm.XXH128 else {}
        )
        # Origin 0 is none: an entry of the builder without a local file.
        self._origins: list[_Origin | None] = [None]
        self._folders: list[int] = []
        self._file_names: dict[str, str] = {}
        self.files: Mapping[str, DraftFile] = _DraftFiles(self)
        """The local file each stored entry was added from, by artifact path."""
        self.held: dict[Digest, bytes] = {}
        """Bytes of small files kept from hashing, so that the log stores them without
        reading the files again (up to :data:`HELD_BYTES_MAX`)."""
        self._held_bytes = 0
        self._copies: dict[Digest, str] = {}
        self._tmp_dir: tempfile.TemporaryDirectory[str] | None = None

    def held_budget(self) -> int:
        """How many more bytes of small files the draft may keep from hashing."""
        return max(0, HELD_BYTES_MAX - self._held_bytes)

    def release_held(self) -> None:
        """Drop the kept bytes: they are stored now (a retry reads the files)."""
        self.held.clear()
        self._held_bytes = 0

    def file(self, path: str) -> DraftFile | None:
        """The local file the stored entry at *path* was added from, if any."""
        origin = self._origins[self.builder.origin(path)]
        if origin is None:
            return None
        entry = self.builder.get(path)
        assert entry is not None
        return DraftFile(
            origin.local_path(path), entry.blob_digest(), entry.size or 0, origin.mutable
        )

    def _files(self) -> Iterator[DraftFile]:
        origins = self._origins
        for path, number, digest, size in self.builder.origins():
            origin = origins[number]
            assert origin is not None
            yield DraftFile(origin.local_path(path), digest, size, origin.mutable)

    def added_local_path_name(self, local_path: str) -> str | None:
        """The artifact path the local file *local_path* was added as (the last time)."""
        found = self._file_names.get(local_path)
        if found is not None:
            return found
        for number in reversed(self._folders):
            origin = self._origins[number]
            assert origin is not None and origin.prefix is not None
            if local_path.startswith(origin.local):
                relative = local_path[len(origin.local) :]
                path = origin.prefix + (
                    relative if os.sep == "/" else relative.replace(os.sep, "/")
                )
                if self.builder.origin(path) == number:
                    return path
        return None

    def _taken(
        self, remaining: MutableSet[Digest], to_stage: bool, *, by_digest: bool = False
    ) -> Iterator[tuple[str, _Origin, Digest, int]]:
        """Each file whose digest is in *remaining* (and to stage, if *to_stage*), the
        first of each digest met, its digest taken out of *remaining*; *by_digest*: met
        about in the order of the digests (see ``ManifestBuilder.origins``)."""
        held, origins = self.held, self._origins
        for path, number, digest, size in self.builder.origins(by_digest=by_digest):
            if digest not in remaining:
                continue
            origin = origins[number]
            assert origin is not None
            if to_stage and (not origin.mutable or digest in held):
                continue
            remaining.discard(digest)
            yield path, origin, digest, size

    def take_sources(
        self, remaining: MutableSet[Digest], *, to_stage: bool = False
    ) -> Iterator[BlobSource]:
        """Where the bytes of each of *remaining* the draft has a file for are (the bytes
        kept from hashing, else a staged copy, else the first file added with them), made
        as they are asked for, each digest taken out of *remaining* as its source is made:
        a million files never hold a source each at once, and what is left in *remaining*
        afterwards has no source. They come about in the order of their digests, which
        is the order of a server's indexes of blobs.

        *to_stage*: only the blobs of files added with ``policy="mutable"`` whose bytes
        are only in their files, which the caller may change once the log returns: the
        log takes them before it returns. Kept bytes are a snapshot already.
        """
        held, copies = self.held, self._copies
        for path, origin, digest, size in self._taken(remaining, to_stage, by_digest=True):
            yield BlobSource(
                digest, size, origin.local_path(path), held.get(digest), copies.get(digest)
            )

    def source_totals(
        self, digests: Collection[Digest], *, to_stage: bool = False
    ) -> tuple[int, int]:
        """How many sources :meth:`take_sources` would make for *digests*, and their bytes
        (without making them)."""
        count = total = 0
        # A packed set copies as its two buffers, not as an object a digest.
        remaining = digests.copy() if isinstance(digests, MissingDigests) else set(digests)
        for _, _, _, size in self._taken(remaining, to_stage):
            count += 1
            total += size
        return count, total

    def sources(self, digests: Collection[Digest]) -> list[BlobSource]:
        """The sources of those of *digests* the draft has a file for, all at once (see
        :meth:`take_sources`)."""
        return list(self.take_sources(set(digests)))

    def sources_to_stage(self, digests: Collection[Digest]) -> list[BlobSource]:
        """The sources of those of *digests* to store before the log returns, all at once
        (see :meth:`take_sources`)."""
        return list(self.take_sources(set(digests), to_stage=True))

    def keep_copies(self, staged: Iterable[BlobSource]) -> None:
        """Remember staged copies of blobs, read by the log instead of the files."""
        for source in staged:
            if source.copy is not None:
                self._copies[source.digest] = source.copy

    def tmp_dir(self) -> str:
        if self._tmp_dir is None:
            self._tmp_dir = tempfile.TemporaryDirectory(prefix="soko-draft-")
        return self._tmp_dir.name

    def file_entry(self, path: str, hashed: HashedFile) -> Entry:
        return Entry(path=path, digest=hashed.digest.b64, size=hashed.size, extra=self._extra)

    def _hold(self, held: Iterable[tuple[Digest, bytes]]) -> None:
        for digest, data in held:
            if digest not in self.held:
                # Bytes of a source removed or replaced later stay until the log: they
                # count against the budget, which bounds them.
                self.held[digest] = data
                self._held_bytes += len(data)

    def add_files(
        self,
        named: Sequence[tuple[str, HashedFile]],
        *,
        overwrite: bool,
        mutable: bool = True,
        hold: bool = True,
    ) -> list[Entry]:
        """Add hashed local files under their (validated) artifact paths: all, or none.

        *hold* False: the bytes the hashing kept are not held for the log (the store took
        them already, see :mod:`soko.client.capture`), which frees the memory at once.
        """
        entries = [self.file_entry(p, h) for p, h in named]
        self.builder.check_all(entries, overwrite=overwrite)
        self._check_base(((e.path, e.digest) for e in entries), overwrite=overwrite)
        for entry, (_, hashed) in zip(entries, named, strict=True):
            local = os.fspath(hashed.path)
            origin = self._origin(_Origin(local, None, mutable))
            self.builder.add(entry, overwrite=True, origin=origin)
            self._file_names[local] = entry.path
        if hold:
            self._hold((h.digest, h.data) for _, h in named if h.data is not None)
        return entries

    def add_folder(
        self,
        local: str,
        prefix: str,
        paths: Sequence[str],
        raws: bytes | bytearray,
        sizes: Sequence[int],
        *,
        overwrite: bool,
        mutable: bool,
        held: Iterable[tuple[Digest, bytes]] = (),
        staged: tuple[str, str] | None = None,
    ) -> None:
        """Add the hashed files of a folder: each of *paths* (under *prefix*) is the file
        at *local* (which ends with the separator) + the path less *prefix*, its raw
        digest in *raws* (16 bytes each, in order) and its size in *sizes*. All of them,
        or none. *held*: bytes the hashing kept, held for the log. *staged*: the
        (entity, project) a server confirmed every one of them stored for."""
        number = len(self._origins)
        if self.base is not None and not overwrite:
            self._check_base(
                ((p, b64_of(raws[i * RAW : i * RAW + RAW])) for i, p in enumerate(paths)),
                overwrite=overwrite,
            )
        self.builder.add_stored(
            paths, raws, sizes, extra=self._extra, overwrite=overwrite, origin=number
        )
        self._origins.append(_Origin(local, prefix, mutable, staged))
        self._folders.append(number)
        self._hold(held)

    def staged_on(self, entity: str, project: str) -> bool:
        """Whether a server confirmed every blob of the draft stored for
        ``entity/project`` while its folders were added: its log need not ask which are
        missing. A draft with a base, or any entry not from such a folder, is not."""
        wanted = (entity, project)
        if self.base is not None or not any(o and o.staged == wanted for o in self._origins):
            return False  # without a walk over the entries
        for number in self.builder.origins_in_use():
            origin = self._origins[number]
            if origin is None or origin.staged != wanted:
                return False
        return True

    def _origin(self, origin: _Origin) -> int:
        self._origins.append(origin)
        return len(self._origins) - 1

    def build(self) -> Manifest:
        """The manifest of the draft as it is now: with a base, a
        :class:`~soko.core.layered.LayeredManifest` (the whole is loaded when asked for)."""
        if self.base is None:
            return self.builder.build()
        table = self.builder.build().table
        assert table is not None
        return LayeredManifest(self.base.base, table, frozenset(self._removed), self.algorithm)

    def get(self, path: str) -> Entry | None:
        """The entry at *path*, added or of the base."""
        entry = self.builder.get(path)
        if entry is None and self.base is not None and path not in self._removed:
            entry = self.base.entry(path)
        return entry

    def _check_base(self, added: Iterable[tuple[str, str]], *, overwrite: bool) -> None:
        """Refuse a path of the base (not removed, not added since) with another digest,
        unless *overwrite*: the rule :class:`ManifestBuilder` applies to its own rows."""
        if self.base is None or overwrite:
            return
        builder, removed = self.builder, self._removed
        for path, digest in added:
            if path in builder or path in removed:
                continue
            known = self.base.digest(path)
            if known is not None and known != digest:
                raise builder._refused(path)

    def add_entry(self, entry: Entry, *, local_path: str | None, overwrite: bool) -> None:
        """Add a whole entry (W&B's ``manifest.add_entry``). A stored entry with a
        *local_path* is read from that file when logged (and refused if the file no longer
        has the entry's digest); one without names a blob the store must hold already."""
        if entry.ref is None:
            entry.blob_digest()  # a stored entry's digest must parse
        self.builder.check_add(entry, overwrite=overwrite)
        self._check_base([(entry.path, entry.digest)], overwrite=overwrite)
        if entry.ref is None and local_path is not None:
            origin = self._origin(_Origin(local_path, None, False))
            self.builder.add(entry, overwrite=True, origin=origin)
            self._file_names[local_path] = entry.path
        else:
            self.builder.add(entry, overwrite=True)

    def add_references(self, entries: Sequence[Entry]) -> list[Entry]:
        self.builder.check_all(entries)
        self._check_base(((e.path, e.digest) for e in entries), overwrite=False)
        return self.builder.add_all(entries)

    def remove(self, path: str) -> list[Entry]:
        """Remove the entry at *path*, or every entry under the folder *path*."""
        removed = {entry.path: entry for entry in self.builder.remove(path)}
        if self.base is None:
            return list(removed.values())
        path = path.rstrip("/")
        entry = None if path in self._removed else self.base.entry(path)
        found = [entry] if entry is not None else list(self.base.under(f"{path}/"))
        for entry in found:
            if entry.path not in self._removed:
                self._removed.add(entry.path)
                removed.setdefault(entry.path, entry)
        return list(removed.values())


class _DraftFiles(Mapping[str, DraftFile]):
    """``Draft.files``: each stored entry's local file, made when asked for."""

    def __init__(self, draft: Draft) -> None:
        self._draft = draft

    def __getitem__(self, path: str) -> DraftFile:
        file = self._draft.file(path)
        if file is None:
            raise KeyError(path)
        return file

    def __iter__(self) -> Iterator[str]:
        return (path for path, *_ in self._draft.builder.origins())

    def __len__(self) -> int:
        return sum(1 for _ in self)
