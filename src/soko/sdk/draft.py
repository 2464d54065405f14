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
from collections.abc import Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from soko.client.hashing import HashedFile
from soko.client.sources import BlobSource
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest, ManifestBuilder


class DraftFile(NamedTuple):
    """The local file a stored entry was added from."""

    local_path: str
    digest: Digest
    size: int
    mutable: bool
    """``policy="mutable"``: the bytes are taken before the log returns (staged)."""


HELD_BYTES_MAX = 256 * 1024 * 1024
"""How many bytes of small files a draft keeps from hashing until it is logged.

Reading 20,000 small files a second time costs more than storing them, so a draft keeps
what it read (``cp`` holds no more than that in the page cache either); files beyond the
budget are read again when logged, as large files always are."""


class Draft:
    def __init__(self, algorithm: Algorithm, entries: Iterable[Entry] = ()) -> None:
        self.algorithm = algorithm
        self.builder = ManifestBuilder(algorithm, entries)
        # One read-only mapping shared by every file entry of the draft.
        self._extra: Mapping[str, str] = MappingProxyType(
            {ALG_EXTRA_KEY: algorithm.value} if algorithm is Algorithm.XXH128 else {}
        )
        self.files: dict[str, DraftFile] = {}
        self._sizes: dict[int, int] = {}
        self.added_local_paths: dict[str, str] = {}
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

    def sources(self, digests: Collection[Digest]) -> list[BlobSource]:
        """Where the bytes of each of *digests* the draft has a file for are: the bytes
        kept from hashing, else a staged copy, else the first file added with them."""
        found: dict[Digest, BlobSource] = {}
        held, copies = self.held, self._copies
        for file in self.files.values():
            digest = file.digest
            if digest in digests and digest not in found:
                found[digest] = BlobSource(
                    digest, file.size, file.local_path, held.get(digest), copies.get(digest)
                )
        return list(found.values())

    def sources_to_stage(self, digests: Collection[Digest]) -> list[BlobSource]:
        """The sources of those of *digests* added with ``policy="mutable"`` whose bytes
        are only in their files, which the caller may change once the log returns: the
        log takes them before it returns. Kept bytes are a snapshot already."""
        found: dict[Digest, BlobSource] = {}
        held = self.held
        for file in self.files.values():
            digest = file.digest
            if file.mutable and digest in digests and digest not in held:
                found.setdefault(digest, BlobSource(digest, file.size, file.local_path))
        return list(found.values())

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
        # Equal sizes share one int: a million files of one size would hold a million.
        size = self._sizes.get(hashed.size, hashed.size)
        if len(self._sizes) < 256:
            self._sizes.setdefault(size, size)
        return Entry(path=path, digest=hashed.digest.b64, size=size, extra=self._extra)

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
        self.builder.add_all(entries, overwrite=overwrite)
        for entry, (_, hashed) in zip(entries, named, strict=True):
            self.files[entry.path] = DraftFile(hashed.path, hashed.digest, hashed.size, mutable)
            if hold and hashed.data is not None and hashed.digest not in self.held:
                # Bytes of a source removed or replaced later stay until the log: they
                # count against the budget, which bounds them.
                self.held[hashed.digest] = hashed.data
                self._held_bytes += len(hashed.data)
            self.added_local_paths[os.fspath(hashed.path)] = entry.path
        return entries

    def build(self) -> Manifest:
        """The manifest of the draft as it is now."""
        manifest = self.builder.build()
        files = self.files
        stored = [e.path for e in manifest if e.ref is None]
        # Every stored entry came from a hashed file: its Digest is known already.
        if all(path in files for path in stored):
            manifest.know_blob_digests(frozenset(files[path].digest for path in stored))
        return manifest

    def add_entry(self, entry: Entry, *, local_path: str | None, overwrite: bool) -> None:
        """Add a whole entry (W&B's ``manifest.add_entry``). A stored entry with a
        *local_path* is read from that file when logged (and refused if the file no longer
        has the entry's digest); one without names a blob the store must hold already."""
        digest = entry.blob_digest() if entry.ref is None else None
        self.builder.add(entry, overwrite=overwrite)
        if digest is not None and local_path is not None:
            self.files[entry.path] = DraftFile(local_path, digest, entry.size or 0, False)
            self.added_local_paths[local_path] = entry.path
        else:
            self.files.pop(entry.path, None)

    def add_references(self, entries: Sequence[Entry]) -> list[Entry]:
        self.builder.add_all(entries)
        for entry in entries:
            self.files.pop(entry.path, None)
        return list(entries)

    def remove(self, path: str) -> list[Entry]:
        removed = self.builder.remove(path)
        for entry in removed:
            self.files.pop(entry.path, None)
        return removed
