"""The draft half of an artifact: the entries being assembled before a log.

:class:`Draft` owns the manifest builder, remembers which local file each stored entry came
from (with the stat seen when it was hashed, so that a later change is detected at upload
instead of being staged by a copy), and applies every ``add_*``/``remove`` all-or-nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from soko.client.hashing import FileStat, HashedFile
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest, ManifestBuilder


@dataclass(frozen=True, slots=True)
class LocalSource:
    """Where a stored entry's bytes are, and the state of that file when it was hashed."""

    local_path: str
    digest: Digest
    stat: FileStat | None
    skip_cache: bool = False
    mutable: bool = True
    """``policy="mutable"``: the bytes are captured when the draft is logged."""
    upload_path: str | None = None
    """The captured copy of the bytes; the upload reads it rather than local_path."""


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
        self.sources: dict[str, LocalSource] = {}
        self.added_local_paths: dict[str, str] = {}
        self.held: dict[Digest, bytes] = {}
        """Bytes of small files kept from hashing, so that the log stores them without
        reading the files again (up to :data:`HELD_BYTES_MAX`)."""
        self._held_bytes = 0
        self._tmp_dir: tempfile.TemporaryDirectory[str] | None = None

    def held_budget(self) -> int:
        """How many more bytes of small files the draft may keep from hashing."""
        return max(0, HELD_BYTES_MAX - self._held_bytes)

    def held_contents(self, digests: Iterable[Digest]) -> dict[Digest, bytes]:
        """The kept bytes of those of *digests* the draft holds."""
        held = self.held
        return {d: held[d] for d in digests if d in held}

    def release_held(self, digests: Iterable[Digest] | None = None) -> None:
        """Drop the kept bytes (of *digests*, or all): they are stored now."""
        if digests is None:
            self.held.clear()
            self._held_bytes = 0
            return
        for digest in digests:
            data = self.held.pop(digest, None)
            if data is not None:
                self._held_bytes -= len(data)

    def tmp_dir(self) -> str:
        if self._tmp_dir is None:
            self._tmp_dir = tempfile.TemporaryDirectory(prefix="soko-draft-")
        return self._tmp_dir.name

    def file_entry(self, path: str, hashed: HashedFile) -> Entry:
        return Entry(path=path, digest=hashed.digest.b64, size=hashed.size, extra=self._extra)

    def add_files(
        self,
        named: Sequence[tuple[str, HashedFile]],
        *,
        overwrite: bool,
        skip_cache: bool = False,
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
            self.sources[entry.path] = LocalSource(
                hashed.path, hashed.digest, hashed.stat, skip_cache, mutable
            )
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
        sources = self.sources
        stored = [e.path for e in manifest if e.ref is None]
        # Every stored entry came from a hashed file: its Digest is known already.
        if all(path in sources for path in stored):
            manifest.know_blob_digests(frozenset(sources[path].digest for path in stored))
        return manifest

    def add_references(self, entries: Sequence[Entry]) -> list[Entry]:
        self.builder.add_all(entries)
        for entry in entries:
            self.sources.pop(entry.path, None)
        return list(entries)

    def remove(self, path: str) -> list[Entry]:
        removed = self.builder.remove(path)
        for entry in removed:
            self.sources.pop(entry.path, None)
        return removed
