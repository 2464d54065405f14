"""The draft half of an artifact: the entries being assembled before a log.

:class:`Draft` owns the manifest builder, remembers which local file each stored entry came
from (with the stat seen when it was hashed, so that a later change is detected at upload
instead of being staged by a copy), and applies every ``add_*``/``remove`` all-or-nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from soko.client.hashing import FileStat, HashedFile
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, ManifestBuilder


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


class Draft:
    def __init__(self, algorithm: Algorithm, entries: Iterable[Entry] = ()) -> None:
        self.algorithm = algorithm
        self.builder = ManifestBuilder(algorithm, entries)
        self.sources: dict[str, LocalSource] = {}
        self.added_local_paths: dict[str, str] = {}
        self._tmp_dir: tempfile.TemporaryDirectory[str] | None = None

    def tmp_dir(self) -> str:
        if self._tmp_dir is None:
            self._tmp_dir = tempfile.TemporaryDirectory(prefix="soko-draft-")
        return self._tmp_dir.name

    def file_entry(self, path: str, hashed: HashedFile) -> Entry:
        extra = {ALG_EXTRA_KEY: self.algorithm.value} if self.algorithm is Algorithm.XXH128 else {}
        return Entry(path=path, digest=hashed.digest.b64, size=hashed.size, extra=extra)

    def add_files(
        self,
        named: Sequence[tuple[str, HashedFile]],
        *,
        overwrite: bool,
        skip_cache: bool = False,
        mutable: bool = True,
    ) -> list[Entry]:
        """Add hashed local files under their (validated) artifact paths: all, or none."""
        entries = [self.file_entry(p, h) for p, h in named]
        self.builder.add_all(entries, overwrite=overwrite)
        for entry, (_, hashed) in zip(entries, named, strict=True):
            self.sources[entry.path] = LocalSource(
                hashed.path, hashed.digest, hashed.stat, skip_cache, mutable
            )
            self.added_local_paths[os.fspath(hashed.path)] = entry.path
        return entries

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
