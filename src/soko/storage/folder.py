"""A folder of loose and packed blobs: the layout the local store and the client's
download cache share.

Layout of the root::

    blobs/<alg>/<xx>/<hex>    one read-only file per blob (see :func:`~.base.blob_key`)
    packs/                    small blobs stored in batches, many to a file (:mod:`.packs`)
    tmp/                      blobs and packs being written, under process-unique names

A blob file appears by a rename from ``tmp/``, so a reader sees no blob or the whole blob;
a temp file's name holds the pid, the thread id and random bits, so no two writers ever
share one. Every read looks for a loose blob first and then in the pack index.

:class:`BlobFolder` knows where things are and how they are listed, written in batches,
deleted and compacted; what a blob is checked against before it goes in, and when it is
made durable, is its owner's: :class:`~.local.LocalBlobStore` (a verified, durable store
with a format marker and a quarantine) or :class:`soko.client.cache.BlobCache` (a cache
of verified downloads with least-recently-used cleanup).

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.errors`.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from soko.core.digests import Algorithm, Digest
from soko.errors import StoreError, ValidationError
from soko.storage.base import BlobInfo, blob_key, digest_of_key
from soko.storage.layout import ensure_dir, replace_into
from soko.storage.pack_writer import PackWriter
from soko.storage.packs import PACK_TARGET, CompactReport, Packs

BLOBS = "blobs"
TMP = "tmp"
_TEMP_SUFFIX = ".tmp"
# Blobs are never modified in place; read-only files guard them against a hard-linked
# copy being edited. Creating the temp file with these bits costs no extra syscall.
_BLOB_MODE = 0o444
O_BINARY = getattr(os, "O_BINARY", 0)


@dataclass
class _Shared:
    """What the folders of one root in this process share."""

    known_dirs: set[str] = field(default_factory=set)
    """Fan-out folders known to exist, so most writes skip makedirs."""
    packs: Packs | None = None
    """The pack index, one connection per process and root."""


_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


def _reset_after_fork() -> None:
    # A lock held by another thread at fork() would never be released in the child.
    global _shared_lock
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class BlobFolder:
    """The blobs under *root*, loose and packed; packs of about *pack_target* bytes.

    Safe to share between threads, and between processes that open the same root. Creates
    nothing until something is written.
    """

    def __init__(self, root: str, *, pack_target: int = PACK_TARGET) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.tmp = os.path.join(self.root, TMP)
        self.pack_target = pack_target
        with _shared_lock:
            shared = _shared.setdefault(os.path.realpath(self.root), _Shared())
            if shared.packs is None:
                shared.packs = Packs(self.root, self._pack_temp_name)
        self.known_dirs = shared.known_dirs
        self.packs: Packs = shared.packs

    # -- paths ---------------------------------------------------------------------------

    def path(self, digest: Digest) -> str:
        """Where the blob's loose file is (whether or not it is there)."""
        # Concatenation, not os.path.join: this runs once per blob of every manifest.
        return f"{self.root}{os.sep}{blob_key(digest)}"

    def new_temp_name(self) -> str:
        name = f"{os.getpid()}-{threading.get_native_id()}-{os.urandom(8).hex()}{_TEMP_SUFFIX}"
        return os.path.join(self.tmp, name)

    def new_temp_path(self) -> str:
        """A temp file name in ``tmp/``, which exists (made once per process)."""
        ensure_dir(self.tmp, self.known_dirs)
        return self.new_temp_name()

    def temp_folder(self) -> str:
        """``tmp/``, created if need be."""
        os.makedirs(self.tmp, exist_ok=True)
        return self.tmp

    def _pack_temp_name(self) -> str:
        # Once per pack, so cheap enough to ask every time: tmp/ may have been removed
        # by a user cleaning up since this process last looked.
        self.temp_folder()
        return self.new_temp_name()

    def open_temp(self) -> tuple[int, str]:
        """A new read-only temp file, open for reading and writing (a copy is read back
        to hash it): its descriptor and path."""
        temp = self.new_temp_name()
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | O_BINARY
        try:
            return os.open(temp, flags, _BLOB_MODE), temp
        except FileNotFoundError:
            # tmp/ was removed behind our back (a user cleaning up): recreate it once.
            self.temp_folder()
            return os.open(temp, flags, _BLOB_MODE), temp

    def move_into_place(self, temp: str, digest: Digest) -> str:
        """Rename the temp file holding *digest*'s verified bytes to its blob file;
        returns that file's path."""
        final = self.path(digest)
        try:
            replace_into(temp, final, self.known_dirs)
        except OSError as exc:
            raise StoreError(f"Cannot move blob {digest} into place: {exc}") from exc
        return final

    # -- reading -------------------------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        return os.access(self.path(digest), os.F_OK) or bool(self.packs.present([digest]))

    def open_stored(self, digest: Digest) -> BinaryIO | None:
        """A reader of the stored copy (the loose file, else the packed bytes), or None."""
        try:
            return open(self.path(digest), "rb")
        except (FileNotFoundError, NotADirectoryError):
            pass
        data = self.packs.read(digest)
        return None if data is None else io.BytesIO(data)

    def read_packed(self, digests: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """The bytes (not verified) of those of *digests* that are packed, one open per
        pack, each read as it is asked for; the others are left out."""
        return self.packs.read_many(digests)

    def fanouts(self, algorithm: Algorithm) -> set[str]:
        """The fan-out folders (first two hex digits) that exist for *algorithm*."""
        return {entry.name for entry in scandir(os.path.join(self.root, BLOBS, algorithm.key))}

    def loose(
        self, algorithm: Algorithm | None = None
    ) -> Iterator[tuple[Digest, os.DirEntry[str], os.stat_result]]:
        """Every loose blob file (of one algorithm, when given) with its stat; files that
        are not blob keys are skipped, so a stray file never shows up as a blob."""
        algorithms = list(Algorithm) if algorithm is None else [algorithm]
        for alg in algorithms:
            for fanout in scandir(os.path.join(self.root, BLOBS, alg.key)):
                if not fanout.is_dir(follow_symlinks=False):
                    continue
                for entry in scandir(fanout.path):
                    try:
                        digest = digest_of_key(f"{BLOBS}/{alg.key}/{fanout.name}/{entry.name}")
                    except ValidationError:
                        continue
                    try:
                        if not entry.is_file(follow_symlinks=False):
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted while listing
                    yield digest, entry, st

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        """Every blob (of one algorithm, when given), loose ones with their mtime."""
        loose: set[Digest] = set()
        for digest, _entry, st in self.loose(algorithm):
            loose.add(digest)
            yield BlobInfo(digest, st.st_size, st.st_mtime)
        for info in self.packs.list(algorithm):
            if info.digest not in loose:  # stored both ways by two writers: listed once
                yield info

    # -- batches, deletes, compaction ----------------------------------------------------

    def packer(self, on_written: Callable[[int], None] | None = None) -> PackWriter:
        """A writer of verified small blobs into packs of :attr:`pack_target` bytes, to
        use as a context manager (see :class:`~.pack_writer.PackWriter`); *on_written*
        gets each pack's size once it is written."""
        return PackWriter(self.packs, target=self.pack_target, on_written=on_written)

    def delete_many(
        self, digests: Sequence[Digest], *, written_before: float | None = None
    ) -> None:
        """Delete each blob, loose or packed (one index transaction for all); with
        *written_before*, packed copies refreshed since then are kept."""
        for digest in digests:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(digest))
        self.packs.delete(digests, written_before=written_before)

    def compact(self, grace_seconds: float, *, dry_run: bool = False) -> CompactReport:
        """Reclaim the space of deleted packed blobs (see :meth:`.packs.Packs.compact`)."""
        return self.packs.compact(grace_seconds=grace_seconds, dry_run=dry_run)

    def temp_files_older_than(self, seconds: float) -> builtins.list[str]:
        """Paths of files in ``tmp/`` last written more than *seconds* ago.

        A live writer keeps writing to its temp file, so an old one was left by a process
        that was killed; the grace period must exceed the longest pause of a live writer.
        """
        cutoff = time.time() - seconds
        stale = []
        for entry in scandir(self.tmp):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    stale.append(entry.path)
            except FileNotFoundError:
                continue  # renamed into place or removed meanwhile
        return stale

    def remove_stale_temp(self, seconds: float) -> int:
        """Delete the files :meth:`temp_files_older_than` finds; returns how many went."""
        removed = 0
        for path in self.temp_files_older_than(seconds):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
        return removed


def scandir(path: str) -> builtins.list[os.DirEntry[str]]:
    """The entries of folder *path*; none when it does not exist (or is not a folder)."""
    try:
        with os.scandir(path) as entries:
            return builtins.list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
