"""The client's download cache: content-addressed blobs under ``SOKO_CACHE_DIR``.

The cache folder is a :class:`~soko.storage.folder.BlobFolder`, the layout of the embedded
store without its format marker and quarantine (other files there, such as the stat cache,
are not touched)::

    blobs/<alg>/<xx>/<hex>    one file per blob, named by :func:`~soko.storage.base.blob_key`
    packs/                    small blobs of batch downloads, many to a file
    tmp/                      blobs and packs being written, under process-unique names

A blob enters the cache verified: it is hashed while it is written to a temp file and
renamed into place only if it matches its digest, so a reader sees no blob or the right
one. Downloads still check each cached blob as they copy it out (a hash is cheap next to
the copy) and evict one that a damaged disk or a user's edit changed. The small blobs of a
batch download were verified as they arrived and go into packs (:meth:`BlobCache.packer`):
one file and one index transaction per pack instead of a file create and a rename per
blob, which cost more than the download itself for 20,000 small files.

Least recently used first: :meth:`BlobCache.get` touches the file it returns and
:meth:`BlobCache.read_packed` the index rows of the blobs it reads, and
:meth:`BlobCache.cleanup` removes blob files and whole packs by their last use (for a
file the later of access and modification time, so a file system mounted ``noatime``
still orders correctly; for a pack the latest use of any of its blobs) until the disk
use is under the limit. Packs no row points at are deleted and packs mostly dead are
rewritten, as the embedded store's garbage collection does.

A download through a server puts a large blob here only where it can clone it into the
root or the root links to it; elsewhere the blob goes straight into the root and the stat
cache remembers that file as a copy (see :mod:`soko.client.http_download`).

Several processes may share one cache. A blob removed by a cleanup while another process
is about to read it makes that read fail with FileNotFoundError; the caller fetches it
again. Correctness never depends on a cached file staying there.

This module must not import the SDK, the service or the server.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from soko.client.materialize import stream_new
from soko.core.digests import Digest
from soko.errors import StoreError, ValidationError
from soko.settings import Settings
from soko.storage.folder import BlobFolder
from soko.storage.pack_writer import PackWriter

_CHUNK = 8 * 1024 * 1024
TEMP_MIN_AGE_SECONDS = 60.0
"""A temp file written to within this time may belong to a live download: kept."""
PACK_TARGET = 16 * 1024 * 1024
"""Cache packs are smaller than the store's: a cleanup frees space a pack at a time."""


@dataclass(frozen=True, slots=True)
class CachedBlob:
    path: str
    """The blob's file, or the pack holding it."""
    digest: Digest
    size: int
    last_used: float
    packed: bool = False


@dataclass(frozen=True, slots=True)
class _Unit:
    path: str
    size: int
    last_used: float
    pack: str | None
    """The pack's name, or None for a blob file."""
    blobs: int


@dataclass(frozen=True, slots=True)
class CleanupReport:
    removed_files: int
    freed_bytes: int
    remaining_bytes: int
    temp_files_removed: int


class BlobCache:
    """Blobs in the folder *root*; see the module docstring. Safe across threads and
    processes. *max_bytes* (``SOKO_CACHE_MAX``) caps the cache: a write that takes it over
    the cap triggers a cleanup back under it."""

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
        self.folder = BlobFolder(os.fspath(root), pack_target=PACK_TARGET)
        # Bound once: a download asks for the path of each blob, several times.
        self._path = self.folder.path
        self.root = self.folder.root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._estimated_size: int | None = None

    @classmethod
    def from_settings(cls, config: Settings) -> BlobCache:
        """The cache *config* names (``SOKO_CACHE_DIR``, capped by ``SOKO_CACHE_MAX``)."""
        return cls(config.cache_dir, max_bytes=config.cache_max_bytes)

    def __repr__(self) -> str:
        return f"BlobCache({self.root!r})"

    # ----- reading --------------------------------------------------------------------

    def path(self, digest: Digest) -> str:
        """Where *digest* lives in the cache (whether or not it is there)."""
        return self.folder.path(digest)

    def contains(self, digest: Digest) -> bool:
        return self.folder.exists(digest)

    def get(self, digest: Digest) -> str | None:
        """The cached file of *digest*, marked as just used; None when it is not cached."""
        path = self._path(digest)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        except PermissionError:
            # A cache shared read-only: the file is usable, its age just is not refreshed.
            if not os.path.isfile(path):
                return None
        return path

    def get_many(self, digests: Iterable[Digest]) -> dict[Digest, str]:
        """:meth:`get` for each of *digests*; those not cached as files are left out.

        A digest whose fan-out folder does not exist is not looked for: a download into a
        cold cache asks nothing per blob.
        """
        found: dict[Digest, str] = {}
        folders: dict[str, set[str]] = {}
        for digest in digests:
            key = digest.algorithm.key
            present = folders.get(key)
            if present is None:
                present = folders[key] = self.folder.fanouts(digest.algorithm)
            if digest.hex[:2] in present:
                path = self.get(digest)
                if path is not None:
                    found[digest] = path
        return found

    def open_copy(self, digest: Digest) -> BinaryIO | None:
        """A reader of the cached bytes of *digest* (not checked here: the reader checks
        them), from its file or its pack; None when it is not cached. ``soko verify
        --repair`` restores damaged store blobs from here."""
        try:
            return open(self.path(digest), "rb")
        except (FileNotFoundError, NotADirectoryError):
            pass
        data = dict(self.read_packed([digest])).get(digest)
        return None if data is None else io.BytesIO(data)

    def evict(self, digest: Digest) -> None:
        """Remove *digest* from the cache, as a file and as a packed blob (one found not
        to match its digest); its bytes in a pack become dead space for cleanup."""
        self.folder.delete_many([digest])

    def read_packed(self, digests: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """The bytes (not checked here) of those of *digests* the cache holds in packs,
        marked as just used, one open per pack; the others (not cached, or loose) are
        left out. A cache that cannot be read (its index unreadable, pack files removed
        behind it) gives what it can: to its callers the rest is simply not cached."""
        wanted = list(digests)
        try:
            try:
                found = self.folder.packs.touch(wanted)
            except StoreError:
                # A cache shared read-only: the blobs are usable, their last use stays.
                found = self.folder.packs.present(wanted)
            if found:
                yield from self.folder.packs.read_many(found)
        except (StoreError, OSError):
            # Forget the rows of pack files that are gone, so that the next download
            # packs those blobs again instead of stumbling over them every time.
            with contextlib.suppress(StoreError, OSError):
                self.folder.packs.forget_missing_packs()

    # ----- writing --------------------------------------------------------------------

    def put_file(self, digest: Digest, source: str) -> str:
        """Store a copy of the file *source* as *digest*, verified; returns its path."""
        with open(source, "rb") as stream:
            return self.put_stream(digest, stream)

    def put_stream(self, digest: Digest, stream: BinaryIO) -> str:
        """Store what *stream* yields until EOF as *digest*, verified; returns its path."""
        return self.put_chunks(digest, iter(lambda: stream.read(_CHUNK), b""))

    def put_chunks(self, digest: Digest, chunks: Iterable[bytes]) -> str:
        """Store the concatenated *chunks* as *digest* (an HTTP body, say); raises
        DigestMismatchError, storing nothing, when they do not hash to it. The bytes are
        counted as they stream (:func:`soko.core.metering.count`)."""
        final = self.path(digest)
        if self.get(digest) is not None:
            return final
        temp = self.folder.new_temp_path()
        try:
            size = stream_new(temp, digest, chunks)
            self.folder.move_into_place(temp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self._grew(size)
        return final

    def packer(self) -> PackWriter:
        """A writer of small blobs the caller verified, packed as they come (a pack each
        16 MiB, written on a helper thread), to use as a context manager: all are cached
        when the block ends without an error; on an error those already written stay.
        The size cap is checked as each pack is written."""
        return self.folder.packer(on_written=self._grew)

    def temp_folder(self) -> str:
        """The cache's folder for files being written, created if need be."""
        return self.folder.temp_folder()

    def _grew(self, size: int) -> None:
        if self.max_bytes is None:
            return
        with self._lock:
            if self._estimated_size is None:
                self._estimated_size = self.size()
            else:
                self._estimated_size += size
            over = self._estimated_size > self.max_bytes
        if over:
            report = self.cleanup(self.max_bytes)
            with self._lock:
                self._estimated_size = report.remaining_bytes

    # ----- size and cleanup -----------------------------------------------------------

    def blobs(self) -> Iterator[CachedBlob]:
        """Every cached blob, in no particular order; stray files are skipped."""
        for info, pack in self.folder.packs.list_with_packs():
            yield CachedBlob(pack, info.digest, info.size, info.modified, packed=True)
        yield from self._loose_blobs()

    def _loose_blobs(self) -> Iterator[CachedBlob]:
        for digest, entry, st in self.folder.loose():
            yield CachedBlob(entry.path, digest, st.st_size, max(st.st_atime, st.st_mtime))

    def size(self) -> int:
        """Bytes the cache takes on disk: its blob files and its packs (dead space in a
        pack included), temp files excluded."""
        return sum(unit.size for unit in self._units())

    def _units(self) -> Iterator[_Unit]:
        """What a cleanup removes: a blob file, or a whole pack (its last use the latest
        of its blobs'; a pack no blob points at counts from its last write)."""
        usage = self.folder.packs.usage()
        for name, st in self.folder.packs.pack_files().items():
            used = usage.get(name)
            count, latest = (used.blobs, used.last_written) if used else (0, st.st_mtime)
            path = self.folder.packs.pack_path(name)
            yield _Unit(path, st.st_size, latest, name, count)
        for blob in self._loose_blobs():
            yield _Unit(blob.path, blob.size, blob.last_used, None, 1)

    def cleanup(self, max_bytes: int, *, remove_temp: bool = False) -> CleanupReport:
        """Remove least recently used blobs until the cache takes at most *max_bytes* on
        disk. The small blobs of a download share a pack, which goes as a whole.

        With *remove_temp*, temp files nobody has written to for a minute (left by killed
        downloads) are removed as well.
        """
        if max_bytes < 0:
            raise ValidationError("The cache size limit cannot be negative.")
        units = sorted(self._units(), key=lambda u: (u.last_used, u.path))
        total = sum(u.size for u in units)
        removed = freed = 0
        for unit in units:
            if total <= max_bytes:
                break
            if unit.pack is None:
                try:
                    os.unlink(unit.path)
                except FileNotFoundError:
                    pass
                else:
                    removed += 1
                    freed += unit.size
                total -= unit.size
                continue
            # A pack read since the listing above (a blob's row touched after the last
            # use seen here) is kept; the check and the delete are one transaction. A
            # pack listed without rows is kept if any arrived since (a writer's).
            since = unit.last_used + 1e-6 if unit.blobs else float("-inf")
            blobs = self.folder.packs.evict(unit.pack, written_before=since)
            if blobs is not None:
                removed += blobs
                freed += unit.size
                total -= unit.size
        # Packs no row points at (a writer killed before its rows, or every blob of it
        # packed again elsewhere first) and packs mostly dead are reclaimed too.
        compacted = self.folder.compact(TEMP_MIN_AGE_SECONDS)
        freed += compacted.bytes_reclaimed
        total -= compacted.bytes_reclaimed
        temp_removed = self.folder.remove_stale_temp(TEMP_MIN_AGE_SECONDS) if remove_temp else 0
        return CleanupReport(removed, freed, total, temp_removed)
